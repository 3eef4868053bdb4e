import base64
import json
from urllib.parse import urlparse

import numpy as np
import pytest

from char_pipeline.engine.images import decode_png
from tests.api.conftest import assert_envelope, upload


def test_upload_and_metadata(api, auth, present_id):
    body = api.get(f"/v1/reference-image/{present_id}", headers=auth).json()
    assert body["status"] == "processed"
    assert (body["width"], body["height"]) == (128, 128)
    assert body["uploaded_at"].endswith("Z")
    assert body["subject_kind"] == "object" and "compact" in body["kind_reason"]


def test_same_bytes_from_one_account_are_one_reference(api, auth, image_paths, present_id):
    assert upload(api, auth, image_paths["present"]) == present_id


def test_bad_uploads(api, auth, image_paths):
    png = image_paths["astronaut"].read_bytes()
    response = api.post(
        "/v1/reference-image", headers=auth, files={"image": ("cut.png", png[:5000])}
    )
    error = assert_envelope(response, 400, "BadRequest")
    assert "truncated" in error["message"]
    response = api.post("/v1/reference-image", headers=auth, files={"image": ("x.txt", b"hello")})
    assert_envelope(response, 400, "BadRequest")
    assert_envelope(
        api.post("/v1/reference-image", headers=auth, data={"name": "no file"}),
        422,
        "UnprocessableEntity",
    )


def test_unknown_reference_is_404(api, auth):
    for path in (
        "/v1/reference-image/ref_0000000000000000",
        "/v1/reference-image/ref_0000000000000000/mask",
        "/v1/reference-image/not-an-id",
    ):
        assert_envelope(api.get(path, headers=auth), 404, "NotFound")


def test_mask_png_etag_and_base64(api, auth, present_id):
    response = api.get(f"/v1/reference-image/{present_id}/mask", headers=auth)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    mask = decode_png(response.content)
    assert mask.shape == (128, 128) and mask.max() == 255
    etag = response.headers["ETag"]
    again = api.get(
        f"/v1/reference-image/{present_id}/mask", headers={**auth, "If-None-Match": etag}
    )
    assert again.status_code == 304 and again.content == b""
    encoded = api.get(f"/v1/reference-image/{present_id}/mask?format=base64", headers=auth).json()
    assert np.array_equal(decode_png(base64.b64decode(encoded["mask"])), mask)
    assert_envelope(
        api.get(f"/v1/reference-image/{present_id}/mask?format=jpeg", headers=auth),
        422,
        "UnprocessableEntity",
    )


def test_features(api, auth, present_id, monkeypatch):
    body = api.get(f"/v1/reference-image/{present_id}/features", headers=auth).json()
    assert body["model"] == "cnn" and body["feature_dim"] == 1280 == len(body["f_identity"])
    assert abs(np.linalg.norm(body["f_identity"]) - 1) < 1e-3
    monkeypatch.delenv("CHAR_VIT_MODEL_PATH", raising=False)
    error = assert_envelope(
        api.get(f"/v1/reference-image/{present_id}/features?model=vit", headers=auth),
        422,
        "ModelNotInstalled",
    )
    assert "not installed" in error["message"]


def test_client_keypoints_at_upload_rig_the_reference(api, auth, image_paths):
    from tests.api.conftest import wait_processed

    keypoints = [
        {"name": "nose", "x": 0.45, "y": 0.15},
        {"name": "left_wrist", "x": 0.85, "y": 0.55},
        {"name": "right_wrist", "x": 0.1, "y": 0.5},
    ]
    with open(image_paths["chelsea"], "rb") as handle:
        response = api.post(
            "/v1/reference-image",
            headers=auth,
            files={"image": ("cat.png", handle)},
            data={"keypoints": json.dumps(keypoints)},
        )
    assert response.status_code == 200, response.text
    reference_id = response.json()["reference_image_id"]
    assert wait_processed(api, auth, reference_id)["status"] == "processed"
    rig = api.state.store.read_json(f"references/{reference_id}/rig.json")
    assert rig["kind"] == "client"
    width = response.json()["width"]
    assert rig["rest_pose"]["joints"]["left_wrist"][0] == pytest.approx(0.85 * width)
    with open(image_paths["chelsea"], "rb") as handle:
        bad = api.post(
            "/v1/reference-image",
            headers=auth,
            files={"image": ("cat.png", handle)},
            data={"keypoints": json.dumps([{"name": "tail", "x": 0.5, "y": 0.5}] * 2)},
        )
    assert_envelope(bad, 422, "UnprocessableEntity")


def test_re_rigging_a_reference_makes_new_renders(api, image_paths):
    """The cache key and ETag cover what processing made of the reference, not only the
    request: new client keypoints → a new rig → a new ETag and a new video."""
    from tests.api.conftest import teammate, wait_processed

    auth = teammate(api, "re-rig")
    data = image_paths["grace_hopper"].read_bytes()

    def upload_with(keypoints):
        fields = {"keypoints": json.dumps(keypoints)} if keypoints else {}
        response = api.post(
            "/v1/reference-image", headers=auth, files={"image": ("g.jpg", data)}, data=fields
        )
        assert response.status_code == 200, response.text
        reference_id = response.json()["reference_image_id"]
        assert wait_processed(api, auth, reference_id)["status"] == "processed"
        return reference_id

    def render(reference_id):
        z = api.post("/v1/control/latent?length=3&seed=5", headers=auth).json()["z_sequence"]
        body = {
            "reference_image_id": reference_id,
            "control_type": "latent",
            "z_sequence": z,
            "resolution": "64x64",
            "format": "gif",
        }
        response = api.post("/v1/generate/video", headers=auth, json=body)
        assert response.status_code == 200, response.text
        url = urlparse(response.json()["video_url"])
        video = api.get(f"{url.path}?{url.query}")
        assert video.status_code == 200
        return response.headers["ETag"], video.content

    reference_id = upload_with(None)
    etag, first = render(reference_id)
    assert render(reference_id)[0] == etag  # unchanged reference: the same key
    keypoints = [
        {"name": "nose", "x": 0.5, "y": 0.25},
        {"name": "left_wrist", "x": 0.9, "y": 0.9},
        {"name": "right_wrist", "x": 0.1, "y": 0.9},
    ]
    assert upload_with(keypoints) == reference_id
    assert api.state.store.read_json(f"references/{reference_id}/rig.json")["kind"] == "client"
    new_etag, second = render(reference_id)
    assert new_etag != etag
    assert second != first
