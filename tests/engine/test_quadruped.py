"""The four-legged rig: found on whole animals seen from the side (a photographed horse's
silhouette, a child's drawing of a pig), on nothing else, with its joints on the legs."""

from pathlib import Path

import numpy as np
import pytest
import skimage

from char_pipeline.engine.controls import JOINT_INDEX
from char_pipeline.engine.images import load_reference_image
from char_pipeline.engine.pipeline import prepare_character
from char_pipeline.engine.quadruped import find_four_legs
from char_pipeline.engine.segmentation import segment_subject

HORSE = Path(skimage.__file__).parent / "data" / "horse.png"


@pytest.fixture(scope="module")
def horse():
    return prepare_character(HORSE.read_bytes())


def test_a_horse_gets_the_four_legged_rig(horse):
    assert horse.rig_kind == "four-legs" and horse.subject_kind == "quadruped"


def test_the_horse_stands_on_its_legs_and_faces_its_head(horse):
    """Feet on the ground line, legs hanging down from inside the body, the front legs on the
    head's side (the horse faces right), the nose the rightmost joint, all on the mask."""
    joints = horse.rest.joints
    j = JOINT_INDEX
    mask = horse.soft_mask > 127 if horse.soft_mask.dtype == np.uint8 else horse.soft_mask > 0.5
    ys, _ = np.nonzero(mask)
    ground = ys.max()
    for foot in ("left_wrist", "right_wrist", "left_ankle", "right_ankle"):
        assert ground - joints[j[foot], 1] < 0.06 * horse.rest.subject_height
    for top, foot in (("left_shoulder", "left_wrist"), ("left_hip", "left_ankle")):
        assert joints[j[top], 1] < joints[j[foot], 1] - 0.3 * horse.rest.subject_height
    assert joints[j["left_wrist"], 0] > joints[j["left_ankle"], 0] + 100  # front legs ahead
    assert joints[j["nose"], 0] == joints[:, 0].max()
    for x, y in joints.round().astype(int):
        assert mask[y, x], (x, y)


@pytest.mark.parametrize(
    "name",
    ["astronaut", "chelsea", "present", "coffee", "stick_figure", "marker_figure", "bug"],
)
def test_no_other_subject_is_taken_for_four_legs(image_paths, name):
    """A close-up cat (cut by the picture), a product, a person, drawn people and a bug."""
    mask = segment_subject(load_reference_image(image_paths[name].read_bytes()))
    assert find_four_legs(mask.binary, mask.bbox) is None


def test_the_drawn_pig_faces_right_with_a_leg_pair_at_each_end(image_paths):
    mask = segment_subject(load_reference_image(image_paths["pig"].read_bytes()))
    legs = find_four_legs(mask.binary, mask.bbox)
    assert legs is not None and legs.facing == 1
    assert min(leg[2] for leg in legs.front_legs) > max(leg[2] for leg in legs.hind_legs)
