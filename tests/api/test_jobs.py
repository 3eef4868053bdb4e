"""GET /v1/jobs (filters, cursor), POST /v1/jobs/{id}/cancel, long polls, and the job-read
rate-limit bucket."""

import json
import threading
import time

import sqlalchemy as sa

from tests.api.conftest import ACCOUNT, assert_envelope, teammate


def _submit(api, auth, present_id, seed: int, **extra) -> str:
    z = api.post(f"/v1/control/latent?length=2&seed={seed}", headers=auth).json()["z_sequence"]
    body = {
        "reference_image_id": present_id,
        "control_type": "latent",
        "z_sequence": z,
        "resolution": "64x64",
        "async": True,
        **extra,
    }
    response = api.post("/v1/generate/video", headers=auth, json=body)
    assert response.status_code == 202, response.text
    return response.json()["job_id"]


def test_list_filters_and_pages(api, present_id):
    auth = teammate(api, "lister")
    ids = [_submit(api, auth, present_id, seed) for seed in (71, 72, 73)]
    z = api.post("/v1/control/latent?length=2&seed=74", headers=auth).json()["z_sequence"]
    task = {
        "reference_image_id": present_id,
        "control_type": "latent",
        "z_sequence": z,
        "resolution": "64x48",
    }
    batch = api.post("/v1/batch/video", headers=auth, json={"tasks": [task], "async": True}).json()

    listed = api.get("/v1/jobs?limit=100", headers=auth).json()
    order = [job["job_id"] for job in listed["data"]]
    assert (
        order.index(batch["batch_id"])
        < order.index(ids[2])
        < order.index(ids[1])
        < order.index(ids[0])
    )
    assert listed["has_more"] is False and listed["next_cursor"] is None

    first = api.get("/v1/jobs?limit=2&kind=video", headers=auth).json()
    assert first["has_more"] is True and len(first["data"]) == 2
    second = api.get(
        f"/v1/jobs?limit=2&kind=video&cursor={first['next_cursor']}", headers=auth
    ).json()
    seen = [job["job_id"] for job in first["data"] + second["data"]]
    assert len(seen) == len(set(seen)) and {ids[2], ids[1]} <= set(seen)
    assert all(job["kind"] == "video" for job in first["data"] + second["data"])

    (task_job,) = api.get(f"/v1/jobs?batch_id={batch['batch_id']}", headers=auth).json()["data"]
    assert (
        task_job["job_id"] == batch["tasks"][0]["job_id"]
        and task_job["batch_id"] == batch["batch_id"]
    )
    (only_batch,) = [
        j
        for j in api.get("/v1/jobs?kind=batch", headers=auth).json()["data"]
        if j["job_id"] == batch["batch_id"]
    ]
    assert only_batch["kind"] == "batch" and only_batch["tasks"]
    assert api.get("/v1/jobs?created_after=2999-01-01T00:00:00Z", headers=auth).json()["data"] == []
    pending = api.get("/v1/jobs?status=pending&limit=100", headers=auth).json()["data"]
    assert {ids[0], ids[1], ids[2]} <= {job["job_id"] for job in pending}
    assert_envelope(api.get("/v1/jobs?cursor=bogus!", headers=auth), 400, "BadRequest")
    assert_envelope(api.get("/v1/jobs?status=lost", headers=auth), 422, "UnprocessableEntity")
    assert_envelope(api.get("/v1/jobs?limit=1000", headers=auth), 422, "UnprocessableEntity")


def test_cancel_is_idempotent_fires_the_callback_and_conflicts_when_finished(api, present_id):
    auth = teammate(api, "canceller")
    job_id = _submit(api, auth, present_id, 81)
    cancelled = api.post(f"/v1/jobs/{job_id}/cancel", headers=auth)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    again = api.post(f"/v1/jobs/{job_id}/cancel", headers=auth)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    assert api.get(f"/v1/jobs/{job_id}", headers=auth).json()["status"] == "cancelled"
    listed = api.get("/v1/jobs?status=cancelled", headers=auth).json()["data"]
    assert job_id in [job["job_id"] for job in listed]

    # A job with a callback: the cancellation is delivered like any final status.
    store = api.state.jobs
    hooked = store.create_job(
        kind="video",
        reference_image_id=present_id,
        request={},
        account_id=ACCOUNT,
        callback_url="https://hooks.example.com/char",
    )
    assert api.post(f"/v1/jobs/{hooked.id}/cancel", headers=auth).status_code == 200
    from char_pipeline.jobstore.schema import deliveries

    with store.engine.connect() as connection:
        payload = connection.execute(
            sa.select(deliveries.c.payload).where(deliveries.c.job_id == hooked.id)
        ).scalar_one()
    assert json.loads(payload) == {
        "job_id": hooked.id,
        "status": "cancelled",
        "message": "Cancelled by its owner.",
    }

    finished = store.create_job(
        kind="video", reference_image_id=present_id, request={}, account_id=ACCOUNT
    )
    store.complete_job(finished.id, {})
    error = assert_envelope(
        api.post(f"/v1/jobs/{finished.id}/cancel", headers=auth), 409, "Conflict"
    )
    assert "completed" in error["message"]
    assert_envelope(api.post("/v1/jobs/job_nothere/cancel", headers=auth), 404, "NotFound")


def test_long_poll_answers_when_the_status_changes(api, present_id):
    auth = teammate(api, "poller")
    job_id = _submit(api, auth, present_id, 91)
    store = api.state.jobs
    changed_at = []

    def start_later() -> None:
        time.sleep(0.6)
        changed_at.append(time.monotonic())
        store.start_job(job_id, "run-long-poll")

    threading.Thread(target=start_later).start()
    began = time.monotonic()
    response = api.get(f"/v1/jobs/{job_id}?wait=20", headers=auth)
    answered = time.monotonic()
    assert response.status_code == 200 and response.json()["status"] == "processing"
    assert answered - changed_at[0] < 1.0 and answered - began < 5
    # Nothing changes: the answer comes after the wait, with the status as it is.
    began = time.monotonic()
    quiet = api.get(f"/v1/jobs/{job_id}?wait=0.5", headers=auth)
    assert quiet.json()["status"] == "processing" and 0.4 < time.monotonic() - began < 3
    store.complete_job(job_id, {})
    began = time.monotonic()
    done = api.get(f"/v1/jobs/{job_id}?wait=30", headers=auth)  # ended: at once
    assert done.json()["status"] == "completed" and time.monotonic() - began < 1
    assert_envelope(api.get(f"/v1/jobs/{job_id}?wait=61", headers=auth), 422, "UnprocessableEntity")


def test_job_reads_have_their_own_rate_limit_bucket(api, present_id):
    auth = teammate(api, "busy")
    job_id = _submit(api, auth, present_id, 95)
    statuses = [
        api.post("/v1/control/latent?length=1", headers=auth).status_code for _ in range(60)
    ]
    assert 429 in statuses  # the standard bucket (burst 50 per 10 s) is spent…
    read = api.get(f"/v1/jobs/{job_id}", headers=auth)
    assert read.status_code == 200, read.text  # …and the job can still be read
    assert read.headers["X-RateLimit-Bucket"] == "job_reads"
    assert read.headers["X-RateLimit-Limit"] == "600"


def test_cancel_sensor_stops_the_run_of_a_cancelled_job(api, present_id, tmp_path):
    import dagster as dg

    from char_pipeline.definitions import build_definitions
    from char_pipeline.sensors.jobs import job_cancel_sensor, run_request_for

    auth = teammate(api, "stopper")
    job_id = _submit(api, auth, present_id, 97)
    defs = build_definitions(api.state.settings)
    resources = {"jobs": defs.resources["jobs"]}
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        request = run_request_for(api.state.jobs.get_job(job_id), 1)
        run = instance.create_run_for_job(
            defs.resolve_job_def(request.job_name),
            run_config=request.run_config,
            tags={**request.tags, "dagster/partition": request.partition_key},
            status=dg.DagsterRunStatus.NOT_STARTED,  # created, not yet launched
        )
        idle = job_cancel_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert idle.skip_reason
        assert api.post(f"/v1/jobs/{job_id}/cancel", headers=auth).json()["status"] == "cancelled"
        job_cancel_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED
