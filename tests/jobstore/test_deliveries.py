"""Webhook deliveries: claimed under a lease, attempts logged, retries scheduled, 410s disabled."""

from datetime import timedelta

from char_pipeline.jobstore import now


def finished_job_with_callback(job_store, url="https://example.com/hook"):
    key, _ = job_store.create_key("ci", ["generate:write"])
    job = job_store.create_job(
        kind="video", reference_image_id="ref_1", request={}, api_key_id=key.id, callback_url=url
    )
    job_store.complete_job(job.id, {}, {"job_id": job.id, "status": "completed"})
    return key, job


def test_a_due_delivery_is_claimed_once_and_retried_on_schedule(job_store):
    _, job = finished_job_with_callback(job_store)
    (claimed,) = job_store.claim_due_deliveries(10)
    assert claimed["job_id"] == job.id
    assert job_store.claim_due_deliveries(10) == []  # leased: a second sender gets nothing
    later = now() + timedelta(seconds=30)
    job_store.record_attempt(
        claimed["id"],
        status_code=500,
        error="boom",
        duration_ms=12,
        outcome="retry",
        next_attempt_at=later,
    )
    assert job_store.claim_due_deliveries(10) == []  # not due until `later`
    (view,) = job_store.deliveries_for_job(job.id)
    assert view["status"] == "pending" and view["next_attempt_at"]
    assert [a["status_code"] for a in view["attempts"]] == [500]
    job_store.record_attempt(
        claimed["id"], status_code=200, error=None, duration_ms=9, outcome="delivered"
    )
    (view,) = job_store.deliveries_for_job(job.id)
    assert view["status"] == "delivered" and view["next_attempt_at"] is None
    assert [a["status_code"] for a in view["attempts"]] == [500, 200]
    assert job_store.delivery_counts() == {"delivered": 1}


def test_a_disabled_endpoint_gets_no_more_callbacks(job_store):
    key, _ = finished_job_with_callback(job_store, "https://gone.example.com/hook")
    job_store.disable_endpoint(key.id, "https://gone.example.com/hook")
    job_store.disable_endpoint(key.id, "https://gone.example.com/hook")  # idempotent
    later = job_store.create_job(
        kind="video",
        reference_image_id="ref_1",
        request={},
        api_key_id=key.id,
        callback_url="https://gone.example.com/hook",
    )
    job_store.complete_job(later.id, {}, {"job_id": later.id})
    (view,) = job_store.deliveries_for_job(later.id)
    assert view["status"] == "disabled"
