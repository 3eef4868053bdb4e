import dagster as dg

REFERENCE_ASSETS = ["reference_image", "subject_mask", "identity_features"]

render_job = dg.define_asset_job(
    name="render_job",
    selection=dg.AssetSelection.all(),
    description="Reference → mask, identity → control sequences → frames → videos, for one reference.",
    executor_def=dg.in_process_executor,  # models load once per run, not once per step
)

reference_job = dg.define_asset_job(
    name="reference_job",
    selection=dg.AssetSelection.assets(*REFERENCE_ASSETS),
    description="Process a new upload: decode, segment, embed.",
    executor_def=dg.in_process_executor,
)

REQUEST_ASSETS = ["control_sequences", "frames", "video"]

render_request_job = dg.define_asset_job(
    name="render_request_job",
    selection=dg.AssetSelection.assets(*REQUEST_ASSETS),
    description="One API render request (an async job): its z sequence → frames → video.",
    executor_def=dg.in_process_executor,
)
