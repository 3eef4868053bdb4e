"""Real processes on loopback: SIGKILL the API and the daemon mid-render, restart them —
the job still ends, and its callback arrives once, signed, after the receiver's failures."""

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.receiver import Receiver
from tests.test_serve_e2e import _free_port, _wait_until


def _serve(env, api_port, dagster_port):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "char_pipeline.cli",
            "serve",
            "--api-port",
            str(api_port),
            "--dagster-port",
            str(dagster_port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, so SIGKILL reaches every child
    )


@pytest.mark.slow
def test_killed_services_recover_and_deliver_once(tmp_path, image_paths):
    env = {
        **os.environ,
        "CHAR_PIPELINE_HOME": str(tmp_path),
        "CHAR_SENSOR_INTERVAL_SECONDS": "1",
        "CHAR_JOB_STALE_SECONDS": "8",
        "CHAR_OUTBOUND_ALLOW": "127.0.0.1",
        "CHAR_WEBHOOK_RETRY_SCHEDULE": "1,1,1,1,1",
    }
    env.pop("DAGSTER_HOME", None)
    created = subprocess.run(
        [sys.executable, "-m", "char_pipeline.cli", "keys", "create", "--name", "crash", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    key = json.loads(created.stdout)
    headers = {"Authorization": f"Bearer {key['api_key']}"}
    api_port, dagster_port = _free_port(), _free_port()
    base = f"http://127.0.0.1:{api_port}"
    script = [(500, {}), (500, {}), (500, {})]
    server = _serve(env, api_port, dagster_port)
    with (
        Receiver([key["webhook_secret"]], script) as receiver,
        httpx.Client(base_url=base, timeout=60, headers=headers) as client,
    ):
        try:
            _wait_until(lambda: client.get("/healthz").status_code == 200, 90, "the API")
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
            _wait_until(
                lambda: client.get(job_url).json()["progress"] > 0, 120, "rendering to start"
            )

            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
            time.sleep(1)
            server = _serve(env, api_port, dagster_port)
            _wait_until(lambda: client.get("/healthz").status_code == 200, 90, "the restarted API")

            job = _wait_until(
                lambda: (
                    (j := client.get(job_url).json())["status"] in ("completed", "failed") and j
                ),
                240,
                "the job to end",
            )
            assert job["status"] == "completed" or job["error"]["message"], job
            _wait_until(
                lambda: any(r["status"] == 200 for r in receiver.requests), 120, "the callback"
            )
            final = client.get(job_url).json()
        finally:
            os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)

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
