"""Which arm of a person is free to move, and one-arm motions played on it.

"wave" lifted the canonical left arm whatever the picture showed: a person holding a helmet
in the left hand lifted the helmet over the face. A raised arm is the one that is thin and
separate from the torso, not the one holding something. At rigging time each arm of the rest
pose is measured (shoulder → elbow → wrist, pixels): the share of its forearm off the torso
(the shoulders-and-hips quadrilateral, slightly dilated), whether the wrist lies over the
torso (a hand holding something in front), and how thick the mask is along the forearm and
hand (an arm carrying an object, or pressed against the body, is wide there). The freer arm
is stored on the rig with the figures; a one-arm motion for a rig whose free arm is the
right one is mirrored onto it. Neither arm free, or both as free: the left, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from char_pipeline.engine.controls import (
    JOINT_DEPTHS,
    JOINT_INDEX,
    joint_offsets,
    set_joint_offsets,
)

ARM_SIDES = ("left", "right")
# Kinds that play one-arm motions (engine/kinds.py: wave → nod or jump for the others).
ARM_KINDS = ("person", "figure")
ARM_JOINTS = ("shoulder", "elbow", "wrist")
FOREARM_SAMPLES = 11
# The hand reaches about this far past the wrist, in forearm lengths: what it holds is there.
HAND_REACH = 0.4
# The torso polygon grows by this share of the subject's height: a forearm resting along the
# side touches it without being "on" it.
TORSO_MARGIN = 0.02
# Score: share of the forearm off the torso, less WRIST_OVER_TORSO_PENALTY for a hand over
# the torso (holding something in front) and up to 1 for the mask's median half-width along
# forearm and hand (subject heights): nothing up to THIN_ARM (an arm's own), 1 at twice it.
WRIST_OVER_TORSO_PENALTY = 0.5
THIN_ARM = 0.04
# Arms whose scores differ by less than TIE are as free; an arm scoring below FREE is not free.
TIE = 0.05
FREE = 0.3


@dataclass(frozen=True)
class ArmFreedom:
    """How free one arm of the rest pose is (see the module's docstring)."""

    side: str
    off_torso: float  # share of the forearm's samples off the dilated torso
    wrist_over_torso: bool
    thickness: float  # the mask's median half-width along forearm and hand, subject heights
    score: float

    def to_json(self) -> dict[str, Any]:
        return {
            "off_torso": round(self.off_torso, 3),
            "wrist_over_torso": self.wrist_over_torso,
            "thickness": round(self.thickness, 4),
            "score": round(self.score, 3),
        }


def _torso(joints: np.ndarray) -> np.ndarray:
    names = ("left_shoulder", "right_shoulder", "right_hip", "left_hip")
    return joints[[JOINT_INDEX[n] for n in names]].astype(np.float32).reshape(-1, 1, 2)


def arm_freedom(
    joints: np.ndarray, subject_height: float, binary_mask: np.ndarray | None, side: str
) -> ArmFreedom:
    """The figures of one arm of the rest pose (``joints`` in pixels, COCO-17)."""
    _, elbow, wrist = (joints[JOINT_INDEX[f"{side}_{name}"]] for name in ARM_JOINTS)
    torso = _torso(joints)
    margin = TORSO_MARGIN * subject_height
    samples = elbow[None] + np.linspace(0.0, 1.0, FOREARM_SAMPLES)[:, None] * (wrist - elbow)
    # Signed distance to the torso's outline: positive inside, negative outside.
    inside = [
        cv2.pointPolygonTest(torso, (float(x), float(y)), True) >= -margin for x, y in samples
    ]
    off_torso = 1.0 - float(np.mean(inside))
    wrist_over = bool(inside[-1])
    thickness = 0.0
    if binary_mask is not None and binary_mask.any():
        # Off the picture the mask is taken to go on (a subject cut by the frame).
        distance = cv2.distanceTransform(binary_mask.astype(np.uint8), cv2.DIST_L2, 5)
        height, width = distance.shape
        reach = elbow[None] + np.linspace(0.0, 1.0 + HAND_REACH, FOREARM_SAMPLES)[:, None] * (
            wrist - elbow
        )
        xs = np.clip(np.round(reach[:, 0]), 0, width - 1).astype(int)
        ys = np.clip(np.round(reach[:, 1]), 0, height - 1).astype(int)
        thickness = float(np.median(distance[ys, xs])) / max(subject_height, 1e-9)
    thick = float(np.clip((thickness - THIN_ARM) / THIN_ARM, 0.0, 1.0))
    score = off_torso - WRIST_OVER_TORSO_PENALTY * wrist_over - thick
    return ArmFreedom(side, off_torso, wrist_over, thickness, score)


def choose_free_arm(
    joints: np.ndarray,
    subject_height: float,
    binary_mask: np.ndarray | None,
    subject_kind: str,
) -> tuple[str, str, dict[str, Any]]:
    """The arm one-arm motions lift ("left" / "right"), why, and both arms' figures."""
    arms = {side: arm_freedom(joints, subject_height, binary_mask, side) for side in ARM_SIDES}
    figures = {side: arm.to_json() for side, arm in arms.items()}
    if subject_kind not in ARM_KINDS:
        return "left", f"a {subject_kind}: no one-arm motion applies to it", figures
    left, right = arms["left"], arms["right"]
    if max(left.score, right.score) < FREE:
        return "left", f"neither arm is free (scores {_scores(arms)}): the left", figures
    if abs(left.score - right.score) < TIE:
        return "left", f"both arms are as free (scores {_scores(arms)}): the left", figures
    free, other = (left, right) if left.score > right.score else (right, left)
    why = []
    if other.wrist_over_torso and not free.wrist_over_torso:
        why.append(f"the {other.side} hand is over the torso")
    if other.thickness > THIN_ARM >= free.thickness:
        why.append(f"the {other.side} arm is wide (holding something, or against the body)")
    if free.off_torso > other.off_torso:
        why.append(f"the {free.side} forearm is {free.off_torso:.0%} off the torso")
    return (
        free.side,
        f"the {free.side} arm is the freer ({'; '.join(why) or 'higher score'}; scores "
        f"{_scores(arms)})",
        figures,
    )


def _scores(arms: dict[str, ArmFreedom]) -> str:
    return ", ".join(f"{side} {arm.score:.2f}" for side, arm in arms.items())


def mirror_arms(z: np.ndarray) -> np.ndarray:
    """``z`` (one vector or a sequence) with its arms' motion swapped left ↔ right: offsets
    exchanged with x negated, depths exchanged. A motion that lifts the left arm then lifts
    the right one the same way."""
    mirrored = np.array(z, dtype=np.float32, copy=True)
    offsets = joint_offsets(mirrored).copy()
    depths = mirrored[..., JOINT_DEPTHS].copy()
    for name in ARM_JOINTS:
        left, right = JOINT_INDEX[f"left_{name}"], JOINT_INDEX[f"right_{name}"]
        offsets[..., [left, right], :] = offsets[..., [right, left], :] * np.array([-1.0, 1.0])
        depths[..., [left, right]] = depths[..., [right, left]]
    set_joint_offsets(mirrored, offsets)
    mirrored[..., JOINT_DEPTHS] = depths
    return mirrored


def play_on_arm(z: np.ndarray, arm: str | None) -> np.ndarray:
    """A one-arm motion (it lifts the canonical left arm) played on ``arm``."""
    return mirror_arms(z) if arm == "right" else np.asarray(z, dtype=np.float32)


__all__ = ["ArmFreedom", "arm_freedom", "choose_free_arm", "mirror_arms", "play_on_arm"]
