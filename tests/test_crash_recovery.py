"""Real processes on loopback: SIGKILL the API and the daemon mid-render, restart them —
the job still ends, and its callback arrives once, signed, after the receiver's failures."""

import time

import httpx
import pytest

from tests.live_server import (
    LiveServer,
    json_of,
    submit_latent_video,
    upload_reference,
    wait_until,
)
from tests.receiver import Receiver


@pytest.mark.slow
def test_killed_services_recover_and_deliver_once(tmp_path, image_paths):
    server = LiveServer(
        tmp_path,
        CHAR_SENSOR_INTERVAL_SECONDS="1",
        CHAR_JOB_STALE_SECONDS="8",
        CHAR_OUTBOUND_ALLOW="127.0.0.1",
        CHAR_WEBHOOK_RETRY_SCHEDULE="1,1,1,1,1",
    )
    key = server.create_key("crash")
    headers = {"Authorization": f"Bearer {key['api_key']}"}
    script = [(500, {}), (500, {}), (500, {})]
    with (
        Receiver([key["webhook_secret"]], script) as receiver,
        httpx.Client(base_url=server.base_url, timeout=60, headers=headers) as client,
    ):
        try:
            server.start()
            reference_id = upload_reference(client, image_paths["chelsea"])
            job_url = submit_latent_video(
                client,
                reference_id,
                frames=144,
                seed=5,
                resolution="720x720",
                callback_url=receiver.url,
            )
            wait_until(
                lambda: json_of(client.get(job_url))["progress"] > 0, 120, "rendering to start"
            )

            server.kill()  # the API, the daemon, the webserver and the run worker, mid-render
            time.sleep(1)
            server.start()

            job = wait_until(
                lambda: (
                    (j := json_of(client.get(job_url)))["status"] in ("completed", "failed") and j
                ),
                240,
                "the job to end",
            )
            assert job["status"] == "completed" or job["error"]["message"], job
            wait_until(
                lambda: any(r["status"] == 200 for r in receiver.requests), 120, "the callback"
            )
            final = wait_until(lambda: json_of(client.get(job_url)), 30, "the job record")
        finally:
            server.stop()

    statuses = [r["status"] for r in receiver.requests]
    assert statuses == [500, 500, 500, 200]
    assert all(r["verified"] for r in receiver.requests)
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1
    body = receiver.requests[-1]["body"]
    assert body["job_id"] == job["job_id"] and body["status"] == job["status"]
    if job["status"] == "completed":
        assert body["result"]["frames"] == 144 and body["result"]["video_url"]
    (delivery,) = final["deliveries"]
    assert (
        delivery["status"] == "delivered"
        and [a["status_code"] for a in delivery["attempts"]] == statuses
    )
