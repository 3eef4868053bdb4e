"""The rig: where the subject's joints are at rest, and the mesh that moves with them.

In order of preference:

- ``pose-model``: MediaPipe's pose landmark model (its tflite weights ship inside the
  ``mediapipe`` wheel) finds a person on the subject; its 33 landmarks map to COCO-17.
- ``face``: a frontal face (OpenCV's Haar cascade) on the subject anchors a human skeleton
  with standard proportions (portraits where the body model finds no pose).
- ``skeleton-graph``: anything else. The mask's medial axis (skeleton graph: end points,
  branch points, a root) gives the shape's own bones; the canonical joint chain is laid
  over the subject's box and every joint is pulled onto the nearest medial-axis point, so
  bones run inside the shape — a generic chain rig for animals, mascots and products.
- ``four-legs``: a whole animal on four legs seen from the side (engine/quadruped.py): front
  legs as arms, hind legs as legs, the head joints on its head end.
- ``client``: keypoints the client supplied replace detection.

Everything here works offline; a missing MediaPipe install only skips the pose model.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from char_pipeline.engine.controls import (
    COCO_JOINTS,
    RestPose,
    face_rest_pose,
    template_rest_pose,
)
from char_pipeline.engine.errors import InvalidInputError
from char_pipeline.engine.faces import mediapipe_solutions, subject_face_box
from char_pipeline.engine.kinds import SUBJECT_KINDS, classify_subject
from char_pipeline.engine.limbs import choose_free_arm
from char_pipeline.engine.mesh import Mesh, build_mesh
from char_pipeline.engine.quadruped import find_four_legs, four_legged_rest_pose

# MediaPipe's 33 pose landmarks → COCO-17 (nose, eyes, ears, shoulders, elbows, wrists,
# hips, knees, ankles).
MEDIAPIPE_TO_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
MIN_VISIBILITY = 0.5


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


_POSE_LOCK = threading.Lock()


@functools.cache
def _pose_model():
    """MediaPipe's pose landmarker (static images), or None when mediapipe is absent."""
    solutions = mediapipe_solutions()
    if solutions is None:
        return None
    return solutions.pose.Pose(
        static_image_mode=True, model_complexity=1, enable_segmentation=False
    )


def detect_pose(rgb: np.ndarray, binary_mask: np.ndarray) -> np.ndarray | None:
    """COCO-17 joints (pixels) of a person standing on the subject, or None.

    Accepted when the head and both shoulders are confidently visible and lie on the mask;
    joints the model places off-picture (legs of a portrait) keep its estimate.
    """
    model = _pose_model()
    if model is None:
        return None
    with _POSE_LOCK:  # one graph, not re-entrant
        result = model.process(np.ascontiguousarray(rgb))
    if result.pose_landmarks is None:
        return None
    height, width = binary_mask.shape
    marks = result.pose_landmarks.landmark
    joints = np.array([[marks[i].x * width, marks[i].y * height] for i in MEDIAPIPE_TO_COCO])
    anchors = [0, 5, 6]  # nose, shoulders
    for index in anchors:
        x, y = joints[index]
        visible = marks[MEDIAPIPE_TO_COCO[index]].visibility >= MIN_VISIBILITY
        inside = 0 <= x < width and 0 <= y < height
        if not (visible and inside and binary_mask[int(y), int(x)]):
            return None
    return joints


def medial_skeleton(binary_mask: np.ndarray) -> dict[str, Any]:
    """The mask's skeleton graph: medial-axis points, end points, branch points, a root."""
    from skimage.morphology import skeletonize

    height, width = binary_mask.shape
    factor = max(1.0, max(height, width) / 256)  # the graph needs no more detail than this
    small = cv2.resize(
        binary_mask.astype(np.uint8),
        (max(1, round(width / factor)), max(1, round(height / factor))),
        interpolation=cv2.INTER_AREA,
    )
    # Close small gaps and notches first so the medial axis has few spurious twigs.
    small = cv2.morphologyEx(small, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    skeleton = skeletonize(small > 0)
    neighbours = cv2.filter2D(skeleton.astype(np.uint8), -1, np.ones((3, 3)), borderType=0)
    neighbours = neighbours - skeleton
    ys, xs = np.nonzero(skeleton)
    points = np.stack([xs, ys], 1).astype(np.float64) * factor
    degree = neighbours[ys, xs]
    distance = cv2.distanceTransform(small, cv2.DIST_L2, 5)
    if len(points):
        ry, rx = np.unravel_index(np.argmax(np.where(skeleton, distance, -1)), distance.shape)
        root = [float(rx * factor), float(ry * factor)]
    else:
        root = None
    return {
        "points": points,
        "end_points": points[degree == 1],
        "branch_points": points[degree >= 3],
        "root": root,
    }


def skeleton_rest_pose(
    binary_mask: np.ndarray, bbox: tuple[int, int, int, int], graph: dict[str, Any]
) -> RestPose:
    """The canonical chain laid over the box, each joint moved onto the medial axis."""
    size = (binary_mask.shape[1], binary_mask.shape[0])
    rest = template_rest_pose(bbox, size)
    points = graph["points"]
    if len(points) < 3:
        return rest
    joints = rest.joints.copy()
    nearest = np.linalg.norm(joints[:, None, :] - points[None, :, :], axis=2).argmin(axis=1)
    # Half way to the axis: bones move inside the shape but keep their chain's proportions.
    joints = 0.5 * joints + 0.5 * points[nearest]
    return RestPose(joints=joints, subject_height=rest.subject_height, image_size=size)


@dataclass
class Rig:
    """A reference's rig: rest pose, how it was found, the mesh, the skeleton graph."""

    rest: RestPose
    kind: str
    mesh: Mesh
    graph: dict[str, Any] = field(default_factory=dict)
    subject_kind: str = "figure"  # engine/kinds.py: person, portrait, animal, object, figure
    kind_reason: str = ""
    # The arm one-arm motions (wave) lift: the thin one free of the torso (engine/limbs.py).
    free_arm: str = "left"
    free_arm_reason: str = ""
    arm_figures: dict[str, Any] = field(default_factory=dict)
    # The detected face on the subject, which no moving limb may cover (engine/faces.py).
    face_box: tuple[int, int, int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject_kind": self.subject_kind,
            "kind_reason": self.kind_reason,
            "free_arm": self.free_arm,
            "free_arm_reason": self.free_arm_reason,
            "arm_figures": self.arm_figures,
            "face_box": list(self.face_box) if self.face_box is not None else None,
            "rest_pose": self.rest.to_json(),
            "mesh": self.mesh.to_json(),
            "skeleton_graph": {
                "end_points": np.round(self.graph.get("end_points", np.empty((0, 2))), 1).tolist(),
                "branch_points": np.round(
                    self.graph.get("branch_points", np.empty((0, 2))), 1
                ).tolist(),
                "root": self.graph.get("root"),
            },
            **({"four_legs": self.graph} if self.kind == "four-legs" else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Rig:
        return cls(
            rest=RestPose.from_json(data["rest_pose"]),
            kind=data["kind"],
            mesh=Mesh.from_json(data["mesh"]),
            graph=data["four_legs"]
            if "four_legs" in data
            else {
                k: np.asarray(v) for k, v in data.get("skeleton_graph", {}).items() if k != "root"
            },
            subject_kind=data.get("subject_kind", "figure"),
            kind_reason=data.get("kind_reason", ""),
            free_arm=data.get("free_arm", "left"),  # rigs stored before limbs.py: as before
            free_arm_reason=data.get("free_arm_reason", ""),
            arm_figures=data.get("arm_figures", {}),
            face_box=tuple(data["face_box"]) if data.get("face_box") is not None else None,
        )


def client_rest_pose(
    keypoints: list[dict[str, Any]], bbox: tuple[int, int, int, int], image_size: tuple[int, int]
) -> RestPose:
    """Rest joints from client keypoints (x, y normalised 0..1, by COCO name or index).

    The keypoints are checked exactly like a pose control's (typed KeypointError); joints
    not given come from the canonical chain over the subject's box.
    """
    from char_pipeline.engine.controls import encode_pose, keypoints_from_json

    template = template_rest_pose(bbox, image_size)
    parsed = keypoints_from_json(keypoints)
    z = encode_pose(parsed, template)  # validates: count, NaN, range, duplicates, names
    from char_pipeline.engine.controls import joint_offsets

    joints = template.joints + joint_offsets(z) * template.subject_height
    span = joints[:, 1].max() - joints[:, 1].min()
    return RestPose(joints, max(float(span) * 1.1, template.subject_height * 0.5), image_size)


def find_skeleton(
    rgb: np.ndarray,
    binary_mask: np.ndarray,
    bbox: tuple[int, int, int, int],
    keypoints: list[dict[str, Any]] | None = None,
) -> tuple[RestPose, str, dict[str, Any]]:
    """Rest pose, how it was found, and the skeleton graph (for medial-axis rigs)."""
    size = (rgb.shape[1], rgb.shape[0])
    if keypoints:
        return client_rest_pose(keypoints, bbox, size), "client", {}
    joints = detect_pose(rgb, binary_mask)
    if joints is not None:
        span = joints[:, 1].max() - joints[:, 1].min()
        height = max(float(span) * 1.12, float(bbox[3] - bbox[1]))
        return RestPose(joints, height, size), "pose-model", {}
    face = detect_face(rgb, binary_mask)
    if face is not None:
        return face_rest_pose(face, bbox, size), "face", {}
    legs = find_four_legs(binary_mask, bbox)
    if legs is not None:
        return four_legged_rest_pose(binary_mask, bbox, legs), "four-legs", legs.to_json()
    graph = medial_skeleton(binary_mask)
    return skeleton_rest_pose(binary_mask, bbox, graph), "skeleton-graph", graph


def build_rig(
    rgb: np.ndarray,
    soft_mask: np.ndarray,
    binary_mask: np.ndarray,
    bbox: tuple[int, int, int, int],
    keypoints: list[dict[str, Any]] | None = None,
    *,
    mask_source: str = "u2netp",
    subject_kind: str | None = None,
) -> Rig:
    """The subject's rig: client keypoints, else a person's pose, a face, or the medial axis;
    and the kind of subject (engine/kinds.py), unless the client names it."""
    mesh = build_mesh(soft_mask)
    rest, kind, graph = find_skeleton(rgb, binary_mask, bbox, keypoints)
    if subject_kind is not None:
        if subject_kind not in SUBJECT_KINDS:
            raise InvalidInputError(
                f"Unknown subject kind {subject_kind!r}; use one of {', '.join(SUBJECT_KINDS)}.",
                subject_kind=subject_kind,
            )
        chosen, reason = subject_kind, "named by the client"
    else:
        hips = rest.joints[[COCO_JOINTS.index("left_hip"), COCO_JOINTS.index("right_hip")]]
        chosen, reason = classify_subject(rgb, binary_mask, kind, mask_source, hips)
    free_arm, arm_reason, arm_figures = choose_free_arm(
        rest.joints, rest.subject_height, binary_mask, chosen
    )
    face = subject_face_box(rgb, soft_mask, chosen)
    return Rig(rest, kind, mesh, graph, chosen, reason, free_arm, arm_reason, arm_figures, face)


def estimate_rest_pose(
    rgb: np.ndarray, binary_mask: np.ndarray, bbox: tuple[int, int, int, int]
) -> tuple[RestPose, str]:
    """The subject's rest pose and how it was found (see build_rig), without the mesh."""
    rest, kind, _ = find_skeleton(rgb, binary_mask, bbox)
    return rest, kind


__all__ = ["COCO_JOINTS", "Rig", "build_rig", "estimate_rest_pose", "find_skeleton"]
