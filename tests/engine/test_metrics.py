import numpy as np

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
