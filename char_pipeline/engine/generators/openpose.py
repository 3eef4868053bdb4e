"""Pose maps in the OpenPose convention, drawn from a frame's posed joints.

ControlNet OpenPose (lllyasviel/control_v11p_sd15_openpose) and Wan VACE's pose control were
trained on maps drawn by OpenPose's renderer: 18 body keypoints (COCO-17 plus a neck at the
shoulders' midpoint), each limb a filled ellipse in its own colour at 60 % brightness, each
joint a dot in its colour, on black. The control must look like that data, so this draws
the same layout from the engine's COCO-17 joints (controls.COCO_JOINTS). Written here rather
than taken from controlnet_aux, whose drawing code comes with its detector models and
downloads; the convention itself is a handful of constants.
"""

from __future__ import annotations

import cv2
import numpy as np

from char_pipeline.engine.controls import JOINT_INDEX

# OpenPose body-18 order, as COCO-17 joint names ("neck" is derived).
BODY_18 = (
    "nose",
    "neck",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_eye",
    "left_eye",
    "right_ear",
    "left_ear",
)
# Limbs as pairs of BODY_18 indices, in OpenPose's drawing order (each has its colour).
LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
COLOURS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip
# Stick half-width and dot radius at a 512-pixel frame; scaled with the frame.
STICK_WIDTH, DOT_RADIUS = 4, 4


def body_18(joints: np.ndarray) -> np.ndarray:
    """(18, 2) OpenPose points from (17, 2) COCO joints in frame pixels."""
    coco = {name: joints[index] for name, index in JOINT_INDEX.items()}
    coco["neck"] = (coco["left_shoulder"] + coco["right_shoulder"]) / 2
    return np.array([coco[name] for name in BODY_18], dtype=np.float64)


def draw_pose(
    joints: np.ndarray, width: int, height: int, visible: np.ndarray | None = None
) -> np.ndarray:
    """An RGB pose map (HxWx3 uint8) of one frame's joints; joints outside the frame, or
    not ``visible`` (an (18,) mask in BODY_18 order), and the limbs touching them are left out."""
    points = body_18(np.asarray(joints, dtype=np.float64))
    inside = (
        (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
    )
    shown = inside if visible is None else inside & np.asarray(visible, dtype=bool)
    scale = max(width, height) / 512.0
    stick, radius = max(1, round(STICK_WIDTH * scale)), max(1, round(DOT_RADIUS * scale))
    canvas = np.zeros((height, width, 3), np.uint8)
    for (a, b), colour in zip(LIMBS, COLOURS, strict=False):
        if not (shown[a] and shown[b]):
            continue
        (xa, ya), (xb, yb) = points[a], points[b]
        length = float(np.hypot(xb - xa, yb - ya))
        angle = float(np.degrees(np.arctan2(yb - ya, xb - xa)))
        polygon = cv2.ellipse2Poly(
            (round((xa + xb) / 2), round((ya + yb) / 2)),
            (max(1, round(length / 2)), stick),
            round(angle),
            0,
            360,
            1,
        )
        limb = np.zeros_like(canvas)
        cv2.fillConvexPoly(limb, polygon, colour)
        canvas = np.maximum(canvas, (limb * 0.6).astype(np.uint8))
    for index, colour in enumerate(COLOURS):
        if shown[index]:
            x, y = points[index]
            cv2.circle(canvas, (round(x), round(y)), radius, colour, thickness=-1)
    return canvas
