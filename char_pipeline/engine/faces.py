"""Is the face still there? MediaPipe's face detector (full range; its model ships in the
wheel) on the reference and on sampled frames of a video.

A moving limb that covers the face (the astronaut's "wave hello" lifted her helmet over it for
35 frames while identity still scored 0.76) loses the detection: the check sees what a viewer
sees. OpenCV's frontal-face cascade was tried first and missed a nodding head in 2 of 8 frames.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass

import numpy as np

MIN_FACE_SCORE = 0.5
_LOCK = threading.Lock()  # one graph, not re-entrant


def mediapipe_solutions():
    """mediapipe's legacy ``solutions`` package, or None when mediapipe is absent."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # keep TFLite's start-up chatter quiet
    try:
        from google.protobuf import message_factory

        # mediapipe 0.10.21's bindings call MessageFactory.GetPrototype, which protobuf 5+
        # (Dagster's requirement) replaced by GetMessageClass: give them the old name.
        if not hasattr(message_factory.MessageFactory, "GetPrototype"):
            message_factory.MessageFactory.GetPrototype = lambda self, descriptor: (
                message_factory.GetMessageClass(descriptor)
            )
        from mediapipe.python import solutions
    except Exception:  # not installed, or its native parts do not load here
        return None
    return solutions


@functools.cache
def _detector():
    solutions = mediapipe_solutions()
    if solutions is None:
        return None
    return solutions.face_detection.FaceDetection(
        model_selection=1, min_detection_confidence=MIN_FACE_SCORE
    )


def _detections(rgb: np.ndarray) -> list | None:
    """The detector's faces in the picture, or None without the detector."""
    detector = _detector()
    if detector is None:
        return None
    with _LOCK:
        result = detector.process(np.ascontiguousarray(rgb[..., :3]))
    return list(result.detections or ())


def face_score(rgb: np.ndarray) -> float | None:
    """The best face detection score in the picture (0 when none), or None without the
    detector (mediapipe not installed)."""
    detections = _detections(rgb)
    if detections is None:
        return None
    return max((float(d.score[0]) for d in detections), default=0.0)


def face_box(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """The best-scoring face's box (x, y, w, h; pixels) at MIN_FACE_SCORE or above, or None
    (no face, or no detector): the region a moving limb must not cover (engine/deform.py)."""
    detections = _detections(rgb)
    if not detections:
        return None
    best = max(detections, key=lambda d: float(d.score[0]))
    box = best.location_data.relative_bounding_box
    height, width = rgb.shape[:2]
    return (
        round(box.xmin * width),
        round(box.ymin * height),
        round(box.width * width),
        round(box.height * height),
    )


def subject_face_box(
    rgb: np.ndarray, soft_mask: np.ndarray, subject_kind: str | None
) -> tuple[int, int, int, int] | None:
    """The face a moving limb must not cover: found once when the reference is rigged (the
    detector's first call costs ~0.5 s, so not per render), for kinds that have one, and only
    when its centre lies on the subject (a face beside the subject is not its face)."""
    from char_pipeline.engine.kinds import FACE_HELD_KINDS

    if (subject_kind or "figure") not in FACE_HELD_KINDS:
        return None
    box = face_box(rgb)
    if box is None:
        return None
    x, y, w, h = box
    cy = int(np.clip(y + h // 2, 0, soft_mask.shape[0] - 1))
    cx = int(np.clip(x + w // 2, 0, soft_mask.shape[1] - 1))
    threshold = 128 if soft_mask.dtype == np.uint8 else 0.5
    return box if soft_mask[cy, cx] >= threshold else None


@dataclass(frozen=True)
class FaceVisibility:
    """Whether the reference's face is found in each sampled frame."""

    reference_score: float | None
    frame_scores: tuple[float, ...]

    @property
    def applies(self) -> bool:
        return bool(self.reference_score) and self.reference_score >= MIN_FACE_SCORE

    @property
    def frames_without_face(self) -> int:
        return sum(score < MIN_FACE_SCORE for score in self.frame_scores)

    def to_json(self) -> dict:
        return {
            "reference_score": None
            if self.reference_score is None
            else round(self.reference_score, 3),
            "frame_scores": [round(score, 3) for score in self.frame_scores],
            "frames_without_face": self.frames_without_face if self.applies else 0,
        }


def face_visibility(reference_rgb: np.ndarray, frames: list[np.ndarray]) -> FaceVisibility:
    reference = face_score(reference_rgb)
    if not reference or reference < MIN_FACE_SCORE:
        return FaceVisibility(reference, ())
    return FaceVisibility(reference, tuple(face_score(frame) or 0.0 for frame in frames))
