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
    _previous: np.ndarray | None = None
    _flow: cv2.DISOpticalFlow = field(
        default_factory=lambda: cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
    )

    def add(self, frame: np.ndarray) -> None:
        current = _small_grey(frame)
        if self._previous is not None:
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
