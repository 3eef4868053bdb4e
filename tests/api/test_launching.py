"""A lone async job's run is launched by the API at once (launching.GraphQLLauncher); when
that fails, the job is left to the submission sensor like any other. The launch that works
runs for real in tests/test_serve_e2e.py (serve's webserver and run coordinator)."""

from __future__ import annotations

import socket

import dagster as dg
from fastapi.testclient import TestClient

from char_pipeline.api.app import create_app
from char_pipeline.settings import Settings
from tests.api.conftest import upload, wait_processed


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket closes


def test_a_failed_launch_leaves_the_job_to_the_sensor(tmp_path, image_paths):
    from char_pipeline.definitions import build_definitions
    from char_pipeline.sensors.jobs import job_submission_sensor

    settings = Settings(
        pipeline_home=tmp_path / "home",
        url_signing_key="test",
        dagster_url=f"http://127.0.0.1:{_closed_port()}",
    )
    app = create_app(settings)
    with TestClient(app) as api:
        jobs = app.state.char.jobs
        _, plaintext = jobs.create_key(
            "launch", ["reference:read", "control:write", "generate:write"]
        )
        auth = {"Authorization": f"Bearer {plaintext}"}
        reference_id = upload(api, auth, image_paths["present"])
        assert wait_processed(api, auth, reference_id)["status"] == "processed"
        z = api.post("/v1/control/latent?length=4&seed=3", headers=auth).json()["z_sequence"]
        answer = api.post(
            "/v1/generate/video",
            headers=auth,
            json={
                "reference_image_id": reference_id,
                "control_type": "latent",
                "z_sequence": z,
                "resolution": "64x64",
                "async": True,
            },
        )
        assert answer.status_code == 202, answer.text
        job = jobs.get_job(answer.json()["job_id"])
        assert "launch" not in job.request  # the launch failed: not marked
        defs = build_definitions(settings)
        for name in ("dagster", "dagster2"):
            (tmp_path / name).mkdir()
        with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
            context = dg.build_sensor_context(
                instance=instance, resources={"jobs": defs.resources["jobs"]}
            )
            result = job_submission_sensor(context)
        (request,) = result.run_requests
        assert request.run_key == job.id and request.job_name == "render_request_job"

        # A job marked launched (its run exists) is never requested again by the sensor.
        jobs.create_job(
            kind="video",
            reference_image_id=reference_id,
            request={**job.request, "launch": {"by": "api", "run_id": "r"}},
        )
        with dg.instance_for_test(temp_dir=str(tmp_path / "dagster2")) as instance:
            context = dg.build_sensor_context(
                instance=instance,
                cursor=result.cursor,
                resources={"jobs": defs.resources["jobs"]},
            )
            assert not job_submission_sensor(context).run_requests
