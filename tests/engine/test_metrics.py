import cv2
import numpy as np
import pytest

from char_pipeline.engine import metrics
from char_pipeline.engine.controls import latent_sequence
from char_pipeline.engine.motion import MotionParams, MotionPlan, motion_sequence


def test_temporal_coherence_separates_smooth_from_flicker(chelsea):
    reference, _ = chelsea
    frame = np.ascontiguousarray(reference.rgb[:288, :448])
    smooth = metrics.TemporalCoherence()
    for shift in range(6):
        smooth.add(np.ascontiguousarray(np.roll(frame, 2 * shift, axis=1)))
    flicker = metrics.TemporalCoherence()
    rng = np.random.default_rng(0)
    for _ in range(6):
        flicker.add(rng.integers(0, 255, frame.shape, dtype=np.uint8))
    assert smooth.mean < 3.0 < metrics.MAX_WARP_ERROR < flicker.mean
    assert len(smooth.errors) == 5


def test_colour_distance(chelsea, present):
    cat, cat_mask = chelsea
    box, box_mask = present
    same = metrics.colour_distance(
        metrics.colour_histogram(cat.rgb, cat_mask.soft),
        metrics.colour_histogram(cat.rgb[:, ::-1].copy(), cat_mask.soft[:, ::-1].copy()),
    )
    other = metrics.colour_distance(
        metrics.colour_histogram(cat.rgb, cat_mask.soft),
        metrics.colour_histogram(box.rgb, box_mask.soft),
    )
    assert same < 0.01 and other > metrics.MAX_COLOUR_DISTANCE


def test_jitter_flags_noisy_joint_tracks():
    smooth = motion_sequence(MotionPlan("dance", None, MotionParams(), ()), 48)
    assert metrics.joint_jitter(smooth) < metrics.MAX_JITTER
    noisy = latent_sequence(48, seed=7)
    noisy[:, :34] += np.random.default_rng(1).normal(0, 0.03, (48, 34))
    assert metrics.joint_jitter(noisy) > metrics.MAX_JITTER


def test_mirror_padding_is_seen_and_a_photo_is_not(image_paths):
    """BORDER_REFLECT margins (the old plates: mirrored flags, kaleidoscope fur) score near 0;
    the photographs themselves, stripes and all, stay above the check's bound."""
    from char_pipeline.engine.images import load_reference_image
    from char_pipeline.engine.metrics import MIN_MIRROR_MISMATCH, mirror_mismatch

    for name in ("astronaut", "chelsea", "grace_hopper", "coffee"):
        photo = load_reference_image(image_paths[name].read_bytes()).rgb
        photo = cv2.resize(photo, (256, 256), interpolation=cv2.INTER_AREA)
        assert mirror_mismatch(photo) >= MIN_MIRROR_MISMATCH, name
        shrunk = cv2.resize(photo, (180, 180), interpolation=cv2.INTER_AREA)
        padded = cv2.copyMakeBorder(shrunk, 38, 38, 38, 38, cv2.BORDER_REFLECT)
        assert mirror_mismatch(padded) < 0.2, name
        blurred = cv2.GaussianBlur(padded, (0, 0), 4)  # a blurry fill mirrored is still mirrored
        assert mirror_mismatch(blurred) < MIN_MIRROR_MISMATCH, name


def test_a_black_fill_is_seen_and_the_photo_dark_parts_are_not(chelsea):
    from char_pipeline.engine.metrics import MAX_DARK_FILL_SHARE, dark_fill_share

    reference, mask = chelsea
    assert dark_fill_share(reference.rgb, reference.rgb, mask.soft) < MAX_DARK_FILL_SHARE / 3
    holed = reference.rgb.copy()
    holed[mask.soft > 128] = 0  # the hole left black, as the old fill left 20 % of it
    assert dark_fill_share(holed, reference.rgb, mask.soft) > MAX_DARK_FILL_SHARE


def test_torn_area_share_measures_stretch_beyond_twice():
    from char_pipeline.engine.metrics import torn_area_share, triangle_stretch

    rest = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=np.float64)
    triangles = np.array([[0, 1, 2], [1, 3, 2]])
    assert torn_area_share(rest, rest * 1.5, triangles) == 0.0
    pulled = rest.copy()
    pulled[3] = [40, 10]  # the second triangle pulled 30 px along x
    stretch = triangle_stretch(rest, pulled, triangles)
    assert stretch[0] == pytest.approx(1.0) and stretch[1] > 4.0
    assert torn_area_share(rest, pulled, triangles) == pytest.approx(0.5)
    broken = rest.copy()
    broken[0] = np.nan
    assert torn_area_share(rest, broken, triangles) == pytest.approx(0.5)


def test_a_pop_or_a_loop_seam_stands_out_of_the_motion(chelsea):
    """A picture sliding 1 px a frame: smooth; one 8 px jump mid-way: a pop; played as a loop
    (a GIF), its end jumps back to the start: a seam — unless the motion comes back."""
    from char_pipeline.engine.metrics import MAX_POP_RATIO, TemporalCoherence

    reference, _ = chelsea
    picture = cv2.GaussianBlur(np.ascontiguousarray(reference.rgb[:256, :300]), (0, 0), 6)

    def ratio(shifts, *, loop):
        tracker = TemporalCoherence()
        for shift in shifts:
            tracker.add(np.ascontiguousarray(picture[:, shift : shift + 256]))
        return tracker.pop_ratio(loop=loop)

    slide = list(range(12))
    assert ratio(slide, loop=False) <= MAX_POP_RATIO
    assert ratio([*range(6), *range(14, 20)], loop=False) > MAX_POP_RATIO  # the jump
    assert ratio(slide, loop=True) > MAX_POP_RATIO  # 11 px back at the loop
    there_and_back = [*range(8), *range(8, 0, -1)]
    assert ratio(there_and_back, loop=True) <= MAX_POP_RATIO
