"""The generative modes through the API and a Dagster run, on tiny random models (CPU).

This module's deployment has a model store (tests/tiny_models.py) and allows CPU generation;
the shared one (conftest) has no weights and maps 'transformer' to the mesh renderer."""

from __future__ import annotations

import base64

import dagster as dg
import numpy as np
import pytest
from fastapi.testclient import TestClient

from char_pipeline.api.app import create_app
from char_pipeline.engine.encode import probe_video
from char_pipeline.engine.images import decode_png
from char_pipeline.settings import Settings
from tests.api.conftest import api_client, assert_envelope, run_jobs, upload, wait_processed
from tests.api.test_generate import _download, _latent
from tests.tiny_models import build_store


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="module")
def api(tmp_path_factory, models):
    with api_client(
        tmp_path_factory.mktemp("gen_home"),
        sync_max_frames=12,
        models_dir=models,
        allow_cpu_generation=True,
    ) as client:
        yield client


@pytest.fixture(scope="module")
def astronaut_id(api, auth, image_paths) -> str:
    reference_id = upload(api, auth, image_paths["astronaut"])
    assert wait_processed(api, auth, reference_id, timeout=120)["status"] == "processed"
    return reference_id


@pytest.mark.parametrize(
    ("mode", "backend"), [("diffusion", "AnimateDiff"), ("transformer", "Wan 2.1 VACE")]
)
def test_a_frame_in_each_generative_mode(api, auth, astronaut_id, mode, backend):
    body = {
        "reference_image_id": astronaut_id,
        "control_type": "latent",
        "z_t": _latent(api, auth, 1, seed=4)[0],
        "resolution": "64x64",
        "model": mode,
        "output_format": "base64",
        "identity_strength": 0.8,
        "seed": 7,
    }
    response = api.post("/v1/generate/frame", headers=auth, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    report = answer["backend"]
    assert report["model_served"] == mode and backend in report["generator"]["backend"]
    assert report["generator"]["device"] == "cpu" and report["generator"]["dtype"] == "float32"
    assert "CHAR_ALLOW_CPU_GENERATION" in report["generator"]["notes"][0]
    assert report["parameters"]["identity_strength"]["value"] == 0.8
    frame = decode_png(base64.b64decode(answer["image_base64"]))
    assert frame.shape[:2] == (64, 64)
    other_seed = api.post("/v1/generate/frame", headers=auth, json={**body, "seed": 8}).json()
    assert other_seed["etag"] != answer["etag"]
    assert not np.array_equal(frame, decode_png(base64.b64decode(other_seed["image_base64"])))
    too_big = api.post("/v1/generate/frame", headers=auth, json={**body, "resolution": "640x480"})
    assert "512 px" in assert_envelope(too_big, 422, "ResourceExhausted")["message"]


def test_a_sync_diffusion_video(api, auth, astronaut_id, tmp_path):
    body = {
        "reference_image_id": astronaut_id,
        "control_type": "latent",
        "z_sequence": _latent(api, auth, 6, seed=2),
        "resolution": "64x64",
        "fps": 12,
        "model": "diffusion",
    }
    response = api.post("/v1/generate/video", headers=auth, json=body)
    assert response.status_code == 200, response.text
    path = tmp_path / "video.mp4"
    path.write_bytes(_download(api, response.json()["video_url"]))
    info = probe_video(path)
    assert (info.frames, info.width, info.height) == (6, 64, 64)
    assert response.json()["backend"]["generator"]["frame_window"] == 16


def test_an_async_diffusion_job_runs_through_dagster(api, auth, astronaut_id, tmp_path):
    from char_pipeline.definitions import build_definitions
    from char_pipeline.sensors.jobs import job_submission_sensor

    body = {
        "reference_image_id": astronaut_id,
        "control_type": "latent",
        "z_sequence": _latent(api, auth, 5, seed=3),
        "resolution": "64x64",
        "fps": 10,
        "model": "diffusion",
        "async": True,
    }
    response = api.post("/v1/generate/video", headers=auth, json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    defs = build_definitions(api.state.settings)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = job_submission_sensor(
            dg.build_sensor_context(instance=instance, resources={"jobs": defs.resources["jobs"]})
        )
        (request,) = [r for r in result.run_requests if r.run_key == job_id]
        assert request.run_config["ops"]["frames"]["config"]["generation"][job_id]["model"] == (
            "diffusion"
        )
        instance.add_dynamic_partitions("reference_image_id", [astronaut_id])
        run = defs.resolve_job_def("render_request_job").execute_in_process(
            run_config=request.run_config,
            instance=instance,
            partition_key=astronaut_id,
            tags=request.tags,
        )
        assert run.success
        frames = run.output_for_node("frames")
    assert frames["controls"][job_id]["generator"]["model"] == "diffusion"
    job = api.get(f"/v1/jobs/{job_id}", headers=auth).json()
    assert job["status"] == "completed", job
    assert job["result"]["frames"] == 5
    assert "AnimateDiff" in job["result"]["backend"]["generator"]["backend"]


def test_missing_weights_and_missing_gpu_are_clear_errors(tmp_path, image_paths):
    """No weights → 422 ModelNotInstalled naming the pull command; weights but no GPU (CPU
    generation not allowed) → 503 ResourceUnavailable. Checked before any work."""

    settings = Settings(
        pipeline_home=tmp_path / "home", url_signing_key="k", allow_cpu_generation=False
    )
    app = create_app(settings)
    with TestClient(app) as client:
        _, key = app.state.char.jobs.create_key(
            "t", ["reference:read", "generate:write", "control:write"]
        )
        headers = {"Authorization": f"Bearer {key}"}
        reference_id = upload(client, headers, image_paths["present"])
        wait_processed(client, headers, reference_id)
        body = {
            "reference_image_id": reference_id,
            "control_type": "latent",
            "z_t": [0.0] * 64,
            "resolution": "64x64",
            "model": "diffusion",
        }
        error = assert_envelope(
            client.post("/v1/generate/frame", headers=headers, json=body), 422, "ModelNotInstalled"
        )
        assert "char-pipeline models pull sd15" in error["message"]
        build_store(settings.models_root)
        response = client.post("/v1/generate/frame", headers=headers, json=body)
        assert "CHAR_ALLOW_CPU_GENERATION" in assert_envelope(response, 503, "ResourceUnavailable")["message"]  # fmt: skip


def test_a_batch_across_references_renders_each_task_in_its_mode(
    api, auth, astronaut_id, image_paths, tmp_path
):
    """One batch_render_job run; each task carries its own served mode and options."""
    present_id = upload(api, auth, image_paths["present"])
    assert wait_processed(api, auth, present_id)["status"] == "processed"

    def task(reference_id, mode, seed):
        return {
            "reference_image_id": reference_id,
            "control_type": "latent",
            "z_sequence": _latent(api, auth, 5, seed=seed),
            "resolution": "64x64",
            "fps": 8,
            "model": mode,
        }

    body = {
        "tasks": [task(astronaut_id, "transformer", 11), task(present_id, "diffusion", 12)],
        "async": True,
    }
    answer = api.post("/v1/batch/video", headers=auth, json=body)
    assert answer.status_code == 202, answer.text
    job_ids = [t["job_id"] for t in answer.json()["tasks"]]
    (request,) = run_jobs(api, tmp_path, job_ids)
    assert request.job_name == "batch_render_job"
    views = [api.get(f"/v1/jobs/{job_id}", headers=auth).json() for job_id in job_ids]
    assert [v["status"] for v in views] == ["completed", "completed"], views
    assert "Wan 2.1 VACE" in views[0]["result"]["backend"]["generator"]["backend"]
    assert "AnimateDiff" in views[1]["result"]["backend"]["generator"]["backend"]
    assert views[0]["result"]["frames"] == views[1]["result"]["frames"] == 5
