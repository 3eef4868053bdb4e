"""The kind of subject decides which joints move and which motion a prompt plays."""

import numpy as np
import pytest

from char_pipeline.engine.controls import (
    JOINT_INDEX,
    ROOT_TX,
    ROOT_TY,
    empty_z,
    joint_offsets,
    set_joint_offsets,
)
from char_pipeline.engine.kinds import motion_for_kind, restrict_to_kind
from char_pipeline.engine.pipeline import prepare_character


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("astronaut", "portrait"),  # a person cut above the hips
        ("grace_hopper", "portrait"),
        ("chelsea", "animal"),  # OpenCV's cat-face cascade
        ("present", "object"),  # compact: solidity 0.91
        ("coffee", "object"),
        ("stick_figure", "figure"),  # a drawing
        ("pig", "quadruped"),  # a drawing of a four-legged animal
    ],
)
def test_each_reference_gets_its_kind(image_paths, name, kind):
    character = prepare_character(image_paths[name].read_bytes())
    assert character.subject_kind == kind


def test_a_standing_person_is_a_person():
    from pathlib import Path

    import skimage

    camera = (Path(skimage.__file__).parent / "data" / "camera.png").read_bytes()
    assert prepare_character(camera).subject_kind == "person"


def test_an_object_does_not_bend_and_a_portrait_moves_no_limb():
    z = empty_z()
    offsets = np.full((17, 2), 0.05)
    set_joint_offsets(z, offsets)
    rigid = restrict_to_kind(z, "object")
    assert np.abs(joint_offsets(rigid)).max() == 0.0
    assert rigid[ROOT_TX] == pytest.approx(0.05) and rigid[ROOT_TY] == pytest.approx(0.05)
    portrait = joint_offsets(restrict_to_kind(z, "portrait"))
    assert portrait[JOINT_INDEX["nose"]] == pytest.approx([0.05, 0.05])
    assert portrait[JOINT_INDEX["left_shoulder"]] == pytest.approx([0.05, 0.05])
    assert np.abs(portrait[JOINT_INDEX["left_wrist"]]).max() == 0.0
    assert np.array_equal(restrict_to_kind(z, "person"), z)


def test_a_product_dancing_stays_rigid(image_paths):
    """The gift box crumpled under a dance; as an object only root motion moves it: every
    triangle keeps its shape (largest stretch 1 up to the root's own scale)."""
    from char_pipeline.engine.deform import MeshRenderer
    from char_pipeline.engine.metrics import triangle_stretch
    from char_pipeline.engine.motion import MotionParams, MotionPlan, motion_sequence
    from char_pipeline.engine.render import RenderSettings

    character = prepare_character(image_paths["present"].read_bytes())
    renderer = MeshRenderer()
    scene = renderer.prepare(character, RenderSettings(160, 160, background="solid"))
    dance = motion_sequence(MotionPlan("dance", None, MotionParams(), ()), 12)
    dance[:, 51:] = 0.0  # root motion off: what is left is the joints' bending
    for z_t in dance:
        posed, _ = renderer.deform(scene, z_t)
        assert triangle_stretch(scene.vertices, posed, scene.triangles).max() == pytest.approx(
            1.0, abs=1e-6
        )


def test_a_motion_that_does_not_apply_is_mapped_and_explained():
    assert motion_for_kind("wave", "portrait")[0] == "nod"
    motion, reason = motion_for_kind("wave", "object")
    assert motion == "jump" and "'wave' does not apply to an object" in reason
    assert motion_for_kind("wave", "person") == ("wave", None)
    assert motion_for_kind("spin", "object") == ("spin", None)
