"""The predictions door's safety checker: NudeNet's ONNX body-part detector (320n, inside the
``nudenet`` wheel, run with onnxruntime; an optional extra, docs/models.md).

An output is flagged when a detection of a flagged class scores at least the threshold; a
flagged output is blurred beyond recognition before it is stored (documented in docs/api.md),
and ``has_nsfw_contents`` says which.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from char_pipeline.engine.errors import ModelNotInstalledError

# Exposed body parts (NudeNet's labels); covered parts and faces are not flagged.
FLAGGED_CLASSES = (
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "BUTTOCKS_EXPOSED",
    "ANUS_EXPOSED",
)
DEFAULT_THRESHOLD = 0.5
_LOCK = threading.Lock()


@functools.cache
def _detector():
    try:
        from nudenet import NudeDetector
    except ImportError as exc:
        raise ModelNotInstalledError(
            "The safety checker needs NudeNet, an optional extra: pip install 'char-pipeline"
            "[safety]' (its licence files are AGPL-3.0; docs/models.md), or send "
            "enable_safety_checker: false.",
            model="nudenet",
        ) from exc
    return NudeDetector()


@dataclass(frozen=True)
class SafetyResult:
    flagged: bool
    detections: tuple[tuple[str, float], ...]  # (class, score) of every detection

    def to_json(self) -> dict:
        return {
            "flagged": self.flagged,
            "detections": [{"class": c, "score": round(s, 3)} for c, s in self.detections],
        }


def check_image(
    rgb: np.ndarray,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    classes: tuple[str, ...] = FLAGGED_CLASSES,
) -> SafetyResult:
    detector = _detector()
    with _LOCK:  # one onnxruntime session shared by the API's threads
        found = detector.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    detections = tuple((d["class"], float(d["score"])) for d in found)
    flagged = any(name in classes and score >= threshold for name, score in detections)
    return SafetyResult(flagged, detections)


def withheld(rgb: np.ndarray) -> np.ndarray:
    """A flagged image as it is delivered: blurred to shapes and colours only."""
    height, width = rgb.shape[:2]
    small = cv2.resize(
        rgb, (max(1, width // 32), max(1, height // 32)), interpolation=cv2.INTER_AREA
    )
    return cv2.GaussianBlur(cv2.resize(small, (width, height)), (0, 0), max(width, height) / 64)
