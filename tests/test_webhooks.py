"""Callbacks: signing, retries, 410/429 handling, outbound safety — against a real receiver."""

import time
from datetime import UTC, datetime

import pytest

from char_pipeline.jobstore import JobStore
from char_pipeline.webhooks import OutboundUrlError, WebhookSender, check_outbound_url, sign_headers
from tests.receiver import Receiver

LOOPBACK = ["127.0.0.1"]


@pytest.fixture()
def jobs(tmp_path) -> JobStore:
    return JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")


def _finished_job(jobs: JobStore, key_id: str, url: str) -> str:
    job = jobs.create_job(
        kind="video",
        reference_image_id="ref_abcd1234",
        request={},
        api_key_id=key_id,
        callback_url=url,
    )
    jobs.complete_job(
        job.id,
        {"video_key": "v.mp4"},
        {"job_id": job.id, "status": "completed", "result": {"video_url": "https://x/v.mp4"}},
    )
    return job.id


def _drain(sender: WebhookSender, jobs: JobStore, rounds: int = 20) -> None:
    for _ in range(rounds):  # bounded: each round sends what is due, then waits briefly
        sender.deliver_due()
        if jobs.delivery_counts().get("pending", 0) == 0:
            return
        time.sleep(0.05)


def test_retries_until_delivered_with_a_stable_id(jobs):
    key, _ = jobs.create_key("hooks", ["generate:write"])
    script = [(500, {}), (500, {}), (500, {})]
    with Receiver([key.webhook_secret], script) as receiver:
        job_id = _finished_job(jobs, key.id, receiver.url)
        sender = WebhookSender(jobs, allow=LOOPBACK, schedule=(0, 0, 0, 0))
        _drain(sender, jobs)
        sender.close()
    assert [r["status"] for r in receiver.requests] == [500, 500, 500, 200]
    assert all(r["verified"] for r in receiver.requests)
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1
    assert receiver.requests[-1]["body"] == {
        "job_id": job_id,
        "status": "completed",
        "result": {"video_url": "https://x/v.mp4"},
    }
    (delivery,) = jobs.deliveries_for_job(job_id)
    assert delivery["status"] == "delivered" and [
        a["status_code"] for a in delivery["attempts"]
    ] == [500, 500, 500, 200]


def test_gives_up_after_the_schedule(jobs):
    key, _ = jobs.create_key("hooks", ["generate:write"])
    with Receiver([key.webhook_secret], [(500, {})] * 10) as receiver:
        job_id = _finished_job(jobs, key.id, receiver.url)
        sender = WebhookSender(jobs, allow=LOOPBACK, schedule=(0, 0))
        _drain(sender, jobs)
        sender.close()
    assert len(receiver.requests) == 3
    assert jobs.deliveries_for_job(job_id)[0]["status"] == "failed"


def test_410_disables_the_endpoint_for_that_key(jobs):
    key, _ = jobs.create_key("hooks", ["generate:write"])
    with Receiver([key.webhook_secret], [(410, {})]) as receiver:
        first = _finished_job(jobs, key.id, receiver.url)
        sender = WebhookSender(jobs, allow=LOOPBACK, schedule=(0, 0))
        _drain(sender, jobs)
        second = _finished_job(jobs, key.id, receiver.url)
        _drain(sender, jobs)
        sender.close()
    assert len(receiver.requests) == 1
    assert jobs.deliveries_for_job(first)[0]["status"] == "disabled"
    assert jobs.deliveries_for_job(second)[0] == {
        **jobs.deliveries_for_job(second)[0],
        "status": "disabled",
        "attempts": [],
    }


def test_429_waits_for_retry_after(jobs):
    key, _ = jobs.create_key("hooks", ["generate:write"])
    with Receiver([key.webhook_secret], [(429, {"Retry-After": "120"})]) as receiver:
        job_id = _finished_job(jobs, key.id, receiver.url)
        sender = WebhookSender(jobs, allow=LOOPBACK, schedule=(0, 0))
        sender.deliver_due()
        sender.deliver_due()  # not due yet
        sender.close()
    assert len(receiver.requests) == 1
    (delivery,) = jobs.deliveries_for_job(job_id)
    next_at = datetime.fromisoformat(delivery["next_attempt_at"].replace("Z", "+00:00"))
    assert (next_at - datetime.now(UTC)).total_seconds() > 100


def test_rotation_signs_with_both_secrets(jobs):
    key, _ = jobs.create_key("hooks", ["generate:write"])
    old_secret = key.webhook_secret
    new_secret = jobs.rotate_webhook_secret(key.id)
    with Receiver([old_secret]) as old_receiver, Receiver([new_secret]) as new_receiver:
        sender = WebhookSender(jobs, allow=LOOPBACK, schedule=(0,))
        _finished_job(jobs, key.id, old_receiver.url)
        _finished_job(jobs, key.id, new_receiver.url)
        _drain(sender, jobs)
        sender.close()
    assert old_receiver.requests[0]["verified"] and new_receiver.requests[0]["verified"]
    assert len(old_receiver.requests[0]["headers"]["webhook-signature"].split(" ")) == 2


def test_no_redirects_followed(jobs):
    key, _ = jobs.create_key("hooks", ["generate:write"])
    with Receiver(
        [key.webhook_secret], [(302, {"Location": "http://127.0.0.1:9/elsewhere"})] * 5
    ) as receiver:
        job_id = _finished_job(jobs, key.id, receiver.url)
        sender = WebhookSender(jobs, allow=LOOPBACK, schedule=(0,))
        _drain(sender, jobs)
        sender.close()
    assert len(receiver.requests) == 2
    assert [a["status_code"] for a in jobs.deliveries_for_job(job_id)[0]["attempts"]] == [302, 302]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8080/hook", "https"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[::1]/hook", "loopback"),
        ("https://user:pass@93.184.216.34/hook", "credentials"),
        ("ftp://93.184.216.34/hook", "https"),
        ("not a url", "https"),
    ],
)
def test_outbound_urls_are_refused(url, message):
    with pytest.raises(OutboundUrlError, match=message):
        check_outbound_url(url, [])


def test_public_https_and_allowlisted_urls_pass():
    check_outbound_url("https://93.184.216.34/hook", [])
    check_outbound_url("http://127.0.0.1:8080/hook", ["127.0.0.1"])
    check_outbound_url("https://10.1.2.3/hook", ["10.0.0.0/8"])


def test_signature_headers_match_the_spec():
    headers = sign_headers("msg_1", '{"a":1}', ["whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
    assert set(headers) >= {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
