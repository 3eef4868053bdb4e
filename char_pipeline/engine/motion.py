"""A library of parameterised motions and the text prompts that select them.

Each motion maps a phase ``t`` in [0, 1) per frame to z vectors of layout v1. Arm and leg
motions rotate the canonical skeleton's limbs about their parent joints, so the offsets
read as joint rotations on any subject.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from char_pipeline.engine.controls import (
    CANONICAL_SKELETON,
    JOINT_INDEX,
    NUM_JOINTS,
    ROOT_LOG_SCALE,
    ROOT_LOG_SQUASH_X,
    ROOT_ROTATION,
    ROOT_TX,
    ROOT_TY,
    Z_DIM,
    RestPose,
    encode_pose_sequence,
    keypoints_from_json,
    keypoints_from_z,
    set_joint_offsets,
)
from char_pipeline.engine.errors import InvalidInputError

HEAD = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
LIMBS = {
    "left_arm": ("left_shoulder", "left_elbow", "left_wrist"),
    "right_arm": ("right_shoulder", "right_elbow", "right_wrist"),
    "left_leg": ("left_hip", "left_knee", "left_ankle"),
    "right_leg": ("right_hip", "right_knee", "right_ankle"),
}


@dataclass
class Pose:
    """Joint positions (canonical skeleton units) and root parameters for a batch of frames."""

    frames: int
    joints: np.ndarray = field(init=False)
    root: np.ndarray = field(init=False)  # (T, 5): tx, ty, log_scale, rotation, log_squash_x

    def __post_init__(self) -> None:
        self.joints = np.repeat(CANONICAL_SKELETON[None], self.frames, axis=0).copy()
        self.root = np.zeros((self.frames, 5))

    def rotate_limb(self, limb: str, upper: np.ndarray, lower: np.ndarray | float = 0.0) -> None:
        """Rotate a limb's upper segment about its root joint and its lower segment about the middle.

        Angles in radians per frame; positive turns counter-clockwise on screen.
        """
        root, middle, end = (JOINT_INDEX[name] for name in LIMBS[limb])
        upper = np.broadcast_to(np.asarray(upper, dtype=np.float64), (self.frames,))
        lower = np.broadcast_to(np.asarray(lower, dtype=np.float64), (self.frames,))
        origin = self.joints[:, root]
        middle_pos = origin + _rotate(self.joints[:, middle] - origin, upper)
        end_pos = middle_pos + _rotate(self.joints[:, end] - self.joints[:, middle], upper + lower)
        self.joints[:, middle] = middle_pos
        self.joints[:, end] = end_pos

    def move(self, names: tuple[str, ...], dx: np.ndarray | float, dy: np.ndarray | float) -> None:
        for name in names:
            self.joints[:, JOINT_INDEX[name], 0] += dx
            self.joints[:, JOINT_INDEX[name], 1] += dy

    def to_z(self) -> np.ndarray:
        z = np.zeros((self.frames, Z_DIM), dtype=np.float32)
        set_joint_offsets(
            z, (self.joints - CANONICAL_SKELETON[None]).reshape(self.frames, 2 * NUM_JOINTS)
        )
        z[:, [ROOT_TX, ROOT_TY, ROOT_LOG_SCALE, ROOT_ROTATION, ROOT_LOG_SQUASH_X]] = self.root
        return z


def _rotate(vectors: np.ndarray, angles: np.ndarray) -> np.ndarray:
    # Screen axes have y down, so a counter-clockwise turn on screen is -angle in math axes.
    cos, sin = np.cos(-angles)[:, None], np.sin(-angles)[:, None]
    x, y = vectors[:, :1], vectors[:, 1:]
    return np.concatenate([x * cos - y * sin, x * sin + y * cos], axis=1)


@dataclass(frozen=True)
class MotionParams:
    """Modifiers parsed from a prompt."""

    speed: float = 1.0  # cycles per clip scale
    amplitude: float = 1.0
    direction: float = 0.0  # -1 left, +1 right, 0 in place
    repeats: float = 1.0


MotionFn = Callable[[np.ndarray, MotionParams], Pose]
MOTIONS: dict[str, MotionFn] = {}
MOTION_KEYWORDS: dict[str, tuple[str, ...]] = {}


def motion(name: str, *keywords: str) -> Callable[[MotionFn], MotionFn]:
    def register(fn: MotionFn) -> MotionFn:
        MOTIONS[name] = fn
        MOTION_KEYWORDS[name] = (name, *keywords)
        return fn

    return register


def _wave(t: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * t)


@motion("idle", "stand", "still", "breathe", "rest", "wait", "pose")
def idle(t: np.ndarray, p: MotionParams) -> Pose:
    pose = Pose(len(t))
    pose.root[:, 2] = 0.012 * p.amplitude * _wave(t)
    pose.move(HEAD, 0.004 * p.amplitude * _wave(t + 0.25), 0.0)
    return pose


# Motions that move one arm, the canonical left; engine/limbs.py plays them on the free arm.
ONE_ARM_MOTIONS = ("wave",)


@motion("wave", "waving", "hello", "hi", "greet", "bye", "goodbye")
def wave(t: np.ndarray, p: MotionParams) -> Pose:
    pose = Pose(len(t))
    pose.rotate_limb("left_arm", np.full(len(t), 2.4), 0.3 + 0.45 * p.amplitude * _wave(2 * t))
    pose.move(HEAD, 0.01 * _wave(t), 0.0)
    return pose


@motion("walk", "walking", "stroll", "step", "march")
def walk(t: np.ndarray, p: MotionParams) -> Pose:
    pose = Pose(len(t))
    swing = 0.35 * p.amplitude * _wave(t)
    pose.rotate_limb("left_leg", swing, np.maximum(0, -swing) * 0.8)
    pose.rotate_limb("right_leg", -swing, np.maximum(0, swing) * 0.8)
    pose.rotate_limb("left_arm", -0.6 * swing)
    pose.rotate_limb("right_arm", 0.6 * swing)
    pose.root[:, 1] = -0.015 * np.abs(_wave(t))
    pose.root[:, 0] = 0.25 * p.direction * (t - 0.5)
    return pose


@motion("run", "running", "sprint", "jog", "dash")
def run(t: np.ndarray, p: MotionParams) -> Pose:
    pose = Pose(len(t))
    swing = 0.6 * p.amplitude * _wave(t)
    pose.rotate_limb("left_leg", swing, 0.3 + np.maximum(0, -swing))
    pose.rotate_limb("right_leg", -swing, 0.3 + np.maximum(0, swing))
    pose.rotate_limb("left_arm", -swing, -0.9)
    pose.rotate_limb("right_arm", swing, 0.9)
    pose.root[:, 1] = -0.04 * np.abs(_wave(t))
    pose.root[:, 3] = -0.08 * (p.direction or 1.0)
    pose.root[:, 0] = 0.45 * p.direction * (t - 0.5)
    return pose


@motion("jump", "jumping", "hop", "leap")
def jump(t: np.ndarray, p: MotionParams) -> Pose:
    pose = Pose(len(t))
    height = np.maximum(0, _wave(t)) ** 1.5
    crouch = np.maximum(0, -_wave(t))
    pose.root[:, 1] = -0.22 * p.amplitude * height + 0.05 * crouch
    pose.root[:, 2] = -0.03 * crouch
    pose.rotate_limb("left_arm", 2.2 * height, 0.2)
    pose.rotate_limb("right_arm", -2.2 * height, -0.2)
    pose.rotate_limb("left_leg", -0.5 * crouch, 1.0 * crouch)
    pose.rotate_limb("right_leg", 0.5 * crouch, -1.0 * crouch)
    pose.root[:, 0] = 0.3 * p.direction * t
    return pose


@motion("dance", "dancing", "groove", "boogie", "party")
def dance(t: np.ndarray, p: MotionParams) -> Pose:
    pose = Pose(len(t))
    beat = _wave(2 * t)
    pose.rotate_limb("left_arm", 1.6 + 0.8 * p.amplitude * beat, 0.6 * _wave(2 * t + 0.25))
    pose.rotate_limb("right_arm", -1.6 + 0.8 * p.amplitude * beat, -0.6 * _wave(2 * t + 0.25))
    pose.rotate_limb("left_leg", 0.25 * np.maximum(0, beat), 0.3 * np.maximum(0, beat))
    pose.rotate_limb("right_leg", -0.25 * np.maximum(0, -beat), -0.3 * np.maximum(0, -beat))
    pose.root[:, 3] = 0.12 * p.amplitude * _wave(t)
    pose.root[:, 1] = -0.03 * np.abs(beat)
    pose.root[:, 0] = 0.06 * _wave(t)
    return pose


@motion("spin", "spinning", "turn", "twirl", "rotate", "pirouette")
def spin(t: np.ndarray, p: MotionParams) -> Pose:
    pose = Pose(len(t))
    # A 2D subject turning on the spot: horizontal squash through edge-on and back.
    pose.root[:, 4] = np.log(np.maximum(np.abs(np.cos(np.pi * t)), 0.25))
    pose.rotate_limb("left_arm", 0.5 * p.amplitude)
    pose.rotate_limb("right_arm", -0.5 * p.amplitude)
    return pose


@motion("bow", "bowing", "curtsy", "thank")
def bow(t: np.ndarray, p: MotionParams) -> Pose:
    pose = Pose(len(t))
    depth = 0.5 - 0.5 * np.cos(2 * np.pi * t)
    pose.move((*HEAD, "left_shoulder", "right_shoulder"), 0.0, 0.12 * p.amplitude * depth)
    pose.move(HEAD, 0.0, 0.04 * depth)
    pose.move(("left_elbow", "right_elbow", "left_wrist", "right_wrist"), 0.0, 0.1 * depth)
    pose.root[:, 2] = -0.05 * depth
    return pose


@motion("nod", "nodding", "agree", "yes")
def nod(t: np.ndarray, p: MotionParams) -> Pose:
    pose = Pose(len(t))
    pose.move(HEAD, 0.0, 0.025 * p.amplitude * np.maximum(0, _wave(2 * t)))
    return pose


@motion("clap", "clapping", "applaud", "cheer")
def clap(t: np.ndarray, p: MotionParams) -> Pose:
    pose = Pose(len(t))
    closing = 0.5 + 0.5 * _wave(3 * t)
    pose.rotate_limb("left_arm", 0.6, 1.0 + 0.5 * closing * p.amplitude)
    pose.rotate_limb("right_arm", -0.6, -1.0 - 0.5 * closing * p.amplitude)
    return pose


@motion("bounce", "bouncing", "bob", "hopping", "springy")
def bounce(t: np.ndarray, p: MotionParams) -> Pose:
    pose = Pose(len(t))
    phase = np.abs(_wave(2 * t))
    pose.root[:, 1] = -0.08 * p.amplitude * phase
    pose.root[:, 2] = 0.03 * (phase - 0.5)
    pose.root[:, 4] = -0.04 * (phase - 0.5)
    return pose


@motion("sway", "swaying", "rock", "lean", "wobble")
def sway(t: np.ndarray, p: MotionParams) -> Pose:
    pose = Pose(len(t))
    pose.root[:, 3] = 0.14 * p.amplitude * _wave(t)
    pose.root[:, 0] = 0.03 * _wave(t)
    pose.rotate_limb("left_arm", 0.15 * _wave(t))
    pose.rotate_limb("right_arm", 0.15 * _wave(t))
    return pose


@motion("shake", "shaking", "no", "shiver", "tremble")
def shake(t: np.ndarray, p: MotionParams) -> Pose:
    pose = Pose(len(t))
    pose.move(HEAD, 0.03 * p.amplitude * _wave(4 * t), 0.0)
    pose.root[:, 0] = 0.01 * p.amplitude * _wave(8 * t)
    return pose


# ---------------------------------------------------------------------------------------
# Prompt → motion: keyword matching (the sentence-embedding matcher builds on this).

_SPEED_WORDS = {
    "slowly": 0.5,
    "slow": 0.5,
    "gently": 0.7,
    "fast": 1.8,
    "quickly": 1.8,
    "quick": 1.8,
    "rapidly": 2.0,
}
_AMPLITUDE_WORDS = {
    "wildly": 1.5,
    "big": 1.4,
    "energetically": 1.4,
    "little": 0.6,
    "slightly": 0.5,
    "subtly": 0.5,
    "gently": 0.7,
}
_REPEAT_WORDS = {"twice": 2.0, "thrice": 3.0, "once": 1.0, "again": 2.0}
_TOKEN = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class MotionPlan:
    """What a prompt asked for: a primary motion, optional overlay, and modifiers."""

    primary: str
    overlay: str | None
    params: MotionParams
    matched_words: tuple[str, ...]
    similarity: float | None = None  # MiniLM cosine when the motion was chosen by meaning
    # Said to the client when the motion played is not clearly the one asked for.
    notice: str | None = None
    # Why the motion played differs from the prompt's for this kind of subject (engine/kinds).
    kind_reason: str | None = None
    # The arm a one-arm motion (ONE_ARM_MOTIONS) plays on; None when none plays.
    arm: str | None = None


def plan_motion(prompt: str, model: str = "keyword") -> MotionPlan:
    """Pick the motion(s) and modifiers a prompt describes.

    Words of the motion library decide first. Without one, model "custom-nlp" takes the
    motion whose description is nearest in MiniLM space, "clip" in a local CLIP's space
    (ModelNotInstalledError when there is none; engine/text.py); "keyword" idles.
    """
    if not prompt or not prompt.strip():
        raise InvalidInputError("The prompt is empty; describe the motion, e.g. 'wave hello'.")
    tokens = _TOKEN.findall(prompt.lower())
    found: list[tuple[int, str, str]] = []
    for position, token in enumerate(tokens):
        for name, keywords in MOTION_KEYWORDS.items():
            if token in keywords and name not in [f[1] for f in found]:
                found.append((position, name, token))
    while_at = tokens.index("while") if "while" in tokens else None
    if while_at is not None:
        found.sort(key=lambda f: (f[0] > while_at, f[0]))
    primary = found[0][1] if found else "idle"
    similarity, notice = None, None
    if not found and model in ("custom-nlp", "clip"):
        from char_pipeline.engine.text import (
            CONFIDENT_SIMILARITY,
            MIN_SIMILARITY,
            nearest_motion,
        )

        nearest, similarity = nearest_motion(prompt, model)
        if similarity >= MIN_SIMILARITY:
            primary = nearest
        if similarity < MIN_SIMILARITY:
            notice = (
                f"No motion of the library matches {prompt!r} (nearest: {nearest!r} at "
                f"similarity {similarity:.2f}, below {MIN_SIMILARITY}); 'idle' was played."
            )
        elif similarity < CONFIDENT_SIMILARITY:
            notice = (
                f"{prompt!r} is not a motion of the library; the nearest, {nearest!r}, scored "
                f"similarity {similarity:.2f} (below {CONFIDENT_SIMILARITY}) and was played "
                "instead — it may not be the motion asked for."
            )
    elif not found:
        notice = f"No motion word of the library in {prompt!r}; 'idle' was played."
    overlay = found[1][1] if len(found) > 1 else None
    speed = float(np.prod([_SPEED_WORDS[w] for w in tokens if w in _SPEED_WORDS] or [1.0]))
    amplitude = float(
        np.prod([_AMPLITUDE_WORDS[w] for w in tokens if w in _AMPLITUDE_WORDS] or [1.0])
    )
    repeats = max([_REPEAT_WORDS[w] for w in tokens if w in _REPEAT_WORDS] or [1.0])
    direction = 0.0
    if "left" in tokens:
        direction = -1.0
    elif "right" in tokens:
        direction = 1.0
    params = MotionParams(speed=speed, amplitude=amplitude, direction=direction, repeats=repeats)
    return MotionPlan(primary, overlay, params, tuple(f[2] for f in found), similarity, notice)


def motion_sequence(plan: MotionPlan, steps: int) -> np.ndarray:
    """(steps, 64) z vectors for a planned motion, looping seamlessly over the clip."""
    if steps < 1:
        raise InvalidInputError("steps must be at least 1.")
    cycles = max(1.0, round(plan.params.speed * plan.params.repeats))
    t = (np.arange(steps) / steps) * cycles
    z = MOTIONS[plan.primary](
        t % 1.0 if plan.params.direction == 0 else t / cycles, plan.params
    ).to_z()
    if plan.overlay is not None:
        overlay = MOTIONS[plan.overlay](t % 1.0, plan.params).to_z()
        # Upper-body overlay ("walk while waving"): take the overlay's arms and head.
        arm_joints = [
            JOINT_INDEX[n] for n in (*LIMBS["left_arm"][1:], *LIMBS["right_arm"][1:], *HEAD)
        ]
        for joint in arm_joints:
            z[:, 2 * joint : 2 * joint + 2] = overlay[:, 2 * joint : 2 * joint + 2]
    return z


def text_sequence(
    prompt: str,
    steps: int,
    model: str = "keyword",
    *,
    subject_kind: str | None = None,
    free_arm: str | None = None,
) -> tuple[np.ndarray, MotionPlan]:
    """The prompt's motion as z vectors; for a ``subject_kind`` (engine/kinds.py) a motion that
    does not apply to it is replaced by the nearest one that does (wave → nod for a portrait,
    hop for a product), and the plan's ``kind_reason`` says so. A one-arm motion plays on
    ``free_arm`` (the rig's, engine/limbs.py; None: the left), named by the plan's ``arm``."""
    plan = plan_motion(prompt, model)
    if subject_kind is not None:
        from char_pipeline.engine.kinds import motion_for_kind

        primary, reason = motion_for_kind(plan.primary, subject_kind)
        overlay = plan.overlay
        if overlay is not None and motion_for_kind(overlay, subject_kind)[1] is not None:
            overlay = None  # an overlay that does not apply is dropped with its motion
        if reason is not None or overlay != plan.overlay:
            plan = replace(plan, primary=primary, overlay=overlay, kind_reason=reason)
    z = motion_sequence(plan, steps)
    if plan.primary in ONE_ARM_MOTIONS or plan.overlay in ONE_ARM_MOTIONS:
        from char_pipeline.engine.limbs import play_on_arm

        plan = replace(plan, arm=free_arm or "left")
        z = play_on_arm(z, plan.arm)
    return z, plan


def keypoint_track(
    motion: str, steps: int, rest: RestPose
) -> tuple[list[list[dict[str, Any]]], np.ndarray]:
    """A motion of the library as a pose client would send it — keypoints that leave out the
    joints outside the image, as a pose estimator would — and those keypoints encoded back
    into z vectors: the demo's pose control."""
    frames = keypoints_from_z(
        motion_sequence(MotionPlan(motion, None, MotionParams(), ()), steps), rest
    )
    return frames, encode_pose_sequence([keypoints_from_json(frame) for frame in frames], rest)
