"""POST /v1/generate/nerf: models, videos along trajectories, jobs, and refused cameras."""

import json

import dagster as dg
import numpy as np
import pytest

from char_pipeline.engine import nerf
from char_pipeline.engine.encode import probe_video, read_frames
from char_pipeline.engine.images import decode_png
from tests.api.conftest import assert_envelope
from tests.api.test_generate import _download


def _turntable(frames: int) -> list[dict]:
    return [pose.to_json() for pose in nerf.orbit(frames)]


def test_sync_video_along_a_trajectory_with_etag(api, auth, present_id, tmp_path):
    body = {
        "reference_image_id": present_id,
        "camera_trajectory": _turntable(6),
        "resolution": "96x64",
        "fps": 12,
    }
    response = api.post("/v1/generate/nerf", headers=auth, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["output_format"] == "video" and answer["frames"] == 6
    assert answer["quality"]["hole_fraction_max"] <= 0.005
    assert answer["backend"]["renderer"] == "voxel-radiance-field"
    video = tmp_path / "nerf.mp4"
    video.write_bytes(_download(api, answer["video_url"]))
    info = probe_video(video)
    assert (info.frames, info.width, info.height, info.codec) == (6, 96, 64, "h264")
    assert abs(info.duration_s - 0.5) < 0.05
    model = nerf.RadianceField.from_bytes(_download(api, answer["model_url"]))
    assert model.header()["reference_camera"]["fov"] == pytest.approx(nerf.REFERENCE_FOV)
    etag = response.headers["ETag"]
    again = api.post("/v1/generate/nerf", headers={**auth, "If-None-Match": etag}, json=body)
    assert again.status_code == 304 and again.headers["ETag"] == etag


def test_model_output_has_a_header_and_a_preview(api, auth, present_id):
    pose = {"position": [0.6, 0.3, 1.8], "look_at": [0, 0, 0], "up": [0, 1, 0], "fov": 40}
    response = api.post(
        "/v1/generate/nerf",
        headers=auth,
        json={
            "reference_image_id": present_id,
            "camera_trajectory": [pose],
            "output_format": "nerf_model",
            "resolution": "64x48",
            "url_ttl": 600,
        },
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["output_format"] == "nerf_model" and answer["model_format"] == "npz"
    assert answer["header"]["resolution"][0] > 64 and answer["size_bytes"] > 0
    assert answer["preview_camera"]["position"] == [0.6, 0.3, 1.8]
    model = nerf.RadianceField.from_bytes(_download(api, answer["model_url"]))
    assert model.header()["bounds"] == answer["header"]["bounds"]
    preview = decode_png(_download(api, answer["image_url"]))
    assert preview.shape[:2] == (48, 64)
    rendered, _ = model.render(nerf.parse_camera(pose), 64, 48)
    assert np.array_equal(preview[..., :3], rendered)


BAD = {"position": [0, 0, 2.5], "look_at": [0, 0, 0], "up": [0, 1, 0], "fov": 40}


@pytest.mark.parametrize(
    ("trajectory", "fragment"),
    [
        ([], "camera_trajectory"),
        ([{**BAD, "position": [0, 0]}], "camera_trajectory"),
        ([{**BAD, "position": [0, float("nan"), 2]}], "finite"),
        ([{**BAD, "look_at": [0, 0, 2.5]}], "look_at equals position"),
        ([{**BAD, "fov": 500}], "fov"),
        ([{**BAD, "fov": 0.01}], "fov"),
        ([{**BAD, "up": [0, 0, -3]}], "parallel"),
        ([{**BAD, "roll": 3}], "roll"),
    ],
)
def test_invalid_trajectories_are_422_envelopes(api, auth, present_id, trajectory, fragment):
    body = {"reference_image_id": present_id, "camera_trajectory": trajectory}
    response = api.post(
        "/v1/generate/nerf",
        headers={**auth, "Content-Type": "application/json"},
        content=json.dumps(body),  # json.dumps writes NaN, as some clients do
    )
    error = assert_envelope(response, 422, "UnprocessableEntity")
    assert fragment in json.dumps(error)


def test_other_refusals(api, auth, present_id):
    body = {"reference_image_id": present_id, "camera_trajectory": _turntable(2)}
    assert_envelope(
        api.post("/v1/generate/nerf", headers=auth, json={**body, "resolution": "95x64"}),
        422,
        "UnprocessableEntity",
    )
    assert_envelope(
        api.post("/v1/generate/nerf", headers=auth, json={**body, "resolution": "3840x2160"}),
        422,
        "ResourceExhausted",
    )
    assert_envelope(
        api.post(
            "/v1/generate/nerf", headers=auth, json={**body, "reference_image_id": "ref_nope"}
        ),
        404,
        "NotFound",
    )
    assert_envelope(
        api.post("/v1/generate/nerf", headers=auth, json={**body, "output_format": "mesh"}),
        422,
        "UnprocessableEntity",
    )


def test_async_nerf_video_runs_through_dagster_and_matches_sync(api, auth, present_id, tmp_path):
    from char_pipeline.definitions import build_definitions
    from char_pipeline.sensors.jobs import job_submission_sensor

    body = {
        "reference_image_id": present_id,
        "camera_trajectory": [pose.to_json() for pose in nerf.arc(5, elevation=15)],
        "resolution": "96x64",
        "fps": 10,
        "async": True,
    }
    response = api.post("/v1/generate/nerf", headers=auth, json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    settings = api.state.settings
    defs = build_definitions(settings)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        resources = {"jobs": defs.resources["jobs"]}
        result = job_submission_sensor(
            dg.build_sensor_context(instance=instance, resources=resources)
        )
        (request,) = [r for r in result.run_requests if r.run_key == job_id]
        assert request.job_name == "nerf_request_job"
        instance.add_dynamic_partitions("reference_image_id", [present_id])
        run = defs.resolve_job_def("nerf_request_job").execute_in_process(
            run_config=request.run_config,
            instance=instance,
            partition_key=present_id,
            tags=request.tags,
        )
        assert run.success
    job = api.get(f"/v1/jobs/{job_id}", headers=auth).json()
    assert job["status"] == "completed" and job["progress"] == 100, job
    assert job["result"]["frames"] == 5 and job["result"]["output_format"] == "video"
    async_video = tmp_path / "async.mp4"
    async_video.write_bytes(_download(api, job["result"]["video_url"]))
    sync = api.post("/v1/generate/nerf", headers=auth, json={**body, "async": False, "fps": 11})
    assert sync.status_code == 200, sync.text
    sync_video = tmp_path / "sync.mp4"
    sync_video.write_bytes(_download(api, sync.json()["video_url"]))
    # Same frames; the fps differs (to bypass the cache), and x264's rate control with it.
    for a, b in zip(read_frames(async_video), read_frames(sync_video), strict=True):
        assert np.abs(a.astype(int) - b).mean() < 3.0


def test_long_trajectories_become_jobs(api, auth, present_id):
    response = api.post(
        "/v1/generate/nerf",
        headers=auth,
        json={"reference_image_id": present_id, "camera_trajectory": _turntable(60)},
    )
    assert response.status_code == 202, response.text
    assert api.get(response.headers["Location"], headers=auth).json()["status"] == "pending"
