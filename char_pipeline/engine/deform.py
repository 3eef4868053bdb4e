"""Renderer v2 (``mesh``): as-rigid-as-possible deformation of the subject's mesh.

The subject's triangle mesh (engine/mesh.py) is pinned to the skeleton: vertices next to
each bone are handles that follow the bone's rigid motion; libigl's ARAP solve moves every
other vertex so each triangle stays as rigid as possible — limbs bend at joints without
stretching, the body does not shear. The deformed mesh is rasterised into a backward map
(depth-ordered: a limb swung in front of the body covers it) and the placed subject is
remapped in one ``cv2.remap``; the soft mask's remapped alpha gives anti-aliased edges.
Root motion (translation, scale, rotation, squash) is applied to the solved mesh.
Deterministic: the same character, settings and z give the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from char_pipeline.engine.controls import (
    JOINT_DEPTHS,
    JOINT_INDEX,
    JOINT_OFFSETS,
    joint_offsets,
    validate_z,
)
from char_pipeline.engine.errors import DeformationError, EmptyFrameError
from char_pipeline.engine.kinds import FACE_HELD_KINDS, restrict_to_kind
from char_pipeline.engine.mesh import Mesh, build_mesh, rasterise, triangle_areas
from char_pipeline.engine.metrics import TEAR_STRETCH, torn_share_of, triangle_stretch
from char_pipeline.engine.render import (
    LIMB_BONES,
    Character,
    RenderSettings,
    _background,
    _segment_distances_sq,
    _similarities,
    bone_segments,
    composite,
    place_subject,
    root_transform,
    warp_subject,
)

HANDLES_PER_BONE = 2  # samples along each bone whose nearest vertex becomes a handle
ARAP_ITERATIONS = 8
# Bone layers for overlaps, in subject heights toward the camera: arms over the body,
# the body over the legs; the control's joint depths (z layout) add to these.
ARM_LAYER, LEG_LAYER = 0.05, -0.02
# For these kinds the head is drawn this far above the nearest arm bone, whatever the joint
# depths say, and the detected face (engine/faces.py) is held by the head bone: a hand swung
# across the face passes behind it, and an arm does not drag the face along — the detected
# face is never covered by a moving limb.
HEAD_OVER_ARMS_KINDS = FACE_HELD_KINDS
HEAD_OVER_ARMS = 0.1
HEAD_BONE = len(LIMB_BONES) + 1  # bone_segments: limbs, spine, head, shoulders


@dataclass
class MeshScene:
    width: int
    height: int
    subject: np.ndarray  # HxWx4 uint8: premultiplied RGB + alpha, placed in the frame
    background: np.ndarray  # HxWx3 uint8
    rest_joints: np.ndarray  # (17, 2) frame pixels
    subject_height: float  # frame pixels
    pivot: np.ndarray  # (2,) frame pixels
    vertices: np.ndarray  # (V, 2) rest mesh, frame pixels
    triangles: np.ndarray  # (F, 3)
    handles: np.ndarray  # (H,) vertex indices
    handle_bones: np.ndarray  # (H,) bone index each handle follows
    skin: np.ndarray  # (V, B) bone weights (initial guess and depth)
    arap: object  # igl.ARAPData
    limb_gain: float = 1.0
    # Vertices on an edge where the photo cut the subject: held where they are (ARAP handles).
    pinned: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    # Per vertex, how much of the root motion (hop, sway, turn) it follows: 0 on a cut edge,
    # rising to 1 away from it, so a bust's cut edge stays on the frame border.
    root_weight: np.ndarray | None = None
    subject_kind: str | None = None  # engine/kinds.py: joints the kind keeps still stay still
    rest_area: float = 0.0  # of the rest mesh (frame pixels²), for the collapse guard
    triangle_area: np.ndarray = field(default_factory=lambda: np.empty(0))  # per triangle, rest
    # Vertices on the detected face: handles of the head bone, drawn at its depth.
    face: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))


def _bone_layers() -> np.ndarray:
    layers = [ARM_LAYER if "shoulder" in a or "elbow" in a else LEG_LAYER for a, _ in LIMB_BONES]
    return np.array([*layers, 0.0, 0.0, 0.0])


def _bone_depths(z: np.ndarray, kind: str | None = None) -> np.ndarray:
    """Depth of each skinning bone: the mean of its end joints' depths, plus its layer; for a
    person, portrait or figure (``kind`` None: a figure) the head above every arm."""
    depth = np.asarray(z[JOINT_DEPTHS], dtype=np.float64)
    j = {name: depth[index] for name, index in JOINT_INDEX.items()}
    neck = (j["left_shoulder"] + j["right_shoulder"]) / 2
    pelvis = (j["left_hip"] + j["right_hip"]) / 2
    ends = [(j[a] + j[b]) / 2 for a, b in LIMB_BONES] + [
        (pelvis + neck) / 2,
        (neck + j["nose"]) / 2,
        neck,
    ]
    depths = np.array(ends) + _bone_layers()
    if (kind or "figure") in HEAD_OVER_ARMS_KINDS:
        arms = [i for i, (a, _) in enumerate(LIMB_BONES) if "shoulder" in a or "elbow" in a]
        depths[HEAD_BONE] = max(depths[HEAD_BONE], depths[arms].max() + HEAD_OVER_ARMS)
    return depths


class MeshRenderer:
    """Renderer v2: ARAP deformation of the subject's triangle mesh, joints as handles."""

    name = "mesh"

    def prepare(self, character: Character, settings: RenderSettings) -> MeshScene:
        import igl

        subject = place_subject(character, settings)
        placement, joints, pivot = subject.placement, subject.joints, subject.pivot
        scale = placement[0, 0]
        # Rigs stored before degenerate triangles were removed at build time get the same repair.
        mesh = (
            character.mesh.without_degenerate()
            if character.mesh is not None
            else build_mesh(character.soft_mask)
        )
        placed = mesh.transformed(placement)
        unit = float(character.rest.subject_height * scale)

        starts, ends = bone_segments(joints)
        skin_sigma = character.skin_sigma
        distances = _segment_distances_sq(placed.vertices, starts, ends) / unit**2
        logits = -distances / (2 * skin_sigma**2)
        skin = np.exp(logits - logits.max(axis=1, keepdims=True))
        skin /= skin.sum(axis=1, keepdims=True)
        handles, handle_bones = _handles(
            placed, starts, ends, skin, (settings.width, settings.height)
        )
        face = _face_vertices(character, placement, placed.vertices)
        if len(face):  # the face follows the head alone, not an arm skinned over it
            other = ~np.isin(handles, face)
            handles = np.r_[handles[other], face]
            handle_bones = np.r_[handle_bones[other], np.full(len(face), HEAD_BONE)]
        pinned, root_weight = _cut_edge_anchors(
            placed.vertices, subject.cut, settings.width, settings.height, unit
        )
        # Every vertex on a cut edge is held, a limb's too: an arm the photo cut that lifted
        # its cut end showed the plate below it (the astronaut's helmet arm); the damping in
        # deform() keeps the rest of that limb from tearing against the pin.
        free = ~np.isin(handles, pinned)  # a pinned vertex follows no bone
        handles, handle_bones = handles[free], handle_bones[free]
        areas = np.abs(triangle_areas(placed.vertices, placed.triangles))
        data = igl.ARAPData()
        data.max_iter = ARAP_ITERATIONS
        igl.arap_precomputation(
            placed.vertices,
            placed.triangles.astype(np.int64),
            2,
            np.r_[handles, pinned].astype(np.int32),
            data,
        )
        return MeshScene(
            width=settings.width,
            height=settings.height,
            subject=subject.subject,
            background=_background(character, settings, placement),
            rest_joints=joints,
            subject_height=unit,
            pivot=pivot,
            vertices=placed.vertices,
            triangles=placed.triangles,
            handles=handles,
            handle_bones=handle_bones,
            skin=skin,
            arap=data,
            limb_gain=character.limb_gain,
            pinned=pinned,
            root_weight=root_weight,
            subject_kind=character.subject_kind,
            rest_area=float(areas.sum()),
            triangle_area=areas,
            face=face,
        )

    def deform(
        self, scene: MeshScene, z_t: np.ndarray, *, arap: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The posed mesh vertices (frame pixels) and their depths for one control vector
        (``arap=False``: plain linear blend skinning, for comparison)."""
        posed, depth, _ = self.deform_measured(scene, z_t, arap=arap)
        return posed, depth

    def deform_measured(
        self, scene: MeshScene, z_t: np.ndarray, *, arap: bool = True
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """:meth:`deform`, plus the share of the subject's area torn (stretched past
        metrics.TEAR_STRETCH) by the joints' pose, which the quality check reads."""
        z = restrict_to_kind(validate_z(z_t), scene.subject_kind)
        unit = scene.subject_height
        solved = self._solve(scene, z, 1.0, arap)
        stretch = triangle_stretch(scene.vertices, solved, scene.triangles)
        torn = _torn(scene, stretch)
        if arap and torn > DAMP_TORN_SHARE:
            # The pose asks more than the mesh can give without tearing (a limb pinned by a
            # cut edge, a skeleton guessed on a cat): play as much of it as stays whole.
            solved, _, torn = self._damped(scene, z, stretch)
        # Root motion about the pivot (the bottom centre of the subject's box).
        forward, shift = root_transform(z, unit)
        posed = (solved - scene.pivot) @ forward.T + scene.pivot + shift
        if scene.root_weight is not None:  # a cut edge does not hop, sway or turn
            posed = solved + scene.root_weight[:, None] * (posed - solved)
        _check_not_collapsed(scene, solved)
        bones = _bone_depths(z, scene.subject_kind)
        depth = scene.skin @ bones
        depth[scene.face] = bones[HEAD_BONE]
        return posed, depth, torn

    def _damped(
        self, scene: MeshScene, z: np.ndarray, stretch: np.ndarray
    ) -> tuple[np.ndarray, float, float]:
        """The mesh at the largest joint gain that tears at most DAMP_TORN_SHARE of it, with
        that gain and the torn share it leaves.

        A triangle's stretch grows about linearly with the gain (1 + g·(s − 1)), so the gain
        that brings the stretch exceeded by DAMP_TORN_SHARE of the area down to TEAR_STRETCH
        is tried first; a bisection below it runs only when that guess still tears (most
        frames take one extra solve instead of a full bisection)."""
        order = np.argsort(stretch)[::-1]
        above = np.cumsum(scene.triangle_area[order]) / max(scene.rest_area, 1e-9)
        limit = float(stretch[order][min(np.searchsorted(above, DAMP_TORN_SHARE), len(order) - 1)])
        gain = float(np.clip((TEAR_STRETCH - 1.0) / max(limit - 1.0, 1e-9), 0.0, 1.0))
        candidate = self._solve(scene, z, gain, True)
        torn = torn_share(scene, candidate)
        if torn <= DAMP_TORN_SHARE:
            return candidate, gain, torn
        low, high = 0.0, gain
        best, torn = scene.vertices.copy(), 0.0  # no joint motion: the rest mesh
        for _ in range(DAMP_STEPS):
            gain = (low + high) / 2
            candidate = self._solve(scene, z, gain, True)
            share = torn_share(scene, candidate)
            if share > DAMP_TORN_SHARE:
                high = gain
            else:
                low, best, torn = gain, candidate, share
        return best, low, torn

    def damp_sequence(self, scene: MeshScene, z_sequence: np.ndarray) -> np.ndarray:
        """The sequence with its joint motion scaled down, smoothly over time, wherever a
        frame would tear: each frame's damping gain (see _damped), eroded and smoothed over
        ±DAMP_SMOOTH_FRAMES (around the loop). Damped frame by frame, a gain that jumped
        between neighbouring frames made the picture pop (astronaut dance, f10→11)."""
        from scipy.ndimage import gaussian_filter1d, minimum_filter1d

        sequence = np.asarray(z_sequence, dtype=np.float32)
        gains = np.ones(len(sequence))
        for index, z_t in enumerate(sequence):
            z = restrict_to_kind(validate_z(z_t), scene.subject_kind)
            solved = self._solve(scene, z, 1.0, True)
            stretch = triangle_stretch(scene.vertices, solved, scene.triangles)
            if _torn(scene, stretch) > DAMP_TORN_SHARE:
                gains[index] = self._damped(scene, z, stretch)[1]
        if (gains >= 1.0).all():
            return sequence
        eroded = minimum_filter1d(gains, 2 * DAMP_SMOOTH_FRAMES + 1, mode="wrap")
        smooth = gaussian_filter1d(eroded, DAMP_SMOOTH_FRAMES / 2, mode="wrap")
        damped = sequence.copy()
        damped[:, JOINT_OFFSETS] *= smooth[:, None].astype(np.float32)
        return damped

    def _solve(self, scene: MeshScene, z: np.ndarray, gain: float, arap: bool) -> np.ndarray:
        """The mesh posed by the joints of ``z`` at ``gain`` of their offsets (no root motion)."""
        import igl

        unit = scene.subject_height
        posed_joints = scene.rest_joints + joint_offsets(z) * unit * scene.limb_gain * gain
        rest_a, rest_b = bone_segments(scene.rest_joints)
        posed_a, posed_b = bone_segments(posed_joints)
        to_posed = _similarities(rest_a, rest_b, posed_a, posed_b)  # (B, 2, 3)
        # Linear blend skinning is the first guess; ARAP makes it rigid where it matters.
        rest_h = np.c_[scene.vertices, np.ones(len(scene.vertices))]
        per_bone = np.einsum("bij,vj->vbi", to_posed, rest_h)
        guess = np.einsum("vb,vbi->vi", scene.skin, per_bone)
        targets = np.vstack(
            [per_bone[scene.handles, scene.handle_bones], scene.vertices[scene.pinned]]
        )
        solved = igl.arap_solve(targets, scene.arap, guess) if arap else guess
        if not np.isfinite(solved).all():
            broken = int((~np.isfinite(solved)).any(axis=1).sum())
            raise DeformationError(
                f"The mesh deformation (ARAP) gave non-finite positions for {broken} of "
                f"{len(solved)} vertices; the subject's mesh cannot be animated.",
                vertices=len(solved),
                non_finite=broken,
            )
        return solved

    def render(self, scene: MeshScene, z_t: np.ndarray) -> np.ndarray:
        return self.render_layers(scene, z_t)[0]

    def render_layers(self, scene: MeshScene, z_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frame, alpha, _ = self.render_measured(scene, z_t)
        return frame, alpha

    def render_measured(
        self, scene: MeshScene, z_t: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """The frame, the subject's coverage and the torn area share (see deform_measured)."""
        posed, depth, torn = self.deform_measured(scene, z_t)
        map_x, map_y = rasterise(
            posed, scene.vertices, scene.triangles, depth, scene.width, scene.height
        )
        subject = warp_subject(scene, map_x, map_y)
        return composite(scene, subject), subject[..., 3], torn


# Vertices this close to a cutting frame border (pixels) are pinned; root motion fades in
# over this share of the subject's height away from it.
PIN_TOLERANCE = 2.5
ROOT_FADE = 0.6


def _cut_edge_anchors(
    vertices: np.ndarray, cut: tuple[str, ...], width: int, height: int, unit: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """The vertices on frame borders where the photo cut the subject, and each vertex's share
    of the root motion (None when nothing is cut: every vertex follows it fully)."""
    if not cut:
        return np.empty(0, np.int64), None
    distances = {
        "left": vertices[:, 0],
        "right": (width - 1) - vertices[:, 0],
        "top": vertices[:, 1],
        "bottom": (height - 1) - vertices[:, 1],
    }
    nearest = np.min([distances[edge] for edge in cut], axis=0)
    pinned = np.flatnonzero(nearest <= PIN_TOLERANCE).astype(np.int64)
    weight = np.clip((nearest - PIN_TOLERANCE) / (ROOT_FADE * unit), 0.0, 1.0)  # 0 when pinned
    return pinned, weight


# When more than DAMP_TORN_SHARE of the subject's area is in triangles stretched beyond
# TEAR_STRETCH (a smear or a tear), the pose is damped: its joint offsets scaled down (see
# MeshRenderer._damped; DAMP_STEPS bounds the fallback bisection). Well under the check's
# MAX_TORN_SHARE.
DAMP_TORN_SHARE = 0.006
DAMP_STEPS = 4
DAMP_SMOOTH_FRAMES = 4  # a sequence's damping gain changes over about this many frames


def torn_share(scene: MeshScene, solved: np.ndarray) -> float:
    return _torn(scene, triangle_stretch(scene.vertices, solved, scene.triangles))


def _torn(scene: MeshScene, stretch: np.ndarray) -> float:
    return torn_share_of(stretch, scene.triangle_area)


# A posed mesh with less than this share of its rest area lost the subject (a failed solve,
# a collapsed mesh): an error, never an encoded frame. Root motion (which may legitimately
# carry the subject off the frame) is applied after this check and does not count.
MIN_POSED_AREA_SHARE = 0.05


def _check_not_collapsed(scene: MeshScene, solved: np.ndarray) -> None:
    rest = scene.rest_area
    posed = float(np.abs(triangle_areas(solved, scene.triangles)).sum())
    if rest > 0 and posed < MIN_POSED_AREA_SHARE * rest:
        raise EmptyFrameError(
            f"The posed subject covers {posed / rest:.1%} of its area at rest: the render lost "
            "the subject, so no video is made from it.",
            area_share=round(posed / rest, 4),
        )


def _face_vertices(character: Character, placement: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """The placed mesh's vertices inside the face found when the subject was rigged
    (``Character.face_box``); none for kinds without a held face or without a face."""
    if character.face_box is None or (character.subject_kind or "figure") not in (
        HEAD_OVER_ARMS_KINDS
    ):
        return np.empty(0, np.int64)
    x, y, w, h = character.face_box
    corners = np.array([[x, y], [x + w, y + h]], np.float64) @ placement[:, :2].T
    low, high = (corners + placement[:, 2]).min(axis=0), (corners + placement[:, 2]).max(axis=0)
    inside = np.all((vertices >= low) & (vertices <= high), axis=1)
    return np.flatnonzero(inside).astype(np.int64)


def _handles(
    mesh: Mesh,
    starts: np.ndarray,
    ends: np.ndarray,
    skin: np.ndarray,
    frame: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Vertices pinned to bones: the vertex nearest each sample along each bone, if it lies
    on the subject near the bone and is claimed by that bone's skin. One bone per vertex.
    A sample outside the frame pins nothing: a joint the photo does not show (a bust's
    elbow below the edge) must not drag the visible mesh toward where it is guessed to be."""
    samples = np.linspace(0.0, 1.0, HANDLES_PER_BONE)
    chosen: dict[int, int] = {}
    spacing = np.median(
        np.linalg.norm(
            mesh.vertices[mesh.triangles[:, 0]] - mesh.vertices[mesh.triangles[:, 1]], axis=1
        )
    )
    for bone, (start, end) in enumerate(zip(starts, ends, strict=True)):
        points = start[None, :] + samples[:, None] * (end - start)[None, :]
        distances = np.linalg.norm(mesh.vertices[None, :, :] - points[:, None, :], axis=2)
        nearest = distances.argmin(axis=1)
        for sample, vertex in enumerate(nearest):
            x, y = points[sample]
            if not (0 <= x < frame[0] and 0 <= y < frame[1]):
                continue
            close = distances[sample, vertex] <= 1.5 * spacing
            if close and skin[vertex].argmax() == bone and vertex not in chosen:
                chosen[int(vertex)] = bone
    if len(chosen) < 3:
        # A skeleton that misses the mesh: pin the vertices nearest the bones' midpoints.
        for bone, (start, end) in enumerate(zip(starts, ends, strict=True)):
            vertex = int(np.linalg.norm(mesh.vertices - (start + end) / 2, axis=1).argmin())
            chosen.setdefault(vertex, bone)
    handles = np.array(sorted(chosen), dtype=np.int64)
    return handles, np.array([chosen[h] for h in handles], dtype=np.int64)
