"""Quality measures of rendered videos: identity, colour, temporal coherence, jitter.

All run on the CPU in milliseconds per frame, so every video can be checked:
- identity: cosine between the reference's and a frame's masked "cnn" embeddings;
- colour: Bhattacharyya distance between HSV histograms of the masked subject (0 = same);
- temporal coherence: mean absolute error (0–255) after warping frame t onto frame t+1 with
  OpenCV's DIS optical flow, on frames scaled to at most 256 px;
- jitter: mean magnitude of the second difference of the joint tracks, in subject heights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from char_pipeline.engine.controls import ROOT_TX, ROOT_TY, joint_offsets

FLOW_MAX_SIDE = 256
HIST_BINS = (8, 8, 8)

# Thresholds of the asset checks (docs/quality.md explains how they were chosen).
MIN_IDENTITY_COSINE = 0.6
MAX_COLOUR_DISTANCE = 0.4
MAX_WARP_ERROR = 12.0
MAX_JITTER = 0.03
# A step between frames (or a GIF's loop seam) more than MAX_POP_RATIO × the mean of the steps
# either side of it is a pop. Steps are mean |Δ| on frames at ≤ 256 px, 0–255.
MAX_POP_RATIO = 2.5
POP_FLOOR = 0.5


def colour_histogram(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    binary = (mask > 127).astype(np.uint8)
    histogram = cv2.calcHist([hsv], [0, 1, 2], binary, list(HIST_BINS), [0, 180, 0, 256, 0, 256])
    return cv2.normalize(histogram, histogram).flatten()


def colour_distance(reference: np.ndarray, frame: np.ndarray) -> float:
    """Bhattacharyya distance of two histograms from :func:`colour_histogram`."""
    return float(cv2.compareHist(reference, frame, cv2.HISTCMP_BHATTACHARYYA))


def _small_grey(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    scale = min(1.0, FLOW_MAX_SIDE / max(height, width))
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        grey = cv2.resize(
            grey,
            (max(1, int(width * scale)), max(1, int(height * scale))),
            interpolation=cv2.INTER_AREA,
        )
    return grey


@dataclass
class TemporalCoherence:
    """Streams consecutive frames; keeps the warp error of each pair."""

    errors: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)  # mean |frame t+1 − frame t|, 0–255
    _first: np.ndarray | None = None
    _previous: np.ndarray | None = None
    _flow: cv2.DISOpticalFlow = field(
        default_factory=lambda: cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    )

    def add(self, frame: np.ndarray) -> None:
        current = _small_grey(frame)
        if self._first is None:
            self._first = current
        if self._previous is not None:
            self.steps.append(
                float(np.abs(current.astype(np.int16) - self._previous.astype(np.int16)).mean())
            )
            # Backward flow: for each pixel of the current frame, where it was before.
            flow = self._flow.calc(current, self._previous, None)
            height, width = current.shape
            grid_x, grid_y = np.meshgrid(
                np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
            )
            warped = cv2.remap(
                self._previous,
                grid_x + flow[..., 0],
                grid_y + flow[..., 1],
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            self.errors.append(
                float(np.abs(warped.astype(np.int16) - current.astype(np.int16)).mean())
            )
        self._previous = current

    @property
    def mean(self) -> float:
        return float(np.mean(self.errors)) if self.errors else 0.0

    @property
    def p95(self) -> float:
        return float(np.percentile(self.errors, 95)) if self.errors else 0.0

    @property
    def seam(self) -> float:
        """Mean |first frame − last frame|: the step a looping GIF takes at its loop."""
        if self._first is None or self._previous is None:
            return 0.0
        return float(np.abs(self._first.astype(np.int16) - self._previous.astype(np.int16)).mean())

    def pop_ratio(self, *, loop: bool) -> float:
        """The largest step between frames over the mean of the steps either side of it (at
        least POP_FLOOR); with ``loop`` the seam from the last frame to the first is one more
        step, between the last and the first. A pop is a step its neighbours do not share;
        a fast phase of a motion (a jump's take-off, a nod after a pause) is shared by the
        frames around it, so it does not count (the median of all steps flagged those)."""
        steps = [*self.steps, self.seam] if loop else list(self.steps)
        if len(steps) < 2:
            return 0.0
        worst = 0.0
        for index, step in enumerate(steps):
            if loop:
                around = [steps[index - 1], steps[(index + 1) % len(steps)]]
            else:
                around = [steps[i] for i in (index - 1, index + 1) if 0 <= i < len(steps)]
            worst = max(worst, step / max(float(np.mean(around)), POP_FLOOR))
        return worst


def joint_jitter(z_sequence: np.ndarray) -> float:
    """Mean |second difference| of joint positions (offsets + root translation), subject heights."""
    z = np.asarray(z_sequence, dtype=np.float64)
    if len(z) < 3:
        return 0.0
    tracks = joint_offsets(z) + z[:, None, [ROOT_TX, ROOT_TY]]
    acceleration = tracks[2:] - 2 * tracks[1:-1] + tracks[:-2]
    return float(np.linalg.norm(acceleration, axis=-1).mean())


def silhouette_holes(alpha: np.ndarray) -> float:
    """Share of the silhouette's filled area that is see-through inside it (0 = no holes)."""
    solid = (alpha >= 0.5).astype(np.uint8)
    area = int(solid.sum())
    if area == 0:
        return 0.0
    padded = np.pad(1 - solid, 1, constant_values=1)
    outside = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, outside, (0, 0), 2)
    holes = int((padded[1:-1, 1:-1] == 1).sum())
    return holes / (area + holes)


# Picture checks: what a viewer sees before any identity or motion figure.
MIN_SILHOUETTE_IOU = 0.98  # rest-pose frame vs the placed mask (notches, lost strokes)
MAX_DARK_FILL_SHARE = 0.03  # excess near-black share of the plate over the photo's background
NEAR_BLACK = 16  # luminance (0–255)
MIN_MIRROR_MISMATCH = 0.6  # below: a strip of background is the mirror image of its neighbour
TEAR_STRETCH = 2.0  # a triangle's longest axis posed / at rest beyond which it smears or tears
MAX_TORN_SHARE = 0.02  # share of the subject's area in such triangles, in any frame
MIN_FRAME_COVERAGE_SHARE = 0.2  # of the rest frame's subject area (a blank or vanished frame)


def silhouette_iou(alpha: np.ndarray, mask: np.ndarray) -> float:
    """Intersection over union of a frame's subject (alpha) and the mask it should cover."""
    a, b = alpha > 127, mask > 127
    union = int((a | b).sum())
    return float((a & b).sum() / union) if union else 1.0


def dark_fill_share(plate: np.ndarray, photo: np.ndarray, mask: np.ndarray) -> float:
    """How much more of the background plate is near-black than of the photo's own
    background: black holes and dark ghosts that a fill made up (the old fill left 3.5–9.5 %
    of the demo plates black). The photo's background is taken well away from the subject
    (its soft edge bleeds the subject's colours); a photo with real black in its background
    has it in both and does not count."""
    side = max(mask.shape[:2])
    band = 2 * max(2, round(0.04 * side)) + 1
    away = cv2.dilate((mask > 8).astype(np.uint8), np.ones((band, band), np.uint8)) == 0
    photo_luminance = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    plate_luminance = cv2.cvtColor(plate, cv2.COLOR_RGB2GRAY)
    photo_share = float((photo_luminance[away] < NEAR_BLACK).mean()) if away.any() else 0.0
    return max(0.0, float((plate_luminance < NEAR_BLACK).mean()) - photo_share)


def mirror_mismatch(plate: np.ndarray, width: int = 12, min_texture: float = 1.0) -> float:
    """The smallest mismatch between a strip of the plate and the mirror image of the strip
    next to it, over every vertical and horizontal axis, relative to the strips' texture
    across the axis.

    Mirror padding (BORDER_REFLECT) makes a strip the exact mirror of its neighbour (~0);
    photographed backgrounds do not repeat themselves mirrored. Texture is measured across
    the axis (mean step between neighbouring columns): a flag's stripes or a sky's gradient
    run along it, are mirror images of themselves everywhere, and cannot be judged; nor can
    a plain wall. 1.0 when nothing can be judged.
    """
    grey = cv2.cvtColor(plate, cv2.COLOR_RGB2GRAY).astype(np.float32)
    best = 1.0
    for image in (grey, grey.T):
        steps = np.abs(np.diff(image, axis=1))  # steps[:, k] between columns k and k + 1
        for axis in range(width, image.shape[1] - width + 1):
            texture = float(steps[:, axis - width : axis + width - 1].mean())
            if texture < min_texture:
                continue
            left = image[:, axis - width : axis][:, ::-1]
            right = image[:, axis : axis + width]
            best = min(best, float(np.abs(left - right).mean()) / texture)
    return best


def triangle_stretch(rest: np.ndarray, posed: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Per triangle, the largest singular value of the rest → posed affine map: 1 = rigid,
    2 = one direction twice as long (a smear), larger = a tear."""
    a, b, c = (rest[triangles[:, i]] for i in range(3))
    pa, pb, pc = (posed[triangles[:, i]] for i in range(3))
    rest_edges = np.stack([b - a, c - a], axis=2)  # (F, 2, 2): columns are edges
    posed_edges = np.stack([pb - pa, pc - pa], axis=2)
    determinant = np.linalg.det(rest_edges)
    usable = np.abs(determinant) > 1e-9
    rest_edges[~usable] = np.eye(2)
    linear = posed_edges @ np.linalg.inv(rest_edges)
    # The larger singular value of each 2×2 map in closed form (an SVD per triangle cost
    # ~1 ms a frame): σ₁² = (‖A‖² + √(‖A‖⁴ − 4·det(A)²)) / 2.
    a, b, c, d = linear[:, 0, 0], linear[:, 0, 1], linear[:, 1, 0], linear[:, 1, 1]
    norm = a * a + b * b + c * c + d * d
    det = a * d - b * c
    with np.errstate(invalid="ignore"):
        stretch = np.sqrt((norm + np.sqrt(np.maximum(norm * norm - 4 * det * det, 0.0))) / 2)
    stretch = np.where(np.isfinite(stretch), stretch, np.inf)  # a vertex lost to NaN tears
    return np.where(usable, stretch, 1.0)


def torn_area_share(rest: np.ndarray, posed: np.ndarray, triangles: np.ndarray) -> float:
    """Share of the subject's rest area in triangles stretched beyond TEAR_STRETCH."""
    from char_pipeline.engine.mesh import triangle_areas

    areas = np.abs(triangle_areas(rest, triangles))
    return torn_share_of(triangle_stretch(rest, posed, triangles), areas)


def torn_share_of(stretch: np.ndarray, areas: np.ndarray) -> float:
    """The torn share from each triangle's stretch and rest area (the renderer's damping and
    the check share this rule)."""
    return float(areas[stretch > TEAR_STRETCH].sum() / max(float(areas.sum()), 1e-9))


def scene_picture(
    rest_alpha: np.ndarray, placed_alpha: np.ndarray, plate: np.ndarray, photo: np.ndarray, mask
) -> dict[str, float]:
    """The picture figures of a prepared scene: the still character against its mask, and the
    background plate (made-up black, mirror images)."""
    return {
        "silhouette_iou": round(silhouette_iou(rest_alpha, placed_alpha), 4),
        "dark_fill_share": round(dark_fill_share(plate, photo, mask), 5),
        "mirror_mismatch": round(mirror_mismatch(plate), 3),
        "rest_area": int((rest_alpha > 127).sum()),
    }


@dataclass
class PictureTrack:
    """Picture figures of one sequence, streamed frame by frame: the smallest share of the
    rest pose's subject area that any frame shows, and the largest torn area share."""

    rest_area: int
    min_coverage_share: float = 1.0
    max_torn_share: float | None = None
    frames: int = 0

    def add(self, alpha: np.ndarray, torn_share: float | None) -> None:
        self.frames += 1
        covered = float((alpha > 127).sum()) / max(1, self.rest_area)
        self.min_coverage_share = min(self.min_coverage_share, covered)
        if torn_share is not None:
            self.max_torn_share = max(self.max_torn_share or 0.0, torn_share)

    def to_json(self) -> dict:
        return {
            "min_coverage_share": round(self.min_coverage_share, 4),
            "max_torn_share": None
            if self.max_torn_share is None
            else round(self.max_torn_share, 5),
        }
