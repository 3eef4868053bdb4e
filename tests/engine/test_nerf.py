import math

import numpy as np
import pytest

from char_pipeline.engine import nerf
from char_pipeline.engine.errors import InvalidInputError


@pytest.fixture(scope="module")
def models(present, chelsea, astronaut):
    return {
        name: nerf.build_radiance_field(reference.rgb, mask.soft, mask.bbox)
        for name, (reference, mask) in {
            "present": present,
            "chelsea": chelsea,
            "astronaut": astronaut,
        }.items()
    }


@pytest.mark.parametrize("name", ["present", "chelsea", "astronaut"])
def test_reference_camera_reproduces_the_reference(models, name):
    assert nerf.reference_psnr(models[name]) >= 25.0


@pytest.mark.parametrize("name", ["present", "chelsea", "astronaut"])
def test_turntable_silhouette_has_no_holes_and_a_filled_back(models, name):
    model = models[name]
    stats = nerf.TrajectoryStats()
    frames = list(nerf.render_trajectory(model, nerf.orbit(12), 160, 120, stats))
    assert len(frames) == stats.frames == 12
    assert max(stats.hole_fraction) <= 0.005
    front, back = stats.alpha_coverage[0], stats.alpha_coverage[6]
    assert front > 0.05
    # Seen from behind the subject is just as solid, and coloured, not background.
    assert back == pytest.approx(front, rel=0.15)
    _, alpha = model.render(nerf.orbit(12)[6], 160, 120)
    background = np.array(nerf.DEFAULT_BACKGROUND)
    inside = frames[6][alpha > 0.99].astype(int)
    assert np.abs(inside - background).sum(axis=1).mean() > 20


def test_tiled_search_matches_marching_every_ray(models):
    """The image-space hierarchy is an optimisation: it must not drop or add pixels."""
    model = models["astronaut"]
    for camera in nerf.orbit(4, distance=1.9, fov=40):
        fast_rgb, fast_alpha = model.render(camera, 200, 150)
        tile_size = model._tile_size
        model._tile_size = lambda *_: 1
        try:
            slow_rgb, slow_alpha = model.render(camera, 200, 150)
        finally:
            model._tile_size = tile_size
        assert int((np.abs(fast_alpha - slow_alpha) > 0.3).sum()) <= 5
        assert np.abs(fast_rgb.astype(int) - slow_rgb).mean() < 0.5


def test_model_round_trips_and_renders_the_same(models):
    model = models["present"]
    loaded = nerf.RadianceField.from_bytes(model.to_bytes())
    assert loaded.header()["resolution"] == model.header()["resolution"]
    camera = nerf.orbit(5)[2]
    first, _ = model.render(camera, 96, 72)
    second, _ = loaded.render(camera, 96, 72)
    assert first.tobytes() == second.tobytes()
    header = loaded.header()
    assert header["reference_camera"]["position"] == [0.0, 0.0, nerf.REFERENCE_DISTANCE]
    assert header["bounds"][1][1] > 0.5  # unit height fits inside the box


def test_not_a_model_is_a_typed_error():
    import io

    buffer = io.BytesIO()
    np.savez(buffer, header=np.array('{"format": "other"}'))
    with pytest.raises(InvalidInputError):
        nerf.RadianceField.from_bytes(buffer.getvalue())


def test_orbit_starts_at_the_reference_view_and_closes_evenly():
    poses = nerf.orbit(8, elevation=0.0)
    assert poses[0].position == pytest.approx((0.0, 0.0, nerf.REFERENCE_DISTANCE))
    azimuths = [math.degrees(math.atan2(p.position[0], p.position[2])) % 360 for p in poses]
    assert np.diff(azimuths) == pytest.approx([45.0] * 7)
    assert nerf.dolly(3)[0].position[2] > nerf.dolly(3)[-1].position[2]
    assert len(nerf.arc(5, start_azimuth=-20, end_azimuth=20)) == 5


GOOD = {"position": [0, 0, 2.5], "look_at": [0, 0, 0], "up": [0, 1, 0], "fov": 40}


@pytest.mark.parametrize(
    ("trajectory", "fragment"),
    [
        ([], "non-empty"),
        ("orbit", "non-empty"),
        ([{"look_at": [0, 0, 0]}], "position is required"),
        ([{**GOOD, "position": [0, float("nan"), 1]}], "finite"),
        ([{**GOOD, "position": [0, 0]}], "3 numbers"),
        ([{**GOOD, "position": [0, 0, 0]}], "look_at equals position"),
        ([{**GOOD, "fov": 0}], "fov"),
        ([{**GOOD, "fov": 179}], "fov"),
        ([{**GOOD, "fov": "wide"}], "fov"),
        ([{**GOOD, "up": [0, 0, 1]}], "parallel"),
        ([{**GOOD, "up": [0, 0, 0]}], "parallel"),
        ([{**GOOD, "zoom": 2}], "unknown fields"),
        ([GOOD, 5], "camera_trajectory[1]"),
        ([{**GOOD, "position": [1e6, 0, 0]}], "1000"),
    ],
)
def test_bad_trajectories_are_typed_errors(trajectory, fragment):
    with pytest.raises(nerf.CameraError) as error:
        nerf.parse_trajectory(trajectory)
    assert fragment in error.value.message


def test_trajectory_defaults_and_limit():
    (pose,) = nerf.parse_trajectory([{"position": [1, 0.2, 2]}])
    assert pose.look_at == (0.0, 0.0, 0.0) and pose.up == (0.0, 1.0, 0.0) and pose.fov == 40.0
    with pytest.raises(nerf.CameraError, match="at most 3"):
        nerf.parse_trajectory([GOOD] * 4, max_cameras=3)


def test_silhouette_holes_sees_an_enclosed_gap():
    alpha = np.zeros((50, 50), np.float32)
    alpha[10:40, 10:40] = 1.0
    assert nerf.silhouette_holes(alpha) == 0.0
    alpha[20:25, 20:25] = 0.0
    assert nerf.silhouette_holes(alpha) == pytest.approx(25 / 900)


def test_empty_mask_is_refused(present):
    reference, mask = present
    with pytest.raises(InvalidInputError):
        nerf.build_radiance_field(reference.rgb, np.zeros_like(mask.soft), (0, 0, 0, 0))


def test_the_default_turntable_swings_within_what_one_view_shows():
    """±30° about the reference view and back, looping without a jump; a full orbit only
    when asked for (its back half is a guess from one photo)."""
    import math

    from char_pipeline.engine.nerf import swing

    poses = swing(48)
    azimuths = [math.degrees(math.atan2(p.position[0], p.position[2])) for p in poses]
    assert max(azimuths) == pytest.approx(30.0, abs=0.5)
    assert min(azimuths) == pytest.approx(-30.0, abs=0.5)
    steps = np.abs(np.diff(azimuths))
    assert abs(azimuths[0] - azimuths[-1]) <= max(steps) + 1e-9  # the loop closes smoothly
