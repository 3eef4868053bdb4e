"""What kind of subject a reference shows, and which motion fits it.

One human skeleton laid over everything made a cat's eye swim under "wave hello", a gift box
crumple and an astronaut lift the helmet she holds over her face. The kind decides which
joints may move (the rest follow root motion only) and which motion of the library a prompt
plays: a motion that does not apply to the kind is mapped to the nearest one that does, and
the response says so.

- ``person``: a person's skeleton whose hips are in the picture — every joint moves.
- ``portrait``: a person cut above the hips (a bust) — head and shoulders move, no limbs.
- ``animal``: an animal's face (OpenCV's cat-face cascades) — the head moves, and the body
  hops, sways and breathes.
- ``quadruped``: a whole animal on four legs, seen from the side (engine/quadruped.py): its
  legs walk and run, the head nods, the body hops and sways.
- ``object``: a compact shape (a product, a cup) — no internal bending: it hops, sways,
  squashes and spins as one piece.
- ``figure``: anything else, drawings included — a full figure, limbs moved as drawn.
"""

from __future__ import annotations

import functools
from typing import Literal

import cv2
import numpy as np

from char_pipeline.engine.controls import (
    JOINT_DEPTHS,
    JOINT_INDEX,
    NUM_JOINTS,
    ROOT_TX,
    ROOT_TY,
    joint_offsets,
    set_joint_offsets,
)

SubjectKind = Literal["person", "portrait", "animal", "quadruped", "object", "figure"]
SUBJECT_KINDS: tuple[str, ...] = ("person", "portrait", "animal", "quadruped", "object", "figure")
# Rigs whose skeleton really is a person's (limbs follow the control in full).
PERSON_RIGS = ("pose-model", "face", "client")
# Rigs whose limbs were found on the subject's own limbs (full motion, tight skinning).
LIMB_RIGS = (*PERSON_RIGS, "four-legs")
# A mask this close to its convex hull (area share) is one compact piece: an object.
OBJECT_SOLIDITY = 0.8
HEAD = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
MOVABLE_JOINTS: dict[str, tuple[str, ...] | None] = {
    "person": None,  # all
    "figure": None,
    "portrait": (*HEAD, "left_shoulder", "right_shoulder"),
    "animal": HEAD,
    "quadruped": None,
    "object": (),
}
# Which motions of the library each kind plays as they are; the others map to a substitute.
APPLIES_TO: dict[str, tuple[str, ...]] = {
    "person": (
        "idle", "wave", "walk", "run", "jump", "dance", "bow", "nod", "clap", "bounce", "sway",
        "shake",
    ),
    "figure": (
        "idle", "wave", "walk", "run", "jump", "dance", "spin", "bow", "nod", "clap", "bounce",
        "sway", "shake",
    ),
    "portrait": ("idle", "nod", "shake", "sway", "bow"),
    "animal": ("idle", "nod", "shake", "sway", "jump", "bounce"),
    "quadruped": ("idle", "walk", "run", "nod", "shake", "sway", "bounce"),
    "object": ("idle", "jump", "bounce", "sway", "spin"),
}  # fmt: skip
SUBSTITUTES: dict[str, dict[str, str]] = {
    # One photo cannot turn a person around: "spin" would tip the picture over.
    "person": {"spin": "sway"},
    "portrait": {
        "wave": "nod", "clap": "nod", "dance": "sway", "walk": "sway", "run": "sway",
        "jump": "nod", "bounce": "nod", "spin": "shake",
    },
    "animal": {"wave": "nod", "clap": "nod", "dance": "bounce", "walk": "sway", "run": "bounce",
               "bow": "nod", "spin": "shake"},  # a close-up squashed to a spin tore at its cut edges
    # A human jump throws the front legs over the head; a hop is the animal's jump.
    "quadruped": {"wave": "nod", "clap": "nod", "dance": "bounce", "jump": "bounce",
                  "bow": "nod", "spin": "sway"},
    "object": {"wave": "jump", "clap": "bounce", "dance": "bounce", "walk": "sway",
               "run": "bounce", "nod": "sway", "shake": "sway", "bow": "sway"},
}  # fmt: skip


def classify_subject(
    rgb: np.ndarray,
    binary_mask: np.ndarray,
    rig_kind: str,
    mask_source: str,
    hips: np.ndarray,
) -> tuple[str, str]:
    """The subject's kind and why (shown in rig.json, the UI and the API)."""
    height, width = binary_mask.shape
    if rig_kind == "four-legs":
        return "quadruped", "an animal on four legs, seen from the side: its legs walk"
    if mask_source == "drawing":
        return "figure", "a drawing on paper: the whole figure moves as drawn"
    if rig_kind in PERSON_RIGS:
        inside = (
            (hips[:, 0] >= 0) & (hips[:, 0] < width) & (hips[:, 1] >= 0) & (hips[:, 1] < height)
        )
        if not inside.all():
            return "portrait", "a person cut above the hips: head and shoulders move, no limbs"
        return "person", "a person with hips in the picture: every joint moves"
    if _has_cat_face(rgb):
        return "animal", "an animal's face (cat-face detector): the head moves, the body sways"
    contours, _ = cv2.findContours(
        binary_mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    if contours:
        outline = max(contours, key=cv2.contourArea)
        hull = max(cv2.contourArea(cv2.convexHull(outline)), 1.0)
        solidity = cv2.contourArea(outline) / hull
        if solidity >= OBJECT_SOLIDITY:
            return (
                "object",
                f"a compact shape (solidity {solidity:.2f}): it moves as one piece, no bending",
            )
    return "figure", "a shape with parts that stick out: limbs follow the template skeleton"


def _has_cat_face(rgb: np.ndarray) -> bool:
    """OpenCV 4.x ships two cat-face cascades; each is sensitive to its scale factor
    (DESIGN.md: on chelsea one finds the face at 1.05, the other at 1.1), so both run at both."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    smallest = max(24, min(grey.shape) // 8)
    for cascade in _cat_face_cascades():
        for scale in (1.05, 1.1):
            found = cascade.detectMultiScale(
                grey, scaleFactor=scale, minNeighbors=3, minSize=(smallest, smallest)
            )
            if len(found):
                return True
    return False


TORSO = [JOINT_INDEX[name] for name in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
TRAVELLING_KINDS = ("object", "animal")  # kinds whose torso joints are still
# Kinds whose detected face no moving limb may cover (engine/deform.py holds it).
FACE_HELD_KINDS = ("person", "portrait", "figure")


@functools.cache
def _cat_face_cascades() -> tuple[cv2.CascadeClassifier, ...]:
    return tuple(
        cv2.CascadeClassifier(cv2.data.haarcascades + name)
        for name in ("haarcascade_frontalcatface.xml", "haarcascade_frontalcatface_extended.xml")
    )


def restrict_to_kind(z: np.ndarray, kind: str | None) -> np.ndarray:
    """``z`` (one vector or a sequence) with the joints the kind keeps still at rest: their
    offsets and depths zeroed. Root motion (hop, sway, turn, squash) is kept; for an object or
    an animal the torso's travel joins it."""
    movable = MOVABLE_JOINTS.get(kind or "figure")
    if movable is None:
        return z
    still = np.ones(NUM_JOINTS, bool)
    still[[JOINT_INDEX[name] for name in movable]] = False
    restricted = np.array(z, dtype=np.float32, copy=True)
    offsets = joint_offsets(restricted).copy()
    if kind in TRAVELLING_KINDS:
        # The pose's torso travel (a keypoint track bakes its hops into the joints) moves the
        # whole subject, so a product given a dancing person's track bobs along instead of
        # standing still.
        travel = offsets[..., TORSO, :].mean(axis=-2)
        restricted[..., ROOT_TX] += travel[..., 0]
        restricted[..., ROOT_TY] += travel[..., 1]
    offsets[..., still, :] = 0.0
    set_joint_offsets(restricted, offsets)
    depths = restricted[..., JOINT_DEPTHS]
    depths[..., still] = 0.0
    restricted[..., JOINT_DEPTHS] = depths
    return restricted


def motion_for_kind(motion: str, kind: str | None) -> tuple[str, str | None]:
    """The motion a subject of ``kind`` plays for ``motion``, and why when it differs."""
    if kind is None or motion in APPLIES_TO.get(kind, (motion,)):
        return motion, None
    substitute = SUBSTITUTES.get(kind, {}).get(motion, "idle")
    article = "an" if kind[0] in "aeiou" else "a"
    return substitute, (
        f"'{motion}' does not apply to {article} {kind} ({', '.join(APPLIES_TO[kind])} do); "
        f"'{substitute}' was played instead."
    )
