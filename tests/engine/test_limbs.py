"""The free arm: one-arm motions lift the arm that is thin and off the torso, not the one
holding something (engine/limbs.py)."""

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage

from char_pipeline.engine.controls import (
    COCO_JOINTS,
    JOINT_DEPTHS,
    JOINT_INDEX,
    Z_DIM,
    joint_offsets,
)
from char_pipeline.engine.images import load_reference_image
from char_pipeline.engine.limbs import THIN_ARM, choose_free_arm, mirror_arms
from char_pipeline.engine.motion import text_sequence
from char_pipeline.engine.rig import Rig, build_rig
from char_pipeline.engine.segmentation import segment_subject

HAS_MEDIAPIPE = importlib.util.find_spec("mediapipe") is not None
needs_pose_model = pytest.mark.skipif(
    not HAS_MEDIAPIPE, reason="mediapipe is not installed (make setup installs it)"
)
ARM = {side: [JOINT_INDEX[f"{side}_{n}"] for n in ("elbow", "wrist")] for side in ("left", "right")}


def _flipped_png(path: Path) -> bytes:
    """The picture mirrored left ↔ right, as an upload."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return cv2.imencode(".png", np.ascontiguousarray(image[:, ::-1]))[1].tobytes()


def _rig(image_bytes: bytes) -> tuple[Rig, np.ndarray]:
    reference = load_reference_image(image_bytes)
    mask = segment_subject(reference)
    rig = build_rig(reference.rgb, mask.soft, mask.binary, mask.bbox, mask_source=mask.source)
    return rig, mask.binary


@pytest.fixture(scope="module")
def camera() -> tuple[Rig, np.ndarray]:
    """The cameraman (scikit-image): a person whose right hand holds the camera."""
    return _rig((Path(skimage.__file__).parent / "data" / "camera.png").read_bytes())


@needs_pose_model
def test_the_arm_holding_the_camera_is_not_the_free_one(camera):
    rig, _ = camera
    assert (rig.kind, rig.subject_kind) == ("pose-model", "person")
    left, right = rig.arm_figures["left"], rig.arm_figures["right"]
    # The right forearm runs through the camera and the coat: wide; the left one is thin.
    assert right["thickness"] > THIN_ARM > left["thickness"]
    assert left["score"] > right["score"]
    assert rig.free_arm == "left"
    assert "right arm is wide" in rig.free_arm_reason
    # rig.json says which arm waves and why.
    stored = rig.to_json()
    assert stored["free_arm"] == "left" and stored["arm_figures"]["right"]["thickness"] > THIN_ARM


@needs_pose_model
def test_the_same_picture_mirrored_frees_the_right_arm(camera):
    """Mirror the cameraman (picture, mask and joints, left ↔ right): the camera is now held
    by the left hand, and the right arm is the free one."""
    rig, binary = camera
    width = binary.shape[1]
    joints = rig.rest.joints.copy()
    joints[:, 0] = (width - 1) - joints[:, 0]
    swapped = [
        JOINT_INDEX[n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")]
        for n in COCO_JOINTS
    ]
    side, reason, figures = choose_free_arm(
        joints[swapped], rig.rest.subject_height, binary[:, ::-1], "person"
    )
    assert side == "right", reason
    assert figures["left"]["thickness"] > THIN_ARM


def test_a_mirrored_drawing_waves_its_other_arm(image_paths):
    """The marker figure's skeleton (medial axis) has one arm in the wide body: the other one
    is free; mirrored, the free arm changes side."""
    rig, _ = _rig(image_paths["marker_figure"].read_bytes())
    flipped, _ = _rig(_flipped_png(image_paths["marker_figure"]))
    assert rig.subject_kind == flipped.subject_kind == "figure"
    assert (rig.free_arm, flipped.free_arm) == ("left", "right"), flipped.free_arm_reason


def test_a_portrait_keeps_the_left_arm_its_arms_do_not_move(astronaut):
    reference, mask = astronaut
    rig = build_rig(reference.rgb, mask.soft, mask.binary, mask.bbox, mask_source=mask.source)
    if rig.subject_kind != "portrait":
        pytest.skip("the astronaut is a portrait with the pose model (make setup installs it)")
    assert rig.free_arm == "left" and "no one-arm motion" in rig.free_arm_reason
    assert set(rig.arm_figures) == {"left", "right"}  # measured all the same, for rig.json


def test_wave_lifts_the_free_arm():
    left_z, left_plan = text_sequence("wave hello", 12, subject_kind="person")
    right_z, right_plan = text_sequence("wave hello", 12, subject_kind="person", free_arm="right")
    assert (left_plan.arm, right_plan.arm) == ("left", "right")
    left_offsets, right_offsets = joint_offsets(left_z), joint_offsets(right_z)
    # The canonical wave lifts the left arm; on a right free arm the right one, mirrored.
    assert np.abs(left_offsets[:, ARM["left"]]).max() > 0.2
    assert np.abs(left_offsets[:, ARM["right"]]).max() == 0
    assert np.abs(right_offsets[:, ARM["left"]]).max() == 0
    np.testing.assert_allclose(
        right_offsets[:, ARM["right"]], left_offsets[:, ARM["left"]] * np.array([-1.0, 1.0])
    )
    # The head and the legs move as before.
    others = [i for i in range(len(COCO_JOINTS)) if i not in ARM["left"] + ARM["right"]]
    np.testing.assert_array_equal(right_offsets[:, others], left_offsets[:, others])
    # "walk while waving": the overlay's wave is on the free arm too; a motion of both arms
    # is not mirrored.
    overlaid, plan = text_sequence("walk while waving", 12, free_arm="right")
    assert plan.arm == "right"
    assert np.abs(joint_offsets(overlaid)[:, ARM["right"], 1]).max() > 0.2
    dance, plan = text_sequence("dance", 12, free_arm="right")
    assert plan.arm is None
    np.testing.assert_array_equal(dance, text_sequence("dance", 12)[0])


def test_mirroring_swaps_the_arms_offsets_and_depths_only():
    rng = np.random.default_rng(3)
    z = rng.uniform(-0.3, 0.3, (4, Z_DIM)).astype(np.float32)
    mirrored = mirror_arms(z)
    np.testing.assert_array_equal(mirror_arms(mirrored), z)
    wrist, other = JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"]
    np.testing.assert_array_equal(
        joint_offsets(mirrored)[:, other], joint_offsets(z)[:, wrist] * np.array([-1, 1])
    )
    depths = JOINT_DEPTHS.start
    np.testing.assert_array_equal(mirrored[:, depths + other], z[:, depths + wrist])
    unchanged = [JOINT_INDEX[n] for n in ("nose", "left_hip", "right_ankle")]
    np.testing.assert_array_equal(
        joint_offsets(mirrored)[:, unchanged], joint_offsets(z)[:, unchanged]
    )
    np.testing.assert_array_equal(mirrored[:, JOINT_DEPTHS.stop :], z[:, JOINT_DEPTHS.stop :])


def test_a_rig_stored_before_the_free_arm_loads_with_the_left(image_paths):
    rig, _ = _rig(image_paths["stick_figure"].read_bytes())
    stored = rig.to_json()
    stored["free_arm"] = "right"
    assert Rig.from_json(stored).free_arm == "right"
    for key in ("free_arm", "free_arm_reason", "arm_figures"):
        stored.pop(key)
    assert Rig.from_json(stored).free_arm == "left"
