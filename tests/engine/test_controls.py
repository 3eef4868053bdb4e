import numpy as np
import pytest

from char_pipeline.engine import controls
from char_pipeline.engine.controls import JOINT_INDEX, template_rest_pose
from char_pipeline.engine.errors import ControlVectorError, InvalidInputError, KeypointError
from char_pipeline.engine.motion import (
    MOTIONS,
    MotionParams,
    MotionPlan,
    motion_sequence,
    plan_motion,
)


@pytest.fixture()
def rest():
    return controls.template_rest_pose((100, 50, 300, 450), (400, 500))


def test_z_layout_validation():
    assert controls.validate_z(controls.empty_z()).shape == (controls.Z_DIM,)
    with pytest.raises(ControlVectorError, match="length 3"):
        controls.validate_z([0.12, -0.33, 0.77])
    bad = controls.empty_z()
    bad[0] = np.nan
    with pytest.raises(ControlVectorError, match="NaN"):
        controls.validate_z(bad)
    bad = controls.empty_z()
    bad[60] = 1.0
    with pytest.raises(ControlVectorError, match="reserved"):
        controls.validate_z(bad)
    with pytest.raises(ControlVectorError, match="empty"):
        controls.validate_z_sequence([])


def test_pose_round_trip_through_keypoints(rest):
    z = motion_sequence(MotionPlan("wave", None, MotionParams(), ()), 12)
    frames = controls.keypoints_from_z(z, rest)
    encoded = controls.encode_pose_sequence([controls.keypoints_from_json(f) for f in frames], rest)
    np.testing.assert_allclose(
        controls.joint_offsets(encoded), controls.joint_offsets(z), atol=2e-4
    )


def test_unnamed_keypoints_follow_coco_order_and_missing_joints_follow_the_nearest(rest):
    normalised = controls.rest_keypoints_normalised(rest)
    keypoints = [controls.Keypoint(x=float(x), y=float(y) - 0.02) for x, y in normalised[:2]]
    keypoints.append(
        controls.Keypoint(*normalised[controls.JOINT_INDEX["left_ankle"]], name="left_ankle")
    )
    offsets = controls.joint_offsets(controls.encode_pose(keypoints, rest))
    lift = -0.02 * 500 / rest.subject_height
    assert offsets[0, 1] == pytest.approx(lift, rel=1e-4)
    assert offsets[controls.JOINT_INDEX["right_ear"], 1] == pytest.approx(
        lift, rel=1e-4
    )  # near the head
    assert np.all(offsets[controls.JOINT_INDEX["right_ankle"]] == 0)  # near the still ankle


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([{"x": 0.5, "y": 0.1}], "at least 2"),
        ([{"x": float("nan"), "y": 0.1}, {"x": 0.5, "y": 0.2}], "NaN"),
        ([{"x": 1.5, "y": 0.1}, {"x": 0.5, "y": 0.2}], "normalised"),
        ([{"x": 0.5, "y": 0.1, "name": "tail"}, {"x": 0.5, "y": 0.2}], "Unknown joint"),
        ([{"x": 0.5, "y": 0.1, "name": "nose"}, {"x": 0.5, "y": 0.2, "name": "nose"}], "twice"),
        ([{"x": 0.5, "y": 0.1, "index": 17}, {"x": 0.5, "y": 0.2}], "outside"),
        ([{"x": "a", "y": 0.1}, {"x": 0.5, "y": 0.2}], "non-numeric"),
    ],
)
def test_bad_keypoints_are_typed_errors(rest, items, message):
    with pytest.raises(KeypointError, match=message):
        controls.encode_pose(controls.keypoints_from_json(items), rest)


def test_latent_is_deterministic_per_seed_and_smooth():
    a = controls.latent_sequence(64, seed=3)
    np.testing.assert_array_equal(a, controls.latent_sequence(64, seed=3))
    assert not np.allclose(a, controls.latent_sequence(64, seed=4))
    uniform = controls.latent_sequence(64, seed=3, distribution="uniform")
    assert not np.allclose(a, uniform)
    controls.validate_z_sequence(a)
    # Temporally correlated: frame-to-frame steps are much smaller than the spread.
    assert np.abs(np.diff(a, axis=0)).mean() < 0.5 * a.std(axis=0).mean()
    with pytest.raises(InvalidInputError, match="distribution"):
        controls.latent_sequence(4, seed=1, distribution="cauchy")


@pytest.mark.parametrize(
    ("prompt", "motion"),
    [
        ("wave hello", "wave"),
        ("A dancing robot in a city street", "dance"),
        ("jump twice", "jump"),
        ("walk slowly to the left", "walk"),
        ("take a bow", "bow"),
        ("spin around", "spin"),
        ("stand still", "idle"),
    ],
)
def test_prompts_select_motions(prompt, motion):
    assert plan_motion(prompt).primary == motion


def test_modifiers_and_overlays():
    plan = plan_motion("walk slowly to the left while waving")
    assert (plan.primary, plan.overlay) == ("walk", "wave")
    assert plan.params.speed < 1 and plan.params.direction == -1


def test_every_motion_emits_valid_z():
    for name in MOTIONS:
        z = motion_sequence(MotionPlan(name, None, MotionParams(), ()), 30)
        assert controls.validate_z_sequence(z).shape == (30, controls.Z_DIM)


def _track_keypoints(rest, offsets_by_joint: dict[str, tuple[float, float]]):
    from char_pipeline.engine.controls import Keypoint

    width, height = rest.image_size
    keypoints = []
    for name, (dx, dy) in offsets_by_joint.items():
        x, y = rest.joints[JOINT_INDEX[name]]
        keypoints.append(
            Keypoint(
                x=(x + dx * rest.subject_height) / width,
                y=(y + dy * rest.subject_height) / height,
                name=name,
            )
        )
    return keypoints


def test_a_joint_that_blinks_out_is_interpolated_in_time():
    """The left wrist is missing from the middle frame of three: it takes the mean of its
    neighbours instead of jumping to the nearest placed joint (Grace Hopper f13→14 popped)."""
    from char_pipeline.engine.controls import encode_pose_sequence, joint_offsets

    rest = template_rest_pose((100, 50, 300, 450), (400, 500))
    base = {"left_shoulder": (0.0, 0.0), "left_elbow": (0.02, 0.0), "nose": (0.0, 0.0)}
    frames = [
        _track_keypoints(rest, {**base, "left_wrist": (0.0, -0.10)}),
        _track_keypoints(rest, base),
        _track_keypoints(rest, {**base, "left_wrist": (0.0, -0.20)}),
    ]
    offsets = joint_offsets(encode_pose_sequence(frames, rest))
    wrist = JOINT_INDEX["left_wrist"]
    assert offsets[1, wrist] == pytest.approx([0.0, -0.15], abs=1e-3)
    # A joint no frame places follows its parent (the right wrist: no right arm at all →
    # rest, since the right shoulder is a root nobody placed).
    assert np.allclose(offsets[:, JOINT_INDEX["right_wrist"]], 0.0, atol=1e-3)


def test_a_missing_joint_follows_its_parent_then_rests():
    from char_pipeline.engine.controls import encode_pose, joint_offsets

    rest = template_rest_pose((100, 50, 300, 450), (400, 500))
    z = encode_pose(
        _track_keypoints(
            rest, {"left_shoulder": (0.0, 0.0), "left_elbow": (0.05, -0.1), "nose": (0.03, 0.0)}
        ),
        rest,
    )
    offsets = joint_offsets(z)
    assert offsets[JOINT_INDEX["left_wrist"]] == pytest.approx([0.05, -0.1], abs=1e-3)
    assert offsets[JOINT_INDEX["left_ear"]] == pytest.approx([0.03, 0.0], abs=1e-3)
    for root_side in ("right_shoulder", "left_hip", "right_ankle"):  # nobody placed them
        assert offsets[JOINT_INDEX[root_side]] == pytest.approx([0.0, 0.0], abs=1e-6)


@pytest.mark.parametrize("length", [48, 30, 7])
def test_latent_sequences_loop_without_a_seam(length):
    """The step from the last frame back to the first is no bigger than the steps between
    frames (the open sequence ended 2–3× further from its start than any step); loop=False
    keeps the open sequence, which does jump."""
    from char_pipeline.engine.controls import latent_sequence

    looped = latent_sequence(length, 7)
    steps = np.abs(np.diff(looped, axis=0)).sum(axis=1)
    assert np.abs(looped[-1] - looped[0]).sum() <= steps.max() + 1e-6
    assert np.array_equal(looped, latent_sequence(length, 7))  # still one sequence per seed
    if length == 48:
        open_ = latent_sequence(length, 7, loop=False)
        open_steps = np.abs(np.diff(open_, axis=0)).sum(axis=1)
        assert np.abs(open_[-1] - open_[0]).sum() > 2 * open_steps.max()
