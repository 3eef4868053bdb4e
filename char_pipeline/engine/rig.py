"""Rest-pose estimation for renderer v1: a face-anchored body for people, else a template.

A frontal face (OpenCV's Haar cascade, shipped with opencv) inside the subject's upper part
anchors a human skeleton with standard proportions; any other subject gets the canonical
skeleton stretched over its bounding box.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from char_pipeline.engine.controls import RestPose, face_rest_pose, template_rest_pose


@functools.cache
def _face_detector() -> cv2.CascadeClassifier:
    return cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")


def detect_face(rgb: np.ndarray, binary_mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """The largest frontal face whose centre lies on the subject, or None."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    min_side = max(24, int(0.05 * min(grey.shape)))
    faces = _face_detector().detectMultiScale(
        grey, scaleFactor=1.1, minNeighbors=6, minSize=(min_side, min_side)
    )
    best = None
    for x, y, w, h in faces:
        cx, cy = int(x + w / 2), int(y + h / 2)
        if binary_mask[cy, cx] and (best is None or w * h > best[2] * best[3]):
            best = (int(x), int(y), int(w), int(h))
    return best


def estimate_rest_pose(
    rgb: np.ndarray, binary_mask: np.ndarray, bbox: tuple[int, int, int, int]
) -> tuple[RestPose, str]:
    """The subject's rest pose and how it was found ('face' or 'template')."""
    size = (rgb.shape[1], rgb.shape[0])
    face = detect_face(rgb, binary_mask)
    if face is not None:
        return face_rest_pose(face, bbox, size), "face"
    return template_rest_pose(bbox, size), "template"
