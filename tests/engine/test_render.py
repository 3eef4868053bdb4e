from pathlib import Path

import numpy as np
import pytest

from char_pipeline.engine.controls import (
    ROOT_LOG_SCALE,
    ROOT_LOG_SQUASH_X,
    empty_z,
    latent_sequence,
)
from char_pipeline.engine.errors import InvalidInputError, ResourceExhaustedError
from char_pipeline.engine.motion import MOTIONS, MotionParams, MotionPlan, motion_sequence
from char_pipeline.engine.render import Character, RenderSettings, WarpRenderer, parse_resolution
from char_pipeline.engine.rig import estimate_rest_pose


def _character(reference, mask) -> Character:
    rest, kind = estimate_rest_pose(reference.rgb, mask.binary, mask.bbox)
    return Character(reference.rgb, mask.soft, mask.bbox, rest, mask.source, kind)


def test_same_inputs_give_byte_identical_frames(chelsea):
    renderer = WarpRenderer()
    z = latent_sequence(5, seed=11)
    first = [
        renderer.render(renderer.prepare(_character(*chelsea), RenderSettings(160, 120)), zt)
        for zt in z
    ]
    second = [
        renderer.render(renderer.prepare(_character(*chelsea), RenderSettings(160, 120)), zt)
        for zt in z
    ]
    for a, b in zip(first, second, strict=True):
        assert a.tobytes() == b.tobytes()


def test_rest_vector_reproduces_the_placed_subject(present):
    renderer = WarpRenderer()
    scene = renderer.prepare(_character(*present), RenderSettings(128, 128))
    frame, alpha = renderer.render_layers(scene, empty_z())
    placed_alpha = scene.subject[..., 3]
    assert np.abs(alpha.astype(int) - placed_alpha.astype(int)).mean() < 2.0
    assert frame.shape == (128, 128, 3)


@pytest.mark.parametrize("motion", sorted(MOTIONS))
def test_every_motion_keeps_the_subject_whole(present, motion):
    renderer = WarpRenderer()
    scene = renderer.prepare(_character(*present), RenderSettings(96, 96))
    rest_area = float((scene.subject[..., 3] > 127).sum())
    for z_t in motion_sequence(MotionPlan(motion, None, MotionParams(), ()), 12):
        _, alpha = renderer.render_layers(scene, z_t)
        # Root scaling and turning change the area on purpose; nothing else should.
        expected = rest_area * float(np.exp(2 * z_t[ROOT_LOG_SCALE] + z_t[ROOT_LOG_SQUASH_X]))
        area = float((alpha > 127).sum())
        assert 0.6 * expected < area < 1.5 * expected, (
            f"{motion}: area {area} vs expected {expected}"
        )


def test_parse_resolution():
    assert parse_resolution("1280x720") == (1280, 720)
    with pytest.raises(InvalidInputError):
        parse_resolution("1280*720")
    with pytest.raises(ResourceExhaustedError):
        parse_resolution("7680x4320")


@pytest.mark.parametrize("name", ["grace_hopper", "chelsea", "coffee"])
def test_the_scene_plate_fills_the_hole_from_its_surroundings(image_paths, name):
    """No pixel of the filled hole is darker than its surroundings (the old normalised blur
    left ~20 % of Grace Hopper's hole black), and nothing of the subject stays behind."""
    import cv2
    import skimage

    from char_pipeline.engine.images import load_reference_image
    from char_pipeline.engine.render import _scene_background
    from char_pipeline.engine.segmentation import segment_subject

    path = image_paths.get(name) or Path(skimage.__file__).parent / "data" / f"{name}.png"
    reference = load_reference_image(path.read_bytes())
    mask = segment_subject(reference)
    character = Character(
        reference.rgb,
        mask.soft,
        mask.bbox,
        estimate_rest_pose(reference.rgb, mask.binary, mask.bbox)[0],
    )
    plate = _scene_background(character)
    hole = mask.soft > 8
    luminance = cv2.cvtColor(plate, cv2.COLOR_RGB2GRAY).astype(int)
    ring = cv2.dilate(hole.astype(np.uint8), np.ones((41, 41), np.uint8)).astype(bool) & ~hole
    assert luminance[hole].min() >= np.percentile(luminance[ring], 1) - 10
    # The fill is smooth where the subject was: its local contrast is far below the photo's.
    photo = cv2.cvtColor(reference.rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)

    def detail(image: np.ndarray) -> float:
        return float(np.abs(cv2.Laplacian(image, cv2.CV_32F))[hole].mean())

    assert detail(luminance.astype(np.float32)) < 0.25 * detail(photo)
    # Far from the subject the photo is untouched.
    far = ~cv2.dilate(hole.astype(np.uint8), np.ones((61, 61), np.uint8)).astype(bool)
    assert (plate[far] == reference.rgb[far]).all()
