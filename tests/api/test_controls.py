import numpy as np
import pytest

from char_pipeline.engine.controls import Z_DIM, joint_offsets
from tests.api.conftest import assert_envelope


def test_pose_control(api, auth, present_id):
    body = {
        "reference_image_id": present_id,
        "keypoints": [{"x": 0.5, "y": 0.1}, {"x": 0.52, "y": 0.25}],
    }
    response = api.post("/v1/control/pose", headers=auth, json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["control_type"] == "pose" and answer["frame_index"] == 0
    assert len(answer["z_t"]) == Z_DIM
    assert np.abs(joint_offsets(np.array(answer["z_t"]))).max() > 0


def test_bad_keypoints_are_422(api, auth, present_id):
    cases = [
        [{"x": 0.5, "y": 0.1}],
        [{"x": 1.5, "y": 0.1}, {"x": 0.5, "y": 0.2}],
        [{"x": 0.5, "y": 0.1, "name": "tail"}, {"x": 0.5, "y": 0.2}],
    ]
    for keypoints in cases:
        response = api.post(
            "/v1/control/pose",
            headers=auth,
            json={"reference_image_id": present_id, "keypoints": keypoints},
        )
        assert_envelope(response, 422, "UnprocessableEntity")
    body = '{"reference_image_id": "%s", "keypoints": [{"x": NaN, "y": 0.1}, {"x": 0.5, "y": 0.2}]}'
    response = api.post("/v1/control/pose", headers=auth, content=body % present_id)
    assert response.status_code in (400, 422)
    response = api.post(
        "/v1/control/pose",
        headers=auth,
        json={"reference_image_id": "ref_0000000000000000", "keypoints": cases[1]},
    )
    assert_envelope(response, 404, "NotFound")


def test_text_control(api, auth, present_id):
    response = api.post(
        "/v1/control/text",
        headers=auth,
        json={
            "reference_image_id": present_id,
            "subject_kind": "figure",  # the matcher is under test, not the kinds
            "prompt": "A dancing robot in a city street",
            "steps": 16,
        },
    )
    answer = response.json()
    assert response.status_code == 200 and answer["steps"] == 16 and answer["motion"] == "dance"
    assert np.array(answer["z_sequence"]).shape == (16, Z_DIM)


def test_latent_control_is_seeded(api, auth):
    first = api.post("/v1/control/latent?length=8&seed=42", headers=auth).json()
    second = api.post("/v1/control/latent?length=8&seed=42", headers=auth).json()
    other = api.post(
        "/v1/control/latent?length=8&seed=43&distribution=uniform", headers=auth
    ).json()
    assert first["z_sequence"] == second["z_sequence"] != other["z_sequence"]
    assert first["length"] == 8 and first["distribution"] == "gaussian" and first["loop"]
    open_ = api.post("/v1/control/latent?length=8&seed=42&loop=false", headers=auth).json()
    assert open_["loop"] is False and open_["z_sequence"] != first["z_sequence"]
    assert_envelope(
        api.post("/v1/control/latent?length=0", headers=auth), 422, "UnprocessableEntity"
    )


def test_text_control_models(api, auth, present_id):
    semantic = api.post(
        "/v1/control/text",
        headers=auth,
        json={
            "reference_image_id": present_id,
            "subject_kind": "figure",  # the matcher is under test, not the kinds
            "prompt": "celebrate the victory",
            "steps": 4,
            "model": "custom-nlp",
        },
    ).json()
    assert (semantic["matcher"], semantic["motion"]) == ("minilm", "clap") and semantic[
        "similarity"
    ] > 0.2
    literal = api.post(
        "/v1/control/text",
        headers=auth,
        json={
            "reference_image_id": present_id,
            "subject_kind": "figure",  # the matcher is under test, not the kinds
            "prompt": "jump twice",
            "steps": 4,
            "model": "custom-nlp",
        },
    ).json()
    assert (literal["matcher"], literal["motion"]) == ("keyword", "jump")
    assert semantic["notice"] is None and literal["notice"] is None
    # A prompt no motion is close to: the nearest plays and the response says so.
    dab = api.post(
        "/v1/control/text",
        headers=auth,
        json={
            "reference_image_id": present_id,
            "subject_kind": "figure",
            "prompt": "dab",
            "steps": 4,
            "model": "custom-nlp",
        },
    ).json()
    assert dab["similarity"] < 0.35 and f"'{dab['motion']}'" in dab["notice"]
    # The seed's default model is CLIP: library words need no encoder, other prompts do —
    # none is installed here, and the API says so.
    keyword = api.post(
        "/v1/control/text",
        headers=auth,
        json={
            "reference_image_id": present_id,
            "subject_kind": "figure",
            "prompt": "wave hello",
            "steps": 4,
        },
    ).json()
    assert (keyword["model"], keyword["matcher"], keyword["motion"]) == ("clip", "keyword", "wave")
    clip = api.post(
        "/v1/control/text",
        headers=auth,
        json={
            "reference_image_id": present_id,
            "subject_kind": "figure",
            "prompt": "celebrate the victory",
            "steps": 4,
        },
    )
    error = assert_envelope(clip, 422, "ModelNotInstalled")
    assert "custom-nlp" in error["message"] and "CHAR_CLIP_MODEL_PATH" in error["message"]


def test_pose_control_with_reference_keypoints(api, auth, present_id):
    """Keypoints of the reference itself (client-supplied) replace the detected rest pose:
    the same pose then encodes to no motion."""
    keypoints = [{"name": "nose", "x": 0.5, "y": 0.2}, {"name": "left_hip", "x": 0.55, "y": 0.7}]
    response = api.post(
        "/v1/control/pose",
        headers=auth,
        json={
            "reference_image_id": present_id,
            "keypoints": keypoints,
            "reference_keypoints": keypoints,
        },
    )
    assert response.status_code == 200, response.text
    assert np.abs(joint_offsets(np.array(response.json()["z_t"]))).max() < 1e-4


def test_text_control_plays_what_fits_the_subject(api, auth, present_id):
    """The gift box is an object: "wave hello" hops it, and the response says why; a client
    that knows better names the kind."""
    body = {"reference_image_id": present_id, "prompt": "wave hello", "steps": 4}
    api.post(
        "/v1/control/pose",
        headers=auth,
        json={
            "reference_image_id": present_id,
            "keypoints": [{"x": 0.5, "y": 0.5}, {"x": 0.5, "y": 0.6}],
        },
    )  # waits until processed
    hop = api.post("/v1/control/text", headers=auth, json=body).json()
    assert (hop["subject_kind"], hop["motion"]) == ("object", "jump")
    assert "'wave' does not apply to an object" in hop["motion_reason"]
    waved = api.post(
        "/v1/control/text", headers=auth, json={**body, "subject_kind": "person"}
    ).json()
    assert (waved["subject_kind"], waved["motion"], waved["motion_reason"]) == (
        "person",
        "wave",
        None,
    )


def test_clip_control_retargets_a_motion_capture_clip(api, auth, present_id):
    from char_pipeline.engine.bvh import MOTIONS_DIR

    body = {"reference_image_id": present_id, "clip": "jumping", "fps": 12}
    answer = api.post("/v1/control/clip", headers=auth, json=body)
    assert answer.status_code == 200, answer.text
    clip = answer.json()
    assert clip["frames"] == len(clip["z_sequence"]) == round(clip["seconds"] * 12)
    assert clip["source_fps"] == pytest.approx(29.97, abs=0.01)
    uploaded = api.post(
        "/v1/control/clip",
        headers=auth,
        json={
            "reference_image_id": present_id,
            "bvh": (MOTIONS_DIR / "jumping.bvh").read_text(),
            "fps": 12,
        },
    ).json()
    assert uploaded["clip"] == "upload" and uploaded["z_sequence"] == clip["z_sequence"]
    broken = api.post(
        "/v1/control/clip",
        headers=auth,
        json={"reference_image_id": present_id, "bvh": "HIERARCHY\nnonsense\nMOTION\n"},
    )
    assert_envelope(broken, 422, "InvalidMotionClip")
    unknown = api.post(
        "/v1/control/clip", headers=auth, json={"reference_image_id": present_id, "clip": "moon"}
    )
    assert "wave_hello" in assert_envelope(unknown, 422, "InvalidMotionClip")["message"]
    # Looped by default (a GIF plays it round): the tail eases into the first pose.
    assert clip["loop"] is True and clip["subject_kind"] == "object"
    open_clip = api.post("/v1/control/clip", headers=auth, json={**body, "loop": False}).json()
    assert open_clip["loop"] is False
    first = np.array(clip["z_sequence"][0])
    seam = np.abs(np.array(clip["z_sequence"][-1]) - first).max()
    open_seam = np.abs(np.array(open_clip["z_sequence"][-1]) - first).max()
    assert seam < open_seam
    assert clip["z_sequence"][:10] == open_clip["z_sequence"][:10]
    four_legged = api.post(
        "/v1/control/clip",
        headers=auth,
        json={"reference_image_id": present_id, "clip": "quadruped_walk"},
    )
    assert "four legs" in assert_envelope(four_legged, 422, "InvalidMotionClip")["message"]
