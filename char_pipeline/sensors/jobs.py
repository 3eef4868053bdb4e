"""API jobs → Dagster runs, and failed runs → failed jobs."""

import dagster as dg

from char_pipeline import catalog
from char_pipeline.assets.jobs import render_request_job
from char_pipeline.assets.partitions import reference_partitions
from char_pipeline.resources.jobs import GPU_TYPE_TAG, JOB_ID_TAG, JobStoreResource
from char_pipeline.settings import get_settings

INSTANCE_COUNT_TAG = "char/instance_count"


def run_config_for(job) -> dict:
    request = job.request
    return {
        "ops": {
            "control_sequences": {
                "config": {
                    "control_types": [],
                    "sequences": {job.id: catalog.job_sequence_key(job.id)},
                }
            },
            "frames": {"config": {"resolution": request["resolution"]}},
            "video": {
                "config": {
                    "fps": request["fps"],
                    "formats": [request["format"]],
                    "job_result": {**request["result_fields"], "cache_ttl": request["cache_ttl"]},
                }
            },
        }
    }


@dg.sensor(
    job=render_request_job,
    minimum_interval_seconds=get_settings().sensor_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Turns each new async API job into one run (run_key = job id).",
)
def job_submission_sensor(
    context: dg.SensorEvaluationContext, jobs: JobStoreResource
) -> dg.SensorResult:
    cursor = int(context.cursor or 0)
    new_jobs = jobs.store.jobs_after(cursor, limit=200)
    if not new_jobs:
        return dg.SensorResult(skip_reason="No new jobs.")
    known = set(context.instance.get_dynamic_partitions(reference_partitions.name))
    run_requests, new_partitions = [], []
    for job in new_jobs:
        if job.status != "pending":  # answered from the cache, or already handled
            continue
        if job.reference_image_id not in known:
            new_partitions.append(job.reference_image_id)
            known.add(job.reference_image_id)
        run_requests.append(
            dg.RunRequest(
                run_key=job.id,
                partition_key=job.reference_image_id,
                run_config=run_config_for(job),
                tags={
                    JOB_ID_TAG: job.id,
                    GPU_TYPE_TAG: job.gpu_type,
                    INSTANCE_COUNT_TAG: str(job.instance_count),
                },
            )
        )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[reference_partitions.build_add_request(new_partitions)]
        if new_partitions
        else [],
        cursor=str(new_jobs[-1].seq),
    )


@dg.run_failure_sensor(
    monitored_jobs=[render_request_job],
    minimum_interval_seconds=get_settings().sensor_interval_seconds,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks the API job of a failed run as failed, with the run's error.",
)
def job_failure_sensor(context: dg.RunFailureSensorContext, jobs: JobStoreResource) -> None:
    job_id = context.dagster_run.tags.get(JOB_ID_TAG)
    if not job_id:
        return
    failures = context.get_step_failure_events()
    if failures and failures[0].step_failure_data and failures[0].step_failure_data.error:
        message = failures[0].step_failure_data.error.message.strip().splitlines()[0]
        metadata = (
            failures[0].step_failure_data.user_failure_data.metadata
            if failures[0].step_failure_data.user_failure_data
            else {}
        )
        code = str(metadata["error_code"].value) if "error_code" in metadata else "InternalError"
    else:
        message, code = context.failure_event.message or "The render run failed.", "InternalError"
    jobs.store.fail_job(job_id, code, message, {"run_id": context.dagster_run.run_id})
