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
    assert {"wave_hello", "jumping", "dab"} <= set(list_clips())


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
