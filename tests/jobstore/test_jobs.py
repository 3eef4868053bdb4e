"""Jobs and batches: rows, the one state model, concurrent writers, the outbox."""

import threading

from char_pipeline import jobstate
from char_pipeline.jobstate import JobStatus


def test_a_job_from_pending_to_completed(job_store):
    key, _ = job_store.create_key("ci", ["generate:write"])
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


def test_a_final_status_and_its_callback_are_written_together(job_store):
    key, _ = job_store.create_key("ci", ["generate:write"])
    job = job_store.create_job(
        kind="video",
        reference_image_id="ref_1",
        request={},
        api_key_id=key.id,
        callback_url="https://example.com/hook",
    )
    plain = job_store.create_job(kind="video", reference_image_id="ref_1", request={})
    assert job_store.complete_job(job.id, {"k": 1}, {"job_id": job.id, "status": "completed"})
    assert job_store.complete_job(plain.id, {"k": 2}, {"job_id": plain.id})
    (delivery,) = job_store.deliveries_for_job(job.id)
    assert delivery["status"] == "pending" and delivery["url"] == "https://example.com/hook"
    assert job_store.deliveries_for_job(plain.id) == []  # no callback_url, no outbox row
    # Stale open jobs are the reconciler's worklist; finished ones never are.
    assert job_store.open_jobs(older_than_seconds=-1) == []
