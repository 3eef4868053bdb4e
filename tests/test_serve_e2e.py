"""`char-pipeline serve` for real: API + Dagster webserver + daemon on loopback, one async job."""

import httpx
import pytest

from char_pipeline.engine.encode import probe_video
from tests.live_server import LiveServer, json_of, wait_until


@pytest.mark.slow
def test_async_video_through_real_processes(tmp_path, image_paths):
    server = LiveServer(tmp_path, CHAR_SENSOR_INTERVAL_SECONDS="1")
    headers = {"Authorization": f"Bearer {server.create_key('e2e')['api_key']}"}
    with server, httpx.Client(base_url=server.base_url, timeout=60, headers=headers) as client:
        with open(image_paths["chelsea"], "rb") as handle:
            reference_id = client.post(
                "/v1/reference-image", files={"image": ("chelsea.png", handle)}
            ).json()["reference_image_id"]
        z_sequence = client.post(
            "/v1/control/text",
            json={"reference_image_id": reference_id, "prompt": "jump", "steps": 24},
        ).json()["z_sequence"]
        accepted = client.post(
            "/v1/generate/video",
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
        job = wait_until(
            lambda: (j := json_of(client.get(job_url)))["status"] in ("completed", "failed") and j,
            180,
            "the job to finish",
        )
        assert job["status"] == "completed", job
        # The API launched the run at once (not the sensor's next tick), and only that run.
        import dagster as dg

        from char_pipeline.sensors.jobs import job_tag

        with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
            runs = instance.get_runs(filters=dg.RunsFilter(tags={job_tag(job["job_id"]): "1"}))
        assert [run.tags.get("char/submitted_by") for run in runs] == ["api"]
        video = client.get(job["result"]["video_url"])
        assert video.status_code == 200
        path = tmp_path / "job.mp4"
        path.write_bytes(video.content)
        info = probe_video(path)
        assert (info.frames, info.width, info.height, info.codec) == (24, 256, 256, "h264")
        assert (
            httpx.get(f"http://127.0.0.1:{server.dagster_port}/server_info", timeout=30).status_code
            == 200
        )
    assert server.process.returncode == 0  # Ctrl-C stopped all three cleanly
