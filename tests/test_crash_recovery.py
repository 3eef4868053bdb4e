"""Real processes on loopback: SIGKILL the API and the daemon mid-render, restart them —
the job still ends, and its callback arrives once, signed, after the receiver's failures."""

import time

import httpx
import pytest

from tests.live_server import LiveServer, json_of, wait_until
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
            with open(image_paths["chelsea"], "rb") as handle:
                reference_id = client.post(
                    "/v1/reference-image", files={"image": ("chelsea.png", handle)}
                ).json()["reference_image_id"]
            z_sequence = client.post("/v1/control/latent?length=144&seed=5").json()["z_sequence"]
            accepted = client.post(
                "/v1/generate/video",
                json={
                    "reference_image_id": reference_id,
                    "control_type": "latent",
                    "z_sequence": z_sequence,
                    "resolution": "720x720",
                    "async": True,
                    "callback_url": receiver.url,
                },
            )
            assert accepted.status_code == 202, accepted.text
            job_url = accepted.headers["Location"]
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
