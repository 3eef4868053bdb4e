"""Jobs and batches: rows, the one state model, concurrent writers, the outbox."""

import threading
from datetime import UTC, datetime, timedelta

from char_pipeline import jobstate
from char_pipeline.jobstate import JobStatus
from char_pipeline.jobstore.jobs import JobFilter


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


def test_listing_newest_first_with_filters_and_a_cursor(job_store):
    made = [
        job_store.create_job(
            kind="nerf" if index == 3 else "video",
            reference_image_id="ref_abcd1234",
            request={},
            account_id="studio-1",
        )
        for index in range(5)
    ]
    job_store.create_job(kind="video", reference_image_id="ref_x", request={}, account_id="other")
    job_store.create_jobs(
        [
            {
                "kind": "video",
                "reference_image_id": "ref_y",
                "request": {},
                "account_id": "studio-1",
                "batch_id": "job_b1",
            }
        ]
    )
    newest = job_store.list_jobs("studio-1", limit=3)
    assert len(newest) == 3 and newest[0].batch_id == "job_b1"
    assert [j.id for j in newest[1:]] == [made[4].id, made[3].id]
    rest = job_store.list_jobs("studio-1", before_seq=newest[-1].seq, limit=10)
    assert [j.id for j in rest] == [j.id for j in reversed(made[:3])]
    assert [j.id for j in job_store.list_jobs("studio-1", JobFilter(kind="nerf"))] == [made[3].id]
    assert [j.batch_id for j in job_store.list_jobs("studio-1", JobFilter(batch_id="job_b1"))] == [
        "job_b1"
    ]
    assert job_store.complete_job(made[0].id, {})
    assert [j.id for j in job_store.list_jobs("studio-1", JobFilter(status="completed"))] == [
        made[0].id
    ]
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert job_store.list_jobs("studio-1", JobFilter(created_after=later)) == []
    assert len(job_store.list_jobs("studio-1", JobFilter(created_before=later), limit=50)) == 6


def test_cancel_is_final_and_queues_its_callback(job_store):
    job = job_store.create_job(
        kind="video",
        reference_image_id="ref_abcd1234",
        request={},
        callback_url="https://example.com/h",
    )
    assert job_store.start_job(job.id, "run-9")
    payload = {"job_id": job.id, "status": "cancelled"}
    assert job_store.cancel_job(job.id, payload)
    assert not job_store.cancel_job(job.id, payload)  # once
    assert not job_store.complete_job(job.id, {})  # a run that finishes late changes nothing
    assert not job_store.update_progress(job.id, 50.0, "late")
    assert job_store.get_job(job.id).status == "cancelled"
    assert [j.id for j in job_store.recently_cancelled(60)] == [job.id]
    assert [j.id for j in job_store.jobs_of_run("run-9")] == [job.id]
    (delivery,) = job_store.deliveries_for_job(job.id)
    assert delivery["status"] == "pending"
    assert jobstate.aggregate(["cancelled", "cancelled"]) == JobStatus.CANCELLED
    assert jobstate.aggregate(["cancelled", "completed"]) == JobStatus.COMPLETED


def test_jobs_from_before_accounts_belong_to_their_key(tmp_path):
    """An old database: its jobs table has no account column; opening it adds the column and
    gives each job its key's account (a key made before accounts is its own)."""
    import sqlalchemy as sa

    from char_pipeline.jobstore import JobStore

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id VARCHAR(40) NOT NULL UNIQUE,"
                " kind VARCHAR(20) NOT NULL, status VARCHAR(20) NOT NULL, progress FLOAT NOT NULL,"
                " message VARCHAR(500), reference_image_id VARCHAR(80) NOT NULL, request TEXT NOT NULL,"
                " result TEXT, error TEXT, api_key_id VARCHAR(40), callback_url VARCHAR(2000),"
                " gpu_type VARCHAR(10) NOT NULL, instance_count INTEGER NOT NULL, run_id VARCHAR(64),"
                " attempts INTEGER NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO jobs (id, kind, status, progress, reference_image_id, request, api_key_id,"
                " gpu_type, instance_count, attempts, created_at, updated_at) VALUES ('job_old', 'video',"
                " 'completed', 100, 'ref_old', '{}', 'key_old', 'v100', 1, 1, '2026-01-01', '2026-01-01')"
            )
        )
    engine.dispose()
    store = JobStore(url)
    assert store.get_job("job_old").account_id == "key_old"
    assert [j.id for j in store.list_jobs("key_old")] == ["job_old"]
    # Indexes declared since (create_all makes them only with a new table) are added too.
    indexes = {index["name"] for index in sa.inspect(store.engine).get_indexes("jobs")}
    assert {"ix_jobs_account_seq", "ix_jobs_status_kind"} <= indexes
