"""A failed run's jobs: an input problem fails them at once with the engine's own code and
message; anything else is retried, and reported by its innermost cause."""

import dagster as dg

from char_pipeline.assets.references import engine_failure
from char_pipeline.engine.errors import EmptyFrameError
from char_pipeline.jobstore import JobStore
from char_pipeline.resources.jobs import JOB_ID_TAG, JobStoreResource
from char_pipeline.sensors.jobs import job_failure_sensor


@dg.op
def collapses():
    raise engine_failure(
        EmptyFrameError("The pose collapsed the subject to 2% of its area.", frame=7),
        "Rendering ref_x failed",
    )


@dg.op
def breaks():
    try:
        {}["mask_key"]
    except KeyError as exc:
        raise RuntimeError("could not load the scene") from exc


@dg.job
def collapsing_job():
    collapses()


@dg.job
def breaking_job():
    breaks()


def _fail(job_def, job_id, instance, resources):
    result = job_def.execute_in_process(
        instance=instance, tags={JOB_ID_TAG: job_id}, raise_on_error=False
    )
    assert not result.success
    failure = next(
        event for event in result.all_events if event.event_type == dg.DagsterEventType.RUN_FAILURE
    )
    context = dg.build_run_status_sensor_context(
        sensor_name=job_failure_sensor.name,
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources=resources,
    ).for_run_failure()
    return list(job_failure_sensor(context) or [])


def test_input_errors_fail_at_once_and_others_retry(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    store = JobStore(url)
    resources = {"jobs": JobStoreResource(url=url)}
    request = {
        "resolution": "64x64",
        "fps": 24,
        "format": "mp4",
        "result_fields": {},
        "cache_ttl": 60,
    }
    bad_pose = store.create_job(kind="video", reference_image_id="ref_x", request=request)
    broken = store.create_job(kind="video", reference_image_id="ref_x", request=request)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        assert _fail(collapsing_job, bad_pose.id, instance, resources) == []
        failed = store.get_job(bad_pose.id)
        assert failed.status == "failed" and failed.attempts == 1
        assert failed.error["code"] == "EmptyFrame"
        assert failed.error["message"] == (
            "Rendering ref_x failed: The pose collapsed the subject to 2% of its area."
        )

        (retry,) = _fail(breaking_job, broken.id, instance, resources)
        assert isinstance(retry, dg.RunRequest)
        again = store.get_job(broken.id)
        assert again.status == "pending" and again.attempts == 2
        assert retry.tags["char/attempt"] == "2"
