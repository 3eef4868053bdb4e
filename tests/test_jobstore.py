"""The job store on SQLite (default) and on a real PostgreSQL server."""

import secrets
import threading

import pytest
import sqlalchemy as sa

from char_pipeline import jobstate
from char_pipeline.jobstate import JobStatus
from char_pipeline.jobstore import JobStore
from tests.services import POSTGRES_URL, require_service


@pytest.fixture(params=["sqlite", "postgresql"])
def job_store(request, tmp_path):
    if request.param == "sqlite":
        yield JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
        return
    require_service("PostgreSQL", "127.0.0.1", 5432)
    schema = "t_" + secrets.token_hex(4)
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    store = JobStore(POSTGRES_URL + f"?options=-csearch_path%3D{schema}")
    yield store
    store.engine.dispose()
    with admin.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def test_keys_jobs_and_cache(job_store):
    key, plaintext = job_store.create_key("ci", ["generate:write"])
    assert job_store.verify_key(plaintext).id == key.id
    assert job_store.verify_key(plaintext + "x") is None
    with pytest.raises(ValueError):
        job_store.create_key("bad", ["admin"])
    job = job_store.create_job(
        kind="video", reference_image_id="ref_abcd1234", request={"fps": 24}, api_key_id=key.id
    )
    assert job.status == "pending" and job.request == {"fps": 24}
    assert job_store.start_job(job.id, "run-1")
    assert job_store.update_progress(job.id, 42.0, "Rendered 4/10 frames")
    assert job_store.complete_job(job.id, {"video_key": "videos/x.mp4"})
    done = job_store.get_job(job.id)
    assert (done.status, done.progress, done.result) == (
        "completed",
        100.0,
        {"video_key": "videos/x.mp4"},
    )
    assert not job_store.fail_job(job.id, "X", "too late")  # finished jobs stay finished
    assert [j.id for j in job_store.jobs_after(0)] == [job.id]
    assert job_store.jobs_after(done.seq) == []
    job_store.cache_put("etag1", {"a": 1}, ttl_seconds=60)
    job_store.cache_put("etag1", {"a": 2}, ttl_seconds=60)
    assert job_store.cache_get("etag1") == {"a": 2}
    job_store.cache_put("etag2", {"a": 3}, ttl_seconds=-1)
    assert job_store.cache_get("etag2") is None


def test_concurrent_writers(job_store):
    errors = []

    def create(worker: int) -> None:
        try:
            for index in range(10):
                job_store.create_job(
                    kind="video",
                    reference_image_id="ref_abcd1234",
                    request={"w": worker, "i": index},
                )
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(job_store.jobs_after(0, limit=1000)) == 40


def _dead_pid() -> int:
    """The pid of a process that has exited (a crashed API worker)."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_an_idempotency_claim_of_a_dead_process_is_taken_over(job_store):
    import socket

    assert job_store.idempotency_begin("key_1", "K", "hash") is None  # claimed, in progress
    live = job_store.idempotency_begin("key_1", "K", "hash")
    assert live["state"] == "in_progress"  # its process (this one) is alive: 409
    with job_store.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE idempotency SET owner = :owner WHERE key = 'K'"),
            {"owner": f"{socket.gethostname()}:{_dead_pid()}:dead"},
        )
    assert job_store.idempotency_begin("key_1", "K", "hash") is None  # the retry runs
    assert job_store.idempotency_begin("key_1", "K", "hash")["state"] == "in_progress"
    # A different request under the same key is still refused (the caller answers 422).
    assert job_store.idempotency_begin("key_1", "K", "other")["request_hash"] == "hash"


def test_an_idempotency_claim_past_its_lease_is_taken_over(job_store):
    assert job_store.idempotency_begin("key_1", "L", "hash", lease_seconds=0) is None
    assert job_store.idempotency_begin("key_1", "L", "hash") is None  # lease over: runs again
    job_store.idempotency_finish("key_1", "L", 202, '{"job_id": "job_1"}', {})
    done = job_store.idempotency_begin("key_1", "L", "hash", lease_seconds=0)
    assert done["state"] == "done" and done["status_code"] == 202  # answers are kept


def test_every_status_change_follows_the_one_state_model(job_store):
    def new_job():
        return job_store.create_job(kind="video", reference_image_id="ref_1", request={})

    job = new_job()
    assert job_store.fail_job(job.id, "X", "gone", from_statuses=("pending",))
    assert job_store.get_job(job.id).status == JobStatus.FAILED
    for change in (
        lambda: job_store.start_job(job.id, "run"),
        lambda: job_store.update_progress(job.id, 5, "x"),
        lambda: job_store.retry_job(job.id, 2),
        lambda: job_store.complete_job(job.id, {}),
    ):
        assert not change()  # a terminal status is never left
    running = new_job()
    assert job_store.start_job(running.id, "run")
    # The watchdog narrows failing to jobs still pending: a started one is left alone.
    assert not job_store.fail_job(running.id, "X", "late", from_statuses=("pending",))
    assert job_store.retry_job(running.id, 2)
    retried = job_store.get_job(running.id)
    assert (retried.status, retried.run_id, retried.attempts) == ("pending", None, 2)


def test_batch_status_is_aggregated_once():
    assert jobstate.aggregate(["failed", "failed"]) == "failed"
    assert jobstate.aggregate(["completed", "failed"]) == "completed"
    assert jobstate.aggregate(["pending", "failed"]) == "processing"
    assert jobstate.aggregate(["pending", "processing"]) == "processing"
    assert jobstate.aggregate(["pending", "pending"]) == "pending"
    assert jobstate.sources(JobStatus.FAILED, ("pending", "completed")) == ("pending",)
