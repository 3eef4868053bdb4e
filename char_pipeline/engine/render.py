"""Renderers turn a prepared character and one control vector into one RGB frame.

Renderer v1 (``warp``) moves the segmented subject with a thin-plate-spline warp solved on
a coarse grid from the skeleton's joints (and points along its bones), applied with
``cv2.remap``, and composites it over a background. It is deterministic: the same
character, settings and z give byte-identical frames. Renderers sit behind the small
:class:`Renderer` protocol so a rigged renderer can replace this one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

import cv2
import numpy as np

from char_pipeline.engine.controls import (
    JOINT_INDEX,
    ROOT_LOG_SCALE,
    ROOT_LOG_SQUASH_X,
    ROOT_ROTATION,
    ROOT_TX,
    ROOT_TY,
    RestPose,
    joint_offsets,
    validate_z,
)
from char_pipeline.engine.errors import InvalidInputError, ResourceExhaustedError
from char_pipeline.engine.kinds import LIMB_RIGS, restrict_to_kind
from char_pipeline.engine.mesh import Mesh

Background = Literal["auto", "scene", "solid", "image"]
MAX_RENDER_PIXELS = 3840 * 2160
SOLID_BACKGROUND = (236, 236, 232)
_RESOLUTION = re.compile(r"^(\d+)x(\d+)$")

# Bones of the skeleton: each moves the pixels near it rigidly (linear blend skinning).
# The torso and head bones use midpoints, so they are listed as joint pairs to average.
LIMB_BONES: tuple[tuple[str, str], ...] = (
    ("left_shoulder", "left_elbow"),
    ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"),
    ("left_hip", "left_knee"),
    ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"),
    ("right_knee", "right_ankle"),
)
# Skinning falloff, in subject heights: how far a bone's pull reaches.
SKIN_SIGMA = 0.05


def parse_resolution(text: str, *, max_pixels: int = MAX_RENDER_PIXELS) -> tuple[int, int]:
    """'1280x720' → (1280, 720), with the seed's pattern and sane bounds."""
    match = _RESOLUTION.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise InvalidInputError(
            f"Resolution {text!r} must look like '1280x720' (WIDTHxHEIGHT).", resolution=text
        )
    width, height = int(match.group(1)), int(match.group(2))
    if width < 16 or height < 16:
        raise InvalidInputError("Resolution must be at least 16x16.", resolution=text)
    if width * height > max_pixels:
        raise ResourceExhaustedError(
            f"Resolution {width}x{height} exceeds this compute type's limit of {max_pixels:,} pixels.",
            resolution=text,
            max_pixels=max_pixels,
        )
    return width, height


@dataclass(frozen=True)
class Character:
    """Everything a renderer needs about the subject, in reference-image pixels."""

    rgb: np.ndarray
    soft_mask: np.ndarray
    bbox: tuple[int, int, int, int]
    rest: RestPose
    mask_source: str = "u2netp"
    rig_kind: str = "template"  # "face": a person's skeleton; "template": any other shape
    mesh: Mesh | None = None  # the rig's triangle mesh (reference pixels), if built
    subject_kind: str | None = None  # engine/kinds.py: which joints may move
    # The detected face on the subject (x, y, w, h), which no moving limb may cover.
    face_box: tuple[int, int, int, int] | None = None

    @property
    def limb_gain(self) -> float:
        """How much of a limb motion a template-rigged (non-person) subject follows.

        A template skeleton only guesses where limbs are on a cat or a box, so its limbs
        move less and blend more softly; root motion (hops, sways, turns) is unchanged. A
        drawn figure's skeleton follows its strokes (the medial axis of a humanoid drawing),
        so its limbs take the whole motion: at 0.35 a clip's wave barely left the body. A
        four-legged rig's legs are found on the legs themselves, so they do too.
        """
        found = self.rig_kind in LIMB_RIGS or self.subject_kind == "figure"
        return 1.0 if found else 0.35

    @property
    def skin_sigma(self) -> float:
        return SKIN_SIGMA if self.rig_kind in LIMB_RIGS else 3 * SKIN_SIGMA


@dataclass(frozen=True)
class RenderSettings:
    width: int = 720
    height: int = 720
    background: Background = "auto"
    subject_fill: float = 0.72  # fraction of the frame height the subject's box takes
    background_color: tuple[int, int, int] = SOLID_BACKGROUND  # for "solid"
    background_image: np.ndarray | None = None  # RGB, for "image": scaled to cover the frame
    # A cast (several characters in one frame): the horizontal span (fractions of the frame
    # width) this character's whole box is fitted into; the photo's own framing is not used.
    slot: tuple[float, float] | None = None


class PreparedScene(Protocol):
    width: int
    height: int


class Renderer(Protocol):
    """Prepare once per character and size; then render one frame per control vector."""

    name: str

    def prepare(self, character: Character, settings: RenderSettings) -> PreparedScene: ...

    def render(self, scene: PreparedScene, z_t: np.ndarray) -> np.ndarray: ...

    def render_layers(self, scene: PreparedScene, z_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The frame (HxWx3) and the subject's coverage in it (HxW uint8 alpha)."""
        ...


EDGES = ("left", "top", "right", "bottom")
# The photo cut the subject at an edge when its mask covers this share of that edge's length.
CUT_EDGE_SHARE = 0.03


def cut_edges(character: Character) -> tuple[str, ...]:
    """The image edges that cut the subject (a bust's bottom, a close-up's sides).

    None for a drawing: a figure whose stroke touches the photo's edge is still whole (the
    sheet was cropped tight), so it is placed whole rather than framed as a close-up."""
    if character.mask_source == "drawing":
        return ()
    covered = character.soft_mask > 128
    strips = {
        "left": covered[:, :2].any(axis=1),
        "right": covered[:, -2:].any(axis=1),
        "top": covered[:2, :].any(axis=0),
        "bottom": covered[-2:, :].any(axis=0),
    }
    return tuple(edge for edge in EDGES if strips[edge].mean() >= CUT_EDGE_SHARE)


def _similarity(scale: float, reference_xy, frame_xy) -> np.ndarray:
    """The 2x3 scale-and-shift taking the reference point to the frame point."""
    (rx, ry), (fx, fy) = reference_xy, frame_xy
    return np.array([[scale, 0, fx - rx * scale], [0, scale, fy - ry * scale]], dtype=np.float64)


# Keeping a cut subject's framing may crop at most this share of its span on an axis cut on
# one side, and only on that side: a tall bust in a wide frame keeps its head. An axis cut on
# both sides (a close-up) may be cropped freely; an uncut axis not at all.
MAX_FRAMING_CROP = 0.2


def _photo_framing(character: Character, settings: RenderSettings, cut: tuple[str, ...]):
    """Cover-fit the photo into the frame with every cut edge on the frame's border, so a bust
    stays a bust (it used to shrink to 72 % and float with a straight cut edge) — unless that
    crops more than MAX_FRAMING_CROP of the subject or any of its uncut sides: then the photo
    is scaled down until it does not, and the scene plate covers the rest of the frame."""
    height, width = character.soft_mask.shape
    x0, y0, x1, y1 = character.bbox
    scale = max(settings.width / width, settings.height / height)
    for low, high, span, frame in (
        ("left", "right", x1 - x0, settings.width),
        ("top", "bottom", y1 - y0, settings.height),
    ):
        if low in cut and high in cut:
            continue  # a close-up cut on both sides: closer is still the same close-up
        croppable = MAX_FRAMING_CROP if (low in cut or high in cut) else 0.0
        scale = min(scale, frame / max(1.0, span * (1.0 - croppable)))
    # Both cut edges of an axis must reach the frame's borders, or they float in the frame
    # as straight lines: that axis is covered even if the other one then crops the subject.
    for low, high, size, frame in (
        ("left", "right", width, settings.width),
        ("top", "bottom", height, settings.height),
    ):
        if low in cut and high in cut:
            scale = max(scale, frame / size)

    def offset(low: str, high: str, size: float, frame: float, a: float, b: float) -> float:
        room = size * scale - frame  # how much of the photo the frame crops on this axis
        if (low in cut) == (high in cut):  # centre on the subject, within the photo
            return float(np.clip((a + b) / 2 * scale - frame / 2, min(0.0, room), max(0.0, room)))
        if low in cut:  # cut side on the border; the far side of the subject stays in frame
            return float(max(0.0, b * scale - frame)) if room > 0 else 0.0
        return float(min(room, a * scale)) if room > 0 else room

    dx = offset("left", "right", width, settings.width, x0, x1)
    dy = offset("top", "bottom", height, settings.height, y0, y1)
    return np.array([[scale, 0, -dx], [0, scale, -dy]], dtype=np.float64)


def _placement(character: Character, settings: RenderSettings, cut: tuple[str, ...]) -> np.ndarray:
    """The similarity (2x3) reference → frame: the photo's own framing for a subject the
    photo cut, else the subject's box centred at ``subject_fill`` of the frame."""
    x0, y0, x1, y1 = character.bbox
    if settings.slot is not None:
        left, right = (fraction * settings.width for fraction in settings.slot)
        scale = min(
            settings.subject_fill * settings.height / (y1 - y0),
            settings.subject_fill * (right - left) / (x1 - x0),
        )
        return _similarity(
            scale, ((x0 + x1) / 2, (y0 + y1) / 2), ((left + right) / 2, settings.height / 2)
        )
    if cut:
        return _photo_framing(character, settings, cut)
    scale = min(
        settings.subject_fill * settings.height / (y1 - y0),
        settings.subject_fill * settings.width / (x1 - x0),
    )
    return _similarity(
        scale, ((x0 + x1) / 2, (y0 + y1) / 2), (settings.width / 2, settings.height / 2)
    )


def _background_placement(character: Character, settings: RenderSettings, placement: np.ndarray):
    """Where the scene plate goes: with the subject, scaled up just enough (about the same
    point) that the photo covers the whole frame — never mirror-padded at the borders."""
    height, width = character.soft_mask.shape
    scale = placement[0, 0]
    inverse = cv2.invertAffineTransform(placement)
    cx, cy = inverse @ np.array([settings.width / 2, settings.height / 2, 1.0])
    cx, cy = float(np.clip(cx, 1, width - 1)), float(np.clip(cy, 1, height - 1))
    needed = max(
        settings.width / 2 / cx,
        settings.width / 2 / (width - cx),
        settings.height / 2 / cy,
        settings.height / 2 / (height - cy),
    )
    if scale >= needed:
        return placement
    return _similarity(needed, (cx, cy), (settings.width / 2, settings.height / 2))


@dataclass(frozen=True)
class PlacedSubject:
    """The subject placed in the frame: what every renderer starts from."""

    placement: np.ndarray  # 2×3 reference → frame
    subject: np.ndarray  # HxWx4 uint8: premultiplied RGB + alpha
    joints: np.ndarray  # (17, 2) rest joints, frame pixels
    pivot: np.ndarray  # (2,) bottom centre of the subject's box, frame pixels
    cut: tuple[str, ...] = ()  # image edges that cut the subject (see cut_edges)


def place_subject(character: Character, settings: RenderSettings) -> PlacedSubject:
    # In a cast slot the subject is whole and free: no edge of it stays on the frame's border.
    cut = cut_edges(character) if settings.slot is None else ()
    placement = _placement(character, settings, cut)
    size = (settings.width, settings.height)
    interpolation = cv2.INTER_AREA if placement[0, 0] < 1 else cv2.INTER_LINEAR
    alpha = cv2.warpAffine(character.soft_mask, placement, size, flags=interpolation)
    rgb = cv2.warpAffine(
        character.rgb, placement, size, flags=interpolation, borderMode=cv2.BORDER_REPLICATE
    )
    premultiplied = cv2.multiply(rgb, cv2.merge([alpha, alpha, alpha]), scale=1 / 255.0)
    joints = character.rest.joints @ placement[:, :2].T + placement[:, 2]
    x0, _, x1, y1 = character.bbox
    pivot = np.array([(x0 + x1) / 2.0, y1]) @ placement[:, :2].T + placement[:, 2]
    return PlacedSubject(placement, np.dstack([premultiplied, alpha]), joints, pivot, cut)


# The plate's hole reaches this far past the mask's soft edge (share of the image's longer
# side): the subject's colour bleeding through the soft edge must not be kept as background.
HOLE_MARGIN = 0.015
FILL_SIDE = 192  # the fill is computed at this size (longer side), then scaled up


def _push_pull(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the unknown pixels of ``image`` (float32 HxWx3) from the known ones: average down
    a pyramid counting only known pixels (push), then fill each level's gaps from the level
    below it (pull). Every pixel gets a weighted mean of its nearest known neighbourhood —
    smooth colours, never black, never streaks."""
    weights = [known.astype(np.float32)]
    sums = [image * weights[0][..., None]]
    while min(weights[-1].shape) > 1:
        weights.append(cv2.pyrDown(weights[-1]))
        sums.append(cv2.pyrDown(sums[-1]))
    colour = sums[-1] / np.maximum(weights[-1], 1e-6)[..., None]
    for level in range(len(weights) - 2, -1, -1):
        size = (weights[level].shape[1], weights[level].shape[0])
        coarse = cv2.pyrUp(colour, dstsize=size)
        weight = weights[level]
        own = sums[level] / np.maximum(weight, 1e-6)[..., None]
        trust = np.clip(weight * 4.0, 0.0, 1.0)[..., None]  # a quarter-known pixel is known
        colour = own * trust + coarse * (1.0 - trust)
    return colour


def _scene_background(character: Character) -> np.ndarray:
    """The reference with its subject removed and the hole filled from its surroundings.

    The hole is the mask dilated past its soft edge (the subject's colour bleeding through
    the soft edge must not stay as background); a push-pull pyramid fills it on a downscaled
    plate from the pixels around it, and a feathered seam joins fill and photo. (It was a
    normalised blur at one scale: where a hole was wider than the blur, ~20 % of it came out
    black, and the soft edge left a dark ghost of the outline.)
    """
    rgb = character.rgb
    height, width = rgb.shape[:2]
    margin = max(1, round(HOLE_MARGIN * max(height, width)))
    hole = cv2.dilate(
        (character.soft_mask > 8).astype(np.uint8),
        cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2),
    )
    if not hole.any():
        return rgb.copy()
    if hole.all():  # nothing around the subject to fill from: its mean colour
        return np.full_like(rgb, [int(v) for v in rgb.reshape(-1, 3).mean(axis=0)])
    factor = max(1.0, max(height, width) / FILL_SIDE)
    small_size = (max(1, round(width / factor)), max(1, round(height / factor)))
    small_rgb = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA).astype(np.float32)
    # A small pixel is known only if none of its full-size pixels is hole.
    small_hole = cv2.resize(hole.astype(np.float32), small_size, interpolation=cv2.INTER_AREA)
    filled = _push_pull(small_rgb, small_hole == 0)
    filled = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
    seam = cv2.GaussianBlur(hole.astype(np.float32), (0, 0), margin / 2 + 0.5)
    seam = np.maximum(seam, hole.astype(np.float32))[..., None]
    plate = filled * seam + rgb.astype(np.float32) * (1.0 - seam)
    return np.clip(plate + 0.5, 0, 255).astype(np.uint8)


def _cover(image: np.ndarray | None, width: int, height: int) -> np.ndarray:
    """An RGB image scaled to cover the frame and centre-cropped (no bars, no distortion)."""
    if image is None or image.ndim != 3 or image.shape[2] < 3:
        raise InvalidInputError("background 'image' needs an RGB background image.")
    image = np.ascontiguousarray(image[..., :3])
    scale = max(width / image.shape[1], height / image.shape[0])
    size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
    resized = cv2.resize(
        image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    x0, y0 = (size[0] - width) // 2, (size[1] - height) // 2
    return np.ascontiguousarray(resized[y0 : y0 + height, x0 : x0 + width])


def _background(
    character: Character, settings: RenderSettings, placement: np.ndarray
) -> np.ndarray:
    mode = settings.background
    if mode == "auto":
        mode = "scene" if character.mask_source != "alpha" else "solid"
    size = (settings.width, settings.height)
    if mode == "solid":
        colour = tuple(int(c) for c in settings.background_color)
        if len(colour) != 3 or not all(0 <= c <= 255 for c in colour):
            raise InvalidInputError(f"background_color must be 3 values 0–255; got {colour}.")
        return np.full((settings.height, settings.width, 3), colour, dtype=np.uint8)
    if mode == "image":
        return _cover(settings.background_image, settings.width, settings.height)
    if mode != "scene":
        raise InvalidInputError(
            f"Unknown background {settings.background!r}; use auto, scene, solid or image."
        )
    return cv2.warpAffine(
        _scene_background(character),
        _background_placement(character, settings, placement),
        size,
        flags=cv2.INTER_AREA if placement[0, 0] < 1 else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,  # sub-pixel rounding at the border only
    )


def root_transform(z: np.ndarray, unit: float) -> tuple[np.ndarray, np.ndarray]:
    """The root motion of ``z`` about the pivot: a 2×2 map (rotation, scale, horizontal
    squash) and a shift in frame pixels (``unit``: the subject's height in pixels)."""
    angle = float(z[ROOT_ROTATION])
    scale = float(np.exp(z[ROOT_LOG_SCALE]))
    squash = float(np.exp(z[ROOT_LOG_SQUASH_X]))
    shift = np.array([z[ROOT_TX], z[ROOT_TY]], dtype=np.float64) * unit
    cos, sin = np.cos(-angle), np.sin(-angle)
    return np.array([[cos, -sin], [sin, cos]]) @ np.diag([scale * squash, scale]), shift


def posed_joints(scene: WarpScene, z_t: np.ndarray) -> np.ndarray:
    """(17, 2) frame pixels where the joints of ``z_t`` put the skeleton, root motion
    included: the pose the generative modes draw as their control (either renderer's scene)."""
    z = restrict_to_kind(validate_z(z_t), scene.subject_kind)
    unit = scene.subject_height
    joints = scene.rest_joints + joint_offsets(z) * unit * scene.limb_gain
    forward, shift = root_transform(z, unit)
    return (joints - scene.pivot) @ forward.T + scene.pivot + shift


def bone_segments(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points (B, 2) of the skinning bones for a (17, 2) joint array."""
    j = {name: joints[index] for name, index in JOINT_INDEX.items()}
    neck = (j["left_shoulder"] + j["right_shoulder"]) / 2
    pelvis = (j["left_hip"] + j["right_hip"]) / 2
    head_top = j["nose"] + (j["nose"] - neck) * 0.6
    starts = [j[a] for a, _ in LIMB_BONES] + [pelvis, neck, j["right_shoulder"]]
    ends = [j[b] for _, b in LIMB_BONES] + [neck, head_top, j["left_shoulder"]]
    return np.array(starts), np.array(ends)


def _similarities(src_a, src_b, dst_a, dst_b) -> np.ndarray:
    """(B, 2, 3) similarities taking each segment src_a→src_b onto dst_a→dst_b."""
    src_vec, dst_vec = src_b - src_a, dst_b - dst_a
    src_len = np.maximum(np.linalg.norm(src_vec, axis=1), 1e-9)
    dst_len = np.linalg.norm(dst_vec, axis=1)
    angle = np.arctan2(dst_vec[:, 1], dst_vec[:, 0]) - np.arctan2(src_vec[:, 1], src_vec[:, 0])
    # Bones stretch by at most 25%: keeps limbs from turning to rubber under bad keypoints.
    scale = np.clip(dst_len / src_len, 0.8, 1.25)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    linear = np.stack([np.stack([cos, -sin], axis=1), np.stack([sin, cos], axis=1)], axis=1)
    offset = dst_a - np.einsum("bij,bj->bi", linear, src_a)
    return np.concatenate([linear, offset[:, :, None]], axis=2)


def _segment_distances_sq(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(G, B) squared distances from each point to each segment."""
    direction = ends - starts
    length_sq = np.maximum(np.sum(direction**2, axis=1), 1e-9)
    rel = points[:, None, :] - starts[None, :, :]
    along = np.clip(np.sum(rel * direction[None], axis=2) / length_sq, 0.0, 1.0)
    closest = starts[None] + along[..., None] * direction[None]
    return np.sum((points[:, None, :] - closest) ** 2, axis=2)


@dataclass
class WarpScene:
    width: int
    height: int
    subject: np.ndarray  # HxWx4 uint8: premultiplied RGB + alpha, placed in the frame
    background: np.ndarray  # HxWx3 uint8
    rest_joints: np.ndarray  # (17, 2) frame pixels
    subject_height: float  # frame pixels
    pivot: np.ndarray  # (2,) frame pixels: bottom centre of the subject's box
    grid_points: np.ndarray  # (G, 2) frame pixels where the warp is solved
    grid_shape: tuple[int, int]
    limb_gain: float = 1.0
    skin_sigma: float = SKIN_SIGMA
    subject_kind: str | None = None  # engine/kinds.py: joints the kind keeps still stay still


class WarpRenderer:
    """Renderer v1: skeleton-driven thin-plate-spline warp of the segmented subject."""

    name = "warp"

    def __init__(self, grid_step: int = 12) -> None:
        self.grid_step = grid_step

    def prepare(self, character: Character, settings: RenderSettings) -> WarpScene:
        placed = place_subject(character, settings)
        placement, subject, joints, pivot = (
            placed.placement,
            placed.subject,
            placed.joints,
            placed.pivot,
        )
        scale = placement[0, 0]

        # Solve the warp on a coarse grid laid out so cv2.resize interpolates it exactly.
        grid_w = max(2, settings.width // self.grid_step)
        grid_h = max(2, settings.height // self.grid_step)
        xs = (np.arange(grid_w) + 0.5) * settings.width / grid_w - 0.5
        ys = (np.arange(grid_h) + 0.5) * settings.height / grid_h - 0.5
        grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        return WarpScene(
            width=settings.width,
            height=settings.height,
            subject=subject,
            background=_background(character, settings, placement),
            rest_joints=joints,
            subject_height=float(character.rest.subject_height * scale),
            pivot=pivot,
            grid_points=grid,
            grid_shape=(grid_h, grid_w),
            limb_gain=character.limb_gain,
            skin_sigma=character.skin_sigma,
            subject_kind=character.subject_kind,
        )

    def backward_map(self, scene: WarpScene, z_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each output pixel, where to sample the placed subject: (map_x, map_y)."""
        z = restrict_to_kind(validate_z(z_t), scene.subject_kind)
        unit = scene.subject_height
        posed_joints = scene.rest_joints + joint_offsets(z) * unit * scene.limb_gain

        # Undo the root motion first: output pixel → pre-root pixel.
        forward, shift = root_transform(z, unit)
        relative = scene.grid_points - scene.pivot - shift
        pre_root = relative @ np.linalg.inv(forward).T + scene.pivot

        # Inverse skinning: each point follows the bones near it in the posed skeleton
        # back to where those bones are at rest.
        rest_a, rest_b = bone_segments(scene.rest_joints)
        posed_a, posed_b = bone_segments(posed_joints)
        to_rest = _similarities(posed_a, posed_b, rest_a, rest_b)
        distances_sq = _segment_distances_sq(pre_root, posed_a, posed_b) / unit**2
        logits = -distances_sq / (2 * scene.skin_sigma**2)
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        blended = np.einsum("gb,bij->gij", weights, to_rest)
        source = np.einsum("gij,gj->gi", blended[:, :, :2], pre_root) + blended[:, :, 2]
        grid_h, grid_w = scene.grid_shape
        source = source.reshape(grid_h, grid_w, 2).astype(np.float32)
        full = cv2.resize(source, (scene.width, scene.height), interpolation=cv2.INTER_LINEAR)
        return full[..., 0], full[..., 1]

    def render(self, scene: WarpScene, z_t: np.ndarray) -> np.ndarray:
        return self.render_layers(scene, z_t)[0]

    def render_layers(self, scene: WarpScene, z_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        map_x, map_y = self.backward_map(scene, z_t)
        subject = warp_subject(scene, map_x, map_y)
        return composite(scene, subject), subject[..., 3]


def warp_subject(scene: WarpScene, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    map_fixed, map_frac = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
    subject = cv2.remap(
        scene.subject,
        map_fixed,
        map_frac,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return subject


def composite(scene: WarpScene, subject: np.ndarray) -> np.ndarray:
    """Premultiplied 'over': subject + background × (1 − alpha), in uint8 with rounding."""
    alpha = subject[..., 3]
    covered = cv2.multiply(scene.background, cv2.merge([alpha, alpha, alpha]), scale=1 / 255.0)
    return cv2.add(subject[..., :3], cv2.subtract(scene.background, covered))


CAMERA_MOTIONS = ("none", "push-in", "pull-out", "pan-left", "pan-right", "drift")


def camera_matrix(kind: str, share: float, width: int, height: int) -> np.ndarray | None:
    """The 2×3 image transform of a virtual camera move at ``share`` (0..1) of the clip,
    or None for a still camera. Moves are gentle (≤ 12 % zoom, ≤ 8 % of the width pan) and
    ease in and out, so the subject stays in frame."""
    if kind not in CAMERA_MOTIONS:
        raise InvalidInputError(
            f"Unknown camera motion {kind!r}; use one of {', '.join(CAMERA_MOTIONS)}."
        )
    if kind == "none":
        return None
    eased = 0.5 - 0.5 * np.cos(np.pi * float(np.clip(share, 0.0, 1.0)))
    zoom, shift_x, shift_y = 1.0, 0.0, 0.0
    if kind == "push-in":
        zoom = 1.0 + 0.12 * eased
    elif kind == "pull-out":
        zoom = 1.12 - 0.12 * eased
    elif kind in ("pan-left", "pan-right"):
        zoom = 1.08  # a little headroom so the pan never shows the frame's edge
        shift_x = (0.08 if kind == "pan-left" else -0.08) * width * (eased - 0.5)
    else:  # drift: a slow figure-of-eight, as a hand-held camera
        zoom = 1.06
        angle = 2 * np.pi * share
        shift_x, shift_y = 0.02 * width * np.sin(angle), 0.015 * height * np.sin(2 * angle)
    cx, cy = width / 2.0, height / 2.0
    return np.array([[zoom, 0.0, cx - zoom * cx + shift_x], [0.0, zoom, cy - zoom * cy + shift_y]])


def apply_camera(frame: np.ndarray, matrix: np.ndarray | None) -> np.ndarray:
    if matrix is None:
        return frame
    height, width = frame.shape[:2]
    return cv2.warpAffine(
        frame, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
