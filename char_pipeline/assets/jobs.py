import dagster as dg

REFERENCE_ASSETS = ["reference_image", "subject_mask", "identity_features"]

render_job = dg.define_asset_job(
    name="render_job",
    selection=dg.AssetSelection.all(),
    description="Reference → mask, identity → control sequences → frames → videos, and its 3D model → turntable, for one reference.",
    executor_def=dg.in_process_executor,  # models load once per run, not once per step
)

reference_job = dg.define_asset_job(
    name="reference_job",
    selection=dg.AssetSelection.assets(*REFERENCE_ASSETS),
    description="Process a new upload: decode, segment, embed.",
    executor_def=dg.in_process_executor,
)

REQUEST_ASSETS = ["control_sequences", "frames", "video"]
# Manifest rows and scheduled backfills render videos only (no 3D turntable).
VIDEO_ASSETS = [dg.AssetKey(name) for name in REFERENCE_ASSETS + REQUEST_ASSETS]
NERF_ASSETS = ["nerf_model", "nerf_video"]

render_request_job = dg.define_asset_job(
    name="render_request_job",
    selection=dg.AssetSelection.assets(*REQUEST_ASSETS),
    description="One API render request (an async job): its z sequence → frames → video.",
    executor_def=dg.in_process_executor,
)

nerf_request_job = dg.define_asset_job(
    name="nerf_request_job",
    selection=dg.AssetSelection.assets(*NERF_ASSETS),
    description="One API NeRF request (an async job): the reference's radiance field → a video along its camera trajectory.",
    executor_def=dg.in_process_executor,
)
