import base64
from urllib.parse import urlparse

import dagster as dg
import numpy as np
import pytest

from char_pipeline.engine.encode import probe_video, read_frames
from char_pipeline.engine.images import decode_png
from tests.api.conftest import assert_envelope


def _latent(api, auth, length, seed=1):
    return api.post(f"/v1/control/latent?length={length}&seed={seed}", headers=auth).json()[
        "z_sequence"
    ]


def _download(api, url: str) -> bytes:
    parsed = urlparse(url)
    response = api.get(f"{parsed.path}?{parsed.query}")
    assert response.status_code == 200, response.text
    return response.content


def test_frame_by_url_with_mask_and_etag(api, auth, present_id):
    z_t = _latent(api, auth, 1, seed=3)[0]
    body = {
        "reference_image_id": present_id,
        "control_type": "latent",
        "z_t": z_t,
        "resolution": "160x120",
        "include_mask": True,
        "identity_strength": 0.7,
        "temporal_strength": 0.5,
    }
    response = api.post("/v1/generate/frame", headers=auth, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    frame = decode_png(_download(api, answer["image_url"]))
    mask = decode_png(_download(api, answer["mask_url"]))
    assert frame.shape == (120, 160, 3) and mask.shape == (120, 160) and mask.max() == 255
    assert answer["resolution"] == "160x120" and answer["expires_at"].endswith("Z")
    params = answer["backend"]["parameters"]
    assert (
        "not applicable" in params["identity_strength"]["effect"]
        and params["temporal_strength"]["value"] == 0.5
    )
    etag = response.headers["ETag"]
    assert (
        api.post(
            "/v1/generate/frame", headers={**auth, "If-None-Match": etag}, json=body
        ).status_code
        == 304
    )
    # An identical request reuses the stored render instead of rendering again.
    generated = api.state.store.path("generated")
    before = sorted(p.name for p in generated.iterdir())
    again = api.post("/v1/generate/frame", headers=auth, json=body).json()
    assert again["etag"] == answer["etag"] and sorted(p.name for p in generated.iterdir()) == before


def test_frame_base64_and_errors(api, auth, present_id):
    z_t = _latent(api, auth, 1, seed=4)[0]
    body = {
        "reference_image_id": present_id,
        "control_type": "latent",
        "z_t": z_t,
        "resolution": "64x64",
        "output_format": "base64",
    }
    answer = api.post("/v1/generate/frame", headers=auth, json=body).json()
    assert decode_png(base64.b64decode(answer["image_base64"])).shape == (64, 64, 3)
    assert_envelope(
        api.post("/v1/generate/frame", headers=auth, json={**body, "z_t": [0.12, -0.33, 0.77]}),
        422,
        "UnprocessableEntity",
    )
    assert_envelope(
        api.post("/v1/generate/frame", headers=auth, json={**body, "resolution": "big"}),
        422,
        "UnprocessableEntity",
    )
    assert_envelope(
        api.post("/v1/generate/frame", headers=auth, json={**body, "control_type": "sound"}),
        422,
        "UnprocessableEntity",
    )
    error = assert_envelope(
        api.post("/v1/generate/frame", headers=auth, json={**body, "resolution": "3840x2160"}),
        422,
        "ResourceExhausted",
    )
    assert "a100" in error["message"]
    assert_envelope(
        api.post("/v1/generate/frame", headers={**auth, "X-GPU-Type": "h100"}, json=body),
        422,
        "UnprocessableEntity",
    )
    assert_envelope(
        api.post("/v1/generate/frame", headers={**auth, "X-Instance-Count": "5"}, json=body),
        422,
        "UnprocessableEntity",
    )
    ok = api.post(
        "/v1/generate/frame",
        headers={**auth, "X-GPU-Type": "a100"},
        json={**body, "resolution": "2560x1440"},
    )
    assert ok.status_code == 200


def test_tampered_and_expired_links_are_403(api, auth, present_id):
    z_t = _latent(api, auth, 1, seed=5)[0]
    answer = api.post(
        "/v1/generate/frame",
        headers=auth,
        json={
            "reference_image_id": present_id,
            "control_type": "latent",
            "z_t": z_t,
            "resolution": "64x64",
            "url_ttl": 60,
        },
    ).json()
    parsed = urlparse(answer["image_url"])
    # Tamper with the signature's last character (to another one: it may already be "0").
    changed = "1" if parsed.query.endswith("0") else "0"
    assert_envelope(api.get(f"{parsed.path}?{parsed.query[:-1]}{changed}"), 403, "Forbidden")
    query = dict(part.split("=") for part in parsed.query.split("&"))
    from char_pipeline.links import signature

    stale = 1_000_000
    forged = f"{parsed.path}?expires={stale}&signature={signature(b'test-signing-key', parsed.path.removeprefix('/v1/files/'), stale)}"
    assert_envelope(api.get(forged), 403, "Forbidden")
    assert query["signature"]


@pytest.mark.parametrize("video_format", ["mp4", "gif"])
def test_sync_video(api, auth, present_id, video_format, tmp_path):
    z_sequence = _latent(api, auth, 6, seed=6)
    body = {
        "reference_image_id": present_id,
        "control_type": "latent",
        "z_sequence": z_sequence,
        "format": video_format,
        "resolution": "96x64",
        "fps": 12,
    }
    response = api.post("/v1/generate/video", headers=auth, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    path = tmp_path / f"v.{video_format}"
    path.write_bytes(_download(api, answer["video_url"]))
    info = probe_video(path)
    assert (info.frames, info.width, info.height) == (6, 96, 64) == (answer["frames"], 96, 64)
    assert info.codec == ("h264" if video_format == "mp4" else "gif")
    assert_envelope(
        api.post("/v1/generate/video", headers=auth, json={**body, "z_sequence": []}),
        422,
        "UnprocessableEntity",
    )
    assert_envelope(
        api.post(
            "/v1/generate/video",
            headers=auth,
            json={**body, "resolution": "95x64", "format": "mp4"},
        ),
        422,
        "UnprocessableEntity",
    )


def test_async_video_runs_through_dagster_and_matches_sync(api, auth, present_id, tmp_path):
    """202 → the sensor's run request → a real run on a Dagster instance → completed job."""
    from char_pipeline.definitions import build_definitions
    from char_pipeline.sensors.jobs import job_submission_sensor

    z_sequence = _latent(api, auth, 8, seed=8)
    body = {
        "reference_image_id": present_id,
        "control_type": "latent",
        "z_sequence": z_sequence,
        "resolution": "96x64",
        "fps": 12,
        "async": True,
        "url_ttl": 3600,
    }
    response = api.post("/v1/generate/video", headers=auth, json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    assert response.headers["Location"] == f"/v1/jobs/{job_id}"
    assert response.json()["status_url"].endswith(f"/v1/jobs/{job_id}")
    pending = api.get(f"/v1/jobs/{job_id}", headers=auth).json()
    assert pending["status"] == "pending" and pending["progress"] == 0

    settings = api.state.settings
    defs = build_definitions(settings)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        resources = {"jobs": defs.resources["jobs"]}
        result = job_submission_sensor(
            dg.build_sensor_context(instance=instance, resources=resources)
        )
        (request,) = [r for r in result.run_requests if r.run_key == job_id]
        assert request.partition_key == present_id and request.tags["char/job_id"] == job_id
        instance.add_dynamic_partitions("reference_image_id", [present_id])
        run = defs.resolve_job_def("render_request_job").execute_in_process(
            run_config=request.run_config,
            instance=instance,
            partition_key=present_id,
            tags=request.tags,
        )
        assert run.success
        # The cursor moves on: the same job is not requested twice.
        again = job_submission_sensor(
            dg.build_sensor_context(instance=instance, resources=resources, cursor=result.cursor)
        )
        assert not again.run_requests

    job = api.get(f"/v1/jobs/{job_id}", headers=auth).json()
    assert job["status"] == "completed" and job["progress"] == 100
    async_video = tmp_path / "async.mp4"
    async_video.write_bytes(_download(api, job["result"]["video_url"]))
    assert job["result"]["frames"] == 8 and job["result"]["format"] == "mp4"

    sync = api.post(
        "/v1/generate/video",
        headers=auth,
        json={
            **body,
            "async": False,
            # Another generator mode changes the ETag but not the frames where this deployment
            # serves it with the mesh renderer (generator_aliases), so the sync path really
            # renders instead of answering from the async job's cache entry.
            "model": "transformer",
            "url_ttl": 60,
        },
    )
    assert sync.status_code == 200, sync.text
    backend = sync.json()["backend"]
    assert backend["model_requested"] == "transformer" and backend["model_served"] == "gan"
    assert "CHAR_GENERATOR_ALIASES" in backend["model_note"]
    sync_video = tmp_path / "sync.mp4"
    sync_video.write_bytes(_download(api, sync.json()["video_url"]))
    for a, b in zip(read_frames(async_video), read_frames(sync_video), strict=True):
        assert np.array_equal(a, b)


def test_large_videos_go_async_and_unknown_jobs_404(api, auth, present_id):
    z_sequence = _latent(api, auth, 13, seed=9)  # sync_max_frames is 12 in these tests
    body = {
        "reference_image_id": present_id,
        "control_type": "latent",
        "z_sequence": z_sequence,
        "resolution": "64x64",
    }
    response = api.post("/v1/generate/video", headers=auth, json=body)
    assert response.status_code == 202
    assert_envelope(api.get("/v1/jobs/job_doesnotexist", headers=auth), 404, "NotFound")
    _, other = api.state.jobs.create_key("other", ["generate:write"])
    other_view = api.get(
        f"/v1/jobs/{response.json()['job_id']}", headers={"Authorization": f"Bearer {other}"}
    )
    assert_envelope(other_view, 404, "NotFound")
    too_big = api.post(
        "/v1/generate/video",
        headers=auth,
        json={**body, "z_sequence": z_sequence * 200, "resolution": "1920x1080"},
    )
    assert_envelope(too_big, 422, "ResourceExhausted")
