"""`char-pipeline serve` for real: API + Dagster webserver + daemon on loopback, one async job."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from char_pipeline.engine.encode import probe_video


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_async_video_through_real_processes(tmp_path, image_paths):
    api_port, dagster_port = _free_port(), _free_port()
    env = {**os.environ, "CHAR_PIPELINE_HOME": str(tmp_path), "CHAR_SENSOR_INTERVAL_SECONDS": "1"}
    env.pop("DAGSTER_HOME", None)
    created = subprocess.run(
        [sys.executable, "-m", "char_pipeline.cli", "keys", "create", "--name", "e2e", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    headers = {"Authorization": f"Bearer {json.loads(created.stdout)['api_key']}"}
    server = subprocess.Popen(
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
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{api_port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            _wait_until(lambda: client.get("/healthz").status_code == 200, 90, "the API")
            with open(image_paths["chelsea"], "rb") as handle:
                reference_id = client.post(
                    "/v1/reference-image", headers=headers, files={"image": ("chelsea.png", handle)}
                ).json()["reference_image_id"]
            z_sequence = client.post(
                "/v1/control/text",
                headers=headers,
                json={"reference_image_id": reference_id, "prompt": "jump", "steps": 24},
            ).json()["z_sequence"]
            accepted = client.post(
                "/v1/generate/video",
                headers=headers,
                json={
                    "reference_image_id": reference_id,
                    "control_type": "text",
                    "z_sequence": z_sequence,
                    "async": True,
                    "resolution": "256x256",
                    "fps": 24,
                },
            )
            assert accepted.status_code == 202, accepted.text
            job_url = accepted.headers["Location"]
            seen_progress = set()

            def finished():
                job = client.get(job_url, headers=headers).json()
                seen_progress.add(job["status"])
                return job if job["status"] in ("completed", "failed") else None

            job = _wait_until(finished, 180, "the job to finish")
            assert job["status"] == "completed", job
            video = client.get(job["result"]["video_url"])
            assert video.status_code == 200
            path = tmp_path / "job.mp4"
            path.write_bytes(video.content)
            info = probe_video(path)
            assert (info.frames, info.width, info.height, info.codec) == (24, 256, 256, "h264")
            assert (
                httpx.get(f"http://127.0.0.1:{dagster_port}/server_info", timeout=30).status_code
                == 200
            )
    finally:
        server.send_signal(signal.SIGINT)
        try:
            output, _ = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
    assert server.returncode == 0, output[-3000:]
