"""Renderer v2 (mesh + ARAP): every motion without tearing, on a person, an animal, a product."""

from dataclasses import replace

import numpy as np
import pytest

from char_pipeline.engine.controls import JOINT_DEPTHS, JOINT_INDEX, empty_z, latent_sequence
from char_pipeline.engine.deform import MeshRenderer
from char_pipeline.engine.mesh import rasterise, triangle_areas
from char_pipeline.engine.metrics import silhouette_holes
from char_pipeline.engine.motion import MOTIONS, MotionParams, MotionPlan, motion_sequence
from char_pipeline.engine.pipeline import character_from
from char_pipeline.engine.render import Character, RenderSettings
from char_pipeline.engine.renderers import get_renderer
from char_pipeline.engine.rig import build_rig


def _character(pair) -> Character:
    reference, mask = pair
    rig = build_rig(reference.rgb, mask.soft, mask.binary, mask.bbox, mask_source=mask.source)
    # The deformation itself is under test: every joint moves, whatever the subject's kind.
    return replace(character_from(reference.rgb, mask, rig), subject_kind=None)


@pytest.fixture(scope="module")
def scenes(astronaut, chelsea, present):
    renderer = MeshRenderer()
    return renderer, {
        name: renderer.prepare(_character(pair), RenderSettings(192, 192, background="solid"))
        for name, pair in {"person": astronaut, "cat": chelsea, "product": present}.items()
    }


@pytest.mark.parametrize("motion", sorted(MOTIONS))
def test_every_motion_renders_without_tearing(scenes, motion):
    """No tear: the posed mesh stays one sheet (few triangles fold over, no large holes open
    inside its outline) and the subject's area stays within bounds of the reference's."""
    renderer, prepared = scenes
    plan = MotionPlan(motion, None, MotionParams(), ())
    z_sequence = motion_sequence(plan, 12)
    for name, scene in prepared.items():
        _, rest_alpha = renderer.render_layers(scene, empty_z())
        rest_area = (rest_alpha > 128).sum()
        rest_orientation = np.sign(triangle_areas(scene.vertices, scene.triangles))
        rest_map, _ = rasterise(
            scene.vertices,
            scene.vertices,
            scene.triangles,
            np.zeros(len(scene.vertices)),
            scene.width,
            scene.height,
        )
        rest_holes = silhouette_holes((rest_map >= 0).astype(np.float32))
        for index, z_t in enumerate(z_sequence):
            _, alpha = renderer.render_layers(scene, z_t)
            area = (alpha > 128).sum()
            # spin squashes the subject to a quarter of its width when edge-on
            assert 0.2 * rest_area <= area <= 1.6 * rest_area, (
                name,
                motion,
                index,
                area,
                rest_area,
            )
            posed, depth = renderer.deform(scene, z_t)
            map_x, _ = rasterise(
                posed, scene.vertices, scene.triangles, depth, scene.width, scene.height
            )
            holes = silhouette_holes((map_x >= 0).astype(np.float32))
            # Limbs that swing across the body can enclose real background (a hand on the
            # head makes a ring), so a little hole area is allowed; a torn mesh makes more.
            assert holes <= rest_holes + 0.02, (name, motion, index, holes, rest_holes)
            folded = np.mean(np.sign(triangle_areas(posed, scene.triangles)) != rest_orientation)
            assert folded <= 0.05, (name, motion, index, folded)


def test_rest_vector_reproduces_the_placed_subject(scenes):
    renderer, prepared = scenes
    scene = prepared["product"]
    _, alpha = renderer.render_layers(scene, empty_z())
    assert np.abs(alpha.astype(int) - scene.subject[..., 3]).mean() < 0.5


def test_same_inputs_give_identical_frames(present):
    renderer = get_renderer("mesh")
    z = latent_sequence(4, seed=3)
    first = [
        renderer.render(renderer.prepare(_character(present), RenderSettings(96, 96)), zt)
        for zt in z
    ]
    second = [
        renderer.render(renderer.prepare(_character(present), RenderSettings(96, 96)), zt)
        for zt in z
    ]
    for a, b in zip(first, second, strict=True):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("motion", ["wave", "dance", "jump"])
def test_arap_distorts_triangles_less_than_skinning(scenes, motion):
    renderer, prepared = scenes
    scene = prepared["person"]
    z_sequence = motion_sequence(MotionPlan(motion, None, MotionParams(), ()), 12)

    def distortion(points):
        a, b, c = (points[scene.triangles[:, i]] for i in range(3))
        rest_a, rest_b, rest_c = (scene.vertices[scene.triangles[:, i]] for i in range(3))
        # Edge-length change: ARAP keeps each triangle's shape, not just its area.
        edges = [
            np.linalg.norm(b - a, axis=1),
            np.linalg.norm(c - b, axis=1),
            np.linalg.norm(a - c, axis=1),
        ]
        rest = [
            np.linalg.norm(rest_b - rest_a, axis=1),
            np.linalg.norm(rest_c - rest_b, axis=1),
            np.linalg.norm(rest_a - rest_c, axis=1),
        ]
        return np.mean(
            [np.abs(e / np.maximum(r, 1e-9) - 1).mean() for e, r in zip(edges, rest, strict=True)]
        )

    arap = [distortion(renderer.deform(scene, z)[0]) for z in z_sequence]
    skinning = [distortion(renderer.deform(scene, z, arap=False)[0]) for z in z_sequence]
    assert np.mean(arap) < np.mean(skinning)
    assert max(np.abs(renderer.deform(scene, z)[0] - scene.vertices).max() for z in z_sequence) > 5


def test_joint_depth_orders_overlapping_limbs(scenes):
    """A wrist brought to the chest is drawn over the body, or behind it when its depth
    says it is behind."""
    renderer, prepared = scenes
    scene = prepared["person"]
    z_front = empty_z()
    wrist = JOINT_INDEX["left_wrist"]
    z_front[JOINT_DEPTHS.start + wrist] = 0.3
    z_back = z_front.copy()
    z_back[JOINT_DEPTHS.start + wrist] = -0.3
    _, front_depth = renderer.deform(scene, z_front)
    _, back_depth = renderer.deform(scene, z_back)
    arm = scene.skin[:, 1] > 0.5  # vertices carried by the left forearm bone
    assert arm.any()
    assert front_depth[arm].mean() > 0 > back_depth[arm].mean()


def test_backgrounds_solid_colour_and_image(present, image_paths):
    from char_pipeline.engine.images import load_reference_image

    character = _character(present)
    renderer = MeshRenderer()
    solid = renderer.prepare(
        character, RenderSettings(64, 48, background="solid", background_color=(10, 200, 30))
    )
    assert tuple(renderer.render(solid, empty_z())[0, 0]) == (10, 200, 30)
    brick = load_reference_image(image_paths["brick"].read_bytes()).rgb
    if brick.ndim == 2:
        brick = np.dstack([brick] * 3)
    pictured = renderer.prepare(
        character, RenderSettings(64, 48, background="image", background_image=brick)
    )
    frame = renderer.render(pictured, empty_z())
    assert frame[:, :4].std() > 2  # the brick texture shows at the frame's edge
    from char_pipeline.engine.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        renderer.prepare(character, RenderSettings(64, 48, background="image"))


def test_camera_moves_are_gentle_and_checked():
    from char_pipeline.engine.errors import InvalidInputError
    from char_pipeline.engine.render import apply_camera, camera_matrix

    assert camera_matrix("none", 0.5, 100, 80) is None
    start, end = camera_matrix("push-in", 0.0, 100, 80), camera_matrix("push-in", 1.0, 100, 80)
    assert start[0, 0] == pytest.approx(1.0) and end[0, 0] == pytest.approx(1.12)
    # The frame's centre stays put while zooming.
    assert end @ np.array([50.0, 40.0, 1.0]) == pytest.approx([50.0, 40.0])
    frame = np.zeros((80, 100, 3), np.uint8)
    frame[:, :50] = 255
    panned = apply_camera(frame, camera_matrix("pan-left", 1.0, 100, 80))
    assert panned.shape == frame.shape and not np.array_equal(panned, frame)
    with pytest.raises(InvalidInputError, match="camera motion"):
        camera_matrix("dolly-zoom", 0.5, 100, 80)


def test_a_product_photo_with_a_straight_outline_renders_its_subject():
    """coffee.png: Delaunay over its straight saucer rim made zero-area triangles; ARAP gave
    NaN for 774 of 788 vertices and the cup vanished from every frame."""
    from char_pipeline.engine.pipeline import prepare_character

    character = prepare_character(_coffee())
    renderer = MeshRenderer()
    scene = renderer.prepare(character, RenderSettings(160, 160, background="solid"))
    reference_coverage = None
    for z_t in latent_sequence(6, 3, "gaussian"):
        posed, _ = renderer.deform(scene, z_t)
        assert np.isfinite(posed).all()
        _, alpha = renderer.render_layers(scene, z_t)
        coverage = float((alpha > 128).mean())
        reference_coverage = reference_coverage or coverage
        assert coverage > 0.2 and abs(coverage - reference_coverage) < 0.05, coverage


def _coffee() -> bytes:
    from pathlib import Path

    import skimage

    return (Path(skimage.__file__).parent / "data" / "coffee.png").read_bytes()


def test_a_solver_that_returns_nan_is_an_error_that_names_itself(scenes, monkeypatch):
    import igl

    from char_pipeline.engine.errors import DeformationError

    renderer, prepared = scenes
    monkeypatch.setattr(igl, "arap_solve", lambda targets, data, guess: guess * np.nan)
    with pytest.raises(DeformationError, match="non-finite positions") as raised:
        renderer.render_layers(prepared["cat"], empty_z())
    assert raised.value.code == "DeformationFailed" and raised.value.http_status == 422


def test_a_collapsed_pose_is_an_error_not_an_empty_frame(scenes, monkeypatch):
    import igl

    from char_pipeline.engine.errors import EmptyFrameError

    renderer, prepared = scenes
    scene = prepared["cat"]
    monkeypatch.setattr(
        igl, "arap_solve", lambda targets, data, guess: np.repeat(guess[:1], len(guess), 0)
    )
    with pytest.raises(EmptyFrameError, match=r"covers 0\.0% of its area at rest"):
        renderer.render_layers(scene, empty_z())


def test_root_motion_may_carry_the_subject_off_the_frame(scenes):
    from char_pipeline.engine.controls import ROOT_TX

    renderer, prepared = scenes
    z = empty_z()
    z[ROOT_TX] = 2.5  # a deliberate exit, stage right: allowed, not an error
    _, alpha = renderer.render_layers(prepared["product"], z)  # a whole subject, uncut
    assert alpha.max() == 0


def test_a_subject_the_photo_cut_keeps_its_cut_edge_on_the_frame_border(scenes):
    """chelsea.png is a close-up cut by the image edges: the photo's framing is kept (no
    shrinking, no mirrored margins), and a hop or a sway does not lift its cut edges."""
    from char_pipeline.engine.controls import ROOT_ROTATION, ROOT_TX, ROOT_TY

    renderer, prepared = scenes
    scene = prepared["cat"]
    assert len(scene.pinned) > 10
    for entry, value in ((ROOT_TY, -0.4), (ROOT_TX, 0.3), (ROOT_ROTATION, 0.3)):
        z = empty_z()
        z[entry] = value
        posed, _ = renderer.deform(scene, z)
        moved = np.linalg.norm(posed[scene.pinned] - scene.vertices[scene.pinned], axis=1)
        assert moved.max() < 1.0, (entry, moved.max())
        # Away from the cut edges the root motion still applies.
        far = scene.root_weight > 0.5
        assert far.sum() > 20
        assert np.linalg.norm(posed[far] - scene.vertices[far], axis=1).mean() > 3.0
    # Rest pose: the frame is the photo, subject and all, edge to edge.
    _, alpha = renderer.render_layers(scene, empty_z())
    assert (alpha[:, :3] > 128).mean() > 0.3 or (alpha[-3:, :] > 128).mean() > 0.3


def _dance(character: Character, steps: int = 24):
    """The demo's pose control: the dance motion's keypoint track, encoded back into z."""
    from char_pipeline.engine.motion import keypoint_track

    return keypoint_track("dance", steps, character.rest)[1]


@pytest.fixture(scope="module")
def astronaut_scene(astronaut):
    character = _character(astronaut)
    renderer = MeshRenderer()
    return renderer, character, renderer.prepare(character, RenderSettings(256, 256))


def test_cut_edges_stay_on_the_frame_border_in_every_frame(astronaut_scene):
    """The astronaut is cut by the bottom and side edges and her helmet arm runs off the
    bottom: every vertex on those edges stays put while she dances (the arm used to lift its
    cut end and show the plate below it)."""
    renderer, character, scene = astronaut_scene
    assert len(scene.pinned) > 10
    for z_t in _dance(character):
        posed, _ = renderer.deform(scene, z_t)
        moved = np.linalg.norm(posed[scene.pinned] - scene.vertices[scene.pinned], axis=1)
        assert moved.max() < 0.5
        _, alpha = renderer.render_layers(scene, z_t)
        # The bottom row of the frame is covered where the subject is cut, frame after frame.
        assert (alpha[-1] > 128).mean() > 0.5


def test_a_pose_the_mesh_cannot_follow_is_damped_not_torn(astronaut_scene, monkeypatch):
    """Dancing arms on a bust whose arms the photo cut: undamped, 14 % of the subject's area
    was stretched past 2× (a torn, smeared helmet arm); damped, no frame passes the quality
    check's bound — and the check would see the undamped tear."""
    from char_pipeline.engine import deform
    from char_pipeline.engine.metrics import MAX_TORN_SHARE, torn_area_share

    renderer, character, scene = astronaut_scene
    sequence = _dance(character)

    def worst() -> float:
        return max(
            torn_area_share(scene.vertices, renderer.deform(scene, z_t)[0], scene.triangles)
            for z_t in sequence
        )

    damped = worst()
    monkeypatch.setattr(deform, "DAMP_TORN_SHARE", np.inf)
    undamped = worst()
    assert damped <= MAX_TORN_SHARE < undamped, (damped, undamped)


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "present", "stick_figure", "pig"])
def test_the_still_character_is_the_outline_of_its_mask(image_paths, name):
    """No notch: at rest the rendered subject covers exactly its mask (IoU ≥ 0.98), thin
    pencil strokes and the paper inside a drawn arm's loop included."""
    from char_pipeline.engine.metrics import MIN_SILHOUETTE_IOU, silhouette_iou
    from char_pipeline.engine.pipeline import prepare_character

    character = prepare_character(image_paths[name].read_bytes())
    renderer = MeshRenderer()
    scene = renderer.prepare(character, RenderSettings(256, 256, background="solid"))
    _, alpha = renderer.render_layers(scene, empty_z())
    assert silhouette_iou(alpha, scene.subject[..., 3]) >= MIN_SILHOUETTE_IOU


def test_a_drawing_is_placed_whole_in_the_frame(image_paths):
    """A drawing whose strokes touch the photo's edge (the sheet was cropped tight) is still a
    whole figure: framed whole, not as a close-up that crops its head (it used to be)."""
    from char_pipeline.engine.pipeline import prepare_character
    from char_pipeline.engine.render import cut_edges, place_subject

    character = prepare_character(image_paths["stick_figure"].read_bytes())
    assert character.mask_source == "drawing" and cut_edges(character) == ()
    placed = place_subject(character, RenderSettings(256, 256))
    alpha = placed.subject[..., 3]
    assert alpha.sum() / 255 >= 0.97 * character.soft_mask.sum() / 255 * placed.placement[0, 0] ** 2
    assert alpha[0].max() == alpha[-1].max() == alpha[:, 0].max() == alpha[:, -1].max() == 0


def test_joints_the_photo_does_not_show_pin_nothing():
    """A bone running past the frame's edge (a bust's arm below the photo): its sample outside
    the frame ties no vertex, even where the mesh (the photo's cropped part) reaches it."""
    from char_pipeline.engine.deform import _handles
    from char_pipeline.engine.mesh import Mesh

    xs, ys = np.meshgrid(np.arange(0, 101, 10.0), np.arange(0, 161, 10.0))
    vertices = np.stack([xs.ravel(), ys.ravel()], 1)  # a sheet 100 wide, 160 tall
    columns = 11
    triangles = []
    for row in range(16):
        for col in range(10):
            a = row * columns + col
            triangles += [[a, a + 1, a + columns], [a + 1, a + columns + 1, a + columns]]
    mesh = Mesh(vertices, np.array(triangles, np.int32))
    starts, ends = np.array([[50.0, 60.0]]), np.array([[50.0, 150.0]])  # ends below y = 120
    skin = np.ones((len(vertices), 1))
    inside, _ = _handles(mesh, starts, ends, skin, (100, 120))
    everywhere, _ = _handles(mesh, starts, ends, skin, (100, 1000))
    assert (vertices[inside][:, 1] < 120).all()
    assert (vertices[everywhere][:, 1] >= 120).any()  # the frame is what made the difference


def test_the_head_is_drawn_above_every_arm_for_a_person():
    """Whatever depth a pose gives a wrist, a person's head bone is nearer than every arm
    bone; an object's bone depths are as the pose says."""
    from char_pipeline.engine.deform import HEAD_BONE, _bone_depths

    z = empty_z()
    z[JOINT_DEPTHS.start + JOINT_INDEX["left_wrist"]] = 0.6  # a hand brought to the camera
    arms = [0, 1, 2, 3]  # render.LIMB_BONES: the upper arms and forearms first
    for kind in ("person", "portrait", "figure", None):
        depths = _bone_depths(z, kind)
        assert depths[HEAD_BONE] > depths[arms].max(), kind
    assert _bone_depths(z, "object")[HEAD_BONE] < _bone_depths(z, "object")[arms].max()


@pytest.fixture(scope="module")
def cameraman():
    """The cameraman (scikit-image), a person whose hands are at his face."""
    from pathlib import Path

    import skimage

    from char_pipeline.engine.pipeline import prepare_character

    path = Path(skimage.__file__).parent / "data" / "camera.png"
    return prepare_character(path.read_bytes())


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_hand_swung_across_the_face_leaves_the_face_uncovered(cameraman, side, monkeypatch):
    """A wrist brought onto the nose (the right hand holds the camera under the face; the left
    arm reaches past it): the detected face's pixels stay those of the rest frame — the arm
    passes behind the face and does not drag it along. Without the face held above the arms
    the hand covers it, or the face is pulled with the arm."""
    from char_pipeline.engine import deform
    from char_pipeline.engine.faces import face_box

    if cameraman.subject_kind != "person":
        pytest.skip("the cameraman is a person with the pose model (make setup installs it)")
    renderer = MeshRenderer()
    settings = RenderSettings(160, 160, background="solid")

    def face_change() -> float:
        scene = renderer.prepare(cameraman, settings)
        rest = renderer.render(scene, empty_z())
        box = face_box(rest)
        assert box is not None, "the face is found at rest"
        x, y, w, h = box
        wrist, elbow = (JOINT_INDEX[f"{side}_{n}"] for n in ("wrist", "elbow"))
        nose = scene.rest_joints[JOINT_INDEX["nose"]]
        offset = (nose - scene.rest_joints[wrist]) / scene.subject_height
        z = empty_z()
        z[2 * wrist : 2 * wrist + 2] = offset
        z[2 * elbow : 2 * elbow + 2] = offset / 2
        frame = renderer.render(scene, z)
        face = np.s_[y : y + h, x : x + w]
        return float(np.abs(frame[face].astype(float) - rest[face]).mean())

    held = face_change()
    monkeypatch.setattr(deform, "HEAD_OVER_ARMS_KINDS", ())
    covered = face_change()
    assert held < 3.0 and covered > 10.0, (held, covered)
