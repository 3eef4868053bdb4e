"""New uploads in the artifact store become reference partitions and processing runs."""

import dagster as dg

from char_pipeline import catalog
from char_pipeline.assets.jobs import reference_job
from char_pipeline.assets.partitions import reference_partitions
from char_pipeline.storage import ArtifactStore


@dg.sensor(
    job=reference_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a reference_image_id partition for each new upload and processes it once.",
)
def reference_upload_sensor(
    context: dg.SensorEvaluationContext, store: dg.ResourceParam[ArtifactStore]
) -> dg.SensorResult:
    known = set(context.instance.get_dynamic_partitions(reference_partitions.name))
    new_ids = [
        reference_id for reference_id in catalog.list_uploads(store) if reference_id not in known
    ]
    if not new_ids:
        return dg.SensorResult(skip_reason="No new uploads.")
    return dg.SensorResult(
        dynamic_partitions_requests=[reference_partitions.build_add_request(new_ids)],
        run_requests=[
            dg.RunRequest(
                partition_key=reference_id,
                run_key=reference_id,
                # Already processed by the API (which answered the upload): the run only
                # records lineage, so render jobs waiting in the queue go first.
                tags={"dagster/priority": "-1"}
                if store.exists(catalog.record_key("identity_features", reference_id))
                else {},
            )
            for reference_id in new_ids
        ],
    )


@dg.sensor(
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Removes reference partitions whose upload is gone from the artifact store.",
)
def reference_prune_sensor(
    context: dg.SensorEvaluationContext, store: dg.ResourceParam[ArtifactStore]
) -> dg.SensorResult:
    uploads = set(catalog.list_uploads(store))
    gone = sorted(
        k
        for k in context.instance.get_dynamic_partitions(reference_partitions.name)
        if k not in uploads
    )
    if not gone:
        return dg.SensorResult(skip_reason="Every partition has its upload.")
    context.log.info(f"Pruning {len(gone)} partitions without uploads: {', '.join(gone[:20])}")
    return dg.SensorResult(
        dynamic_partitions_requests=[reference_partitions.build_delete_request(gone)]
    )
