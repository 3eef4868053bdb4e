"""Motion clips (BVH) retargeted onto a reference's rig: parsing, joint mapping, frame rate,
scale, and the errors a broken file gets."""

import numpy as np
import pytest

from char_pipeline.engine.bvh import list_clips, load_clip, parse_bvh, retarget, world_positions
from char_pipeline.engine.controls import JOINT_INDEX, ROOT_TY, joint_offsets, template_rest_pose
from char_pipeline.engine.errors import MotionClipError

REST = template_rest_pose((100, 40, 300, 460), (400, 500))  # a standing figure, 420 px


def _posed(z_sequence: np.ndarray) -> np.ndarray:
    return REST.joints[None] + joint_offsets(z_sequence) * REST.subject_height


def test_the_library_ships_its_clips():
    assert {"wave_hello", "jumping", "dab", "quadruped_walk"} <= set(list_clips())


def test_a_clip_plays_at_the_video_rate_for_its_own_duration():
    clip = load_clip("wave_hello")  # 210 frames at 30 fps (AnimatedDrawings' 120 fps, every 4th)
    assert clip.frame_time == pytest.approx(0.033368) and len(clip.frames) == 210
    assert retarget(clip, REST, fps=24).shape == (round(clip.seconds * 24), 64)
    assert retarget(clip, REST, fps=12).shape == (round(clip.seconds * 12), 64)
    assert retarget(clip, REST, fps=24, steps=30).shape == (30, 64)  # spread over 30 frames


def test_limbs_keep_the_characters_lengths_and_take_the_clips_directions():
    """Retargeting by direction: every posed limb bone has the character's own length (the
    clip's actor is taller or shorter), and in the wave one hand rises above its shoulder."""
    z = retarget(load_clip("wave_hello"), REST, fps=24)
    posed = _posed(z)
    for parent, child in (("left_shoulder", "left_elbow"), ("right_elbow", "right_wrist")):
        rest_length = np.linalg.norm(
            REST.joints[JOINT_INDEX[child]] - REST.joints[JOINT_INDEX[parent]]
        )
        lengths = np.linalg.norm(
            posed[:, JOINT_INDEX[child]] - posed[:, JOINT_INDEX[parent]], axis=1
        )
        assert np.allclose(lengths, rest_length, rtol=1e-3)
    above = [
        (
            posed[:, JOINT_INDEX[f"{side}_wrist"], 1] < posed[:, JOINT_INDEX[f"{side}_shoulder"], 1]
        ).any()
        for side in ("left", "right")
    ]
    assert any(above)


def test_a_jump_lifts_the_root_in_clip_heights():
    z = retarget(load_clip("jumping"), REST, fps=24)
    assert z[:, ROOT_TY].min() < -0.1  # up is negative (picture rows go down)
    assert abs(z[0, ROOT_TY]) < 1e-6  # travel is measured from the first frame


def test_forward_kinematics_puts_the_head_above_the_hips():
    clip = load_clip("dab")
    positions, ends = world_positions(clip)
    head = clip.find(("head",))
    hips = clip.find(("hips",))
    up = positions[0, head] - positions[0, hips]
    assert np.linalg.norm(up) > 10  # the clip's units (centimetres-ish), not zero
    assert np.isfinite(ends[0, head]).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not a bvh", "no MOTION"),
        (
            "HIERARCHY\nROOT Hips\n{\nOFFSET 0 0 0\nCHANNELS 3 Xrotation Yrotation Zrotation\n}\nMOTION\nFrames: 2\nFrame Time: 0.03\n0 0 0\n",
            "2 frames",
        ),
        (
            "HIERARCHY\nROOT Hips\n{\nOFFSET 0 0 x\n}\nMOTION\nFrames: 1\nFrame Time: 0.03\n\n",
            "malformed",
        ),
        (
            "HIERARCHY\nROOT Hips\n{\nOFFSET 0 0 0\nCHANNELS 1 Xrotation\n}\nMOTION\nFrames: 1\nFrame Time: 0\n0\n",
            "Frame Time",
        ),
    ],
)
def test_a_broken_file_is_a_clear_error(text, message):
    with pytest.raises(MotionClipError, match=message) as raised:
        parse_bvh(text)
    assert raised.value.code == "InvalidMotionClip" and raised.value.http_status == 422


def test_a_skeleton_without_limbs_cannot_be_retargeted():
    text = (
        "HIERARCHY\nROOT Hips\n{\nOFFSET 0 0 0\nCHANNELS 6 Xposition Yposition Zposition "
        "Xrotation Yrotation Zrotation\nEnd Site\n{\nOFFSET 0 10 0\n}\n}\n"
        "MOTION\nFrames: 1\nFrame Time: 0.03\n0 0 0 0 0 0\n"
    )
    with pytest.raises(MotionClipError, match="lacks joints"):
        retarget(parse_bvh(text), REST, fps=24)


def test_unknown_clip_names_list_the_library():
    with pytest.raises(MotionClipError, match="wave_hello"):
        load_clip("moonwalk")


# --- four-legged subjects -----------------------------------------------------------------


@pytest.fixture(scope="module")
def horse_rest():
    """The horse's rest pose (skimage's silhouette: the four-legged rig)."""
    from pathlib import Path

    import skimage

    from char_pipeline.engine.pipeline import prepare_character

    horse = Path(skimage.__file__).parent / "data" / "horse.png"
    return prepare_character(horse.read_bytes()).rest


def test_the_four_legged_clip_maps_leg_to_leg_seen_from_the_side(horse_rest):
    """quadruped_walk (2 s at 30 fps, two cycles) on the horse: frame rate, lengths kept,
    each front leg swings forward and back in turn, half a cycle apart from the other side."""
    from char_pipeline.engine.bvh import MAX_LEG_SWING

    rest = horse_rest
    clip = load_clip("quadruped_walk")
    assert len(clip.frames) == 60 and clip.seconds == pytest.approx(2.0, abs=1e-3)
    z = retarget(clip, rest, fps=12, subject_kind="quadruped")
    assert z.shape == (24, 64)
    posed = rest.joints[None] + joint_offsets(z) * rest.subject_height
    j = JOINT_INDEX
    for parent, child in (("left_shoulder", "left_elbow"), ("left_knee", "left_ankle")):
        rest_length = np.linalg.norm(rest.joints[j[child]] - rest.joints[j[parent]])
        lengths = np.linalg.norm(posed[:, j[child]] - posed[:, j[parent]], axis=1)
        assert np.allclose(lengths, rest_length, rtol=1e-3)
    reach = posed[:, j["left_elbow"], 0] - posed[:, j["left_shoulder"], 0]
    upper = np.linalg.norm(rest.joints[j["left_elbow"]] - rest.joints[j["left_shoulder"]])
    assert reach.max() > 0.2 * upper and reach.min() < -0.2 * upper  # swings both ways
    # Half a cycle apart: the left front leg's swing at t is the right one's at t + 6 frames.
    right = posed[:, j["right_elbow"], 0] - posed[:, j["right_shoulder"], 0]
    assert np.corrcoef(reach, np.roll(right, -6))[0, 1] > 0.9
    angles = np.arctan2(
        posed[:, j["left_wrist"], 0] - posed[:, j["left_elbow"], 0],
        posed[:, j["left_wrist"], 1] - posed[:, j["left_elbow"], 1],
    )
    assert np.abs(angles).max() <= MAX_LEG_SWING + 1e-6


def test_a_persons_clip_gives_its_arms_to_the_front_legs_within_reach(horse_rest):
    """AnimatedDrawings' dab on the horse: the raised arms move the front legs, never past
    MAX_LEG_SWING from straight down, and the clip's leap forward stays in the picture."""
    from char_pipeline.engine.bvh import MAX_LEG_SWING, SIDE_TRAVEL

    rest = horse_rest
    j = JOINT_INDEX
    z = retarget(load_clip("dab"), rest, fps=12, subject_kind="quadruped")
    posed = rest.joints[None] + joint_offsets(z) * rest.subject_height
    moved = np.linalg.norm(posed[:, j["left_wrist"]] - rest.joints[j["left_wrist"]], axis=1)
    assert moved.max() > 0.1 * rest.subject_height
    for parent, child in (("left_shoulder", "left_elbow"), ("right_elbow", "right_wrist")):
        step = posed[:, j[child]] - posed[:, j[parent]]
        assert np.abs(np.arctan2(step[:, 0], step[:, 1])).max() <= MAX_LEG_SWING + 1e-6
    from char_pipeline.engine.controls import ROOT_TX

    assert np.abs(z[:, ROOT_TX]).max() <= SIDE_TRAVEL + 1e-6


def test_a_four_legged_clip_refuses_a_person():
    with pytest.raises(MotionClipError, match="four legs"):
        retarget(load_clip("quadruped_walk"), REST, fps=24, subject_kind="person")


def test_a_looped_clip_ends_one_small_step_before_its_start():
    """jumping ends far from where it starts; looped, the seam back to the first frame is
    smaller than the clip's median step, and the first three quarters are untouched."""
    from char_pipeline.engine.bvh import loop_clip

    z = retarget(load_clip("jumping"), REST, fps=24)
    looped = loop_clip(z)
    steps = np.linalg.norm(np.diff(looped, axis=0), axis=1)
    seam_before = np.linalg.norm(z[-1] - z[0])
    seam_after = np.linalg.norm(looped[-1] - looped[0])
    assert seam_before > 3 * np.median(steps)
    assert seam_after < np.median(steps)
    untouched = len(z) - max(2, round(0.25 * len(z)))
    assert np.array_equal(looped[:untouched], z[:untouched].astype(np.float32))
