"""Idempotency records: claims leased to a process; a dead or expired claim is taken over."""

import sqlalchemy as sa


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
