"""Motion clips: a BVH motion-capture file retargeted onto a reference's rig.

The clip is read (hierarchy, channels, frames), posed by forward kinematics, and seen from
the front: the axis from the right hip to the left one is the picture's x, the axis from the
hips to the head its up, the third the depth. Each limb of the character takes the clip's
bone *direction* in that plane at its own bone length (shoulder → elbow → wrist, hip → knee
→ ankle, neck → head); the torso leans with the clip's spine; the hips' travel becomes root
motion, in the clip's heights. The result is the same z layout as a pose sequence, so every
renderer, kind and check treats it alike. Frames are resampled from the clip's rate to the
video's. No library ships a BVH reader we could lock offline without a new dependency, and
the format is small: the parser is here.

Clips that ship with the project (``char_pipeline/motions``, from Meta's AnimatedDrawings
examples, MIT): wave_hello, jumping, dab.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from char_pipeline.engine.controls import (
    JOINT_DEPTHS,
    JOINT_INDEX,
    MAX_JOINT_OFFSET,
    MAX_ROOT_TRANSLATION,
    NUM_JOINTS,
    ROOT_TX,
    ROOT_TY,
    RestPose,
    empty_z,
    set_joint_offsets,
    validate_z,
)
from char_pipeline.engine.errors import MotionClipError
from char_pipeline.engine.render import LIMB_BONES

MOTIONS_DIR = Path(__file__).resolve().parent.parent / "motions"
MAX_BVH_BYTES = 8 * 1024 * 1024
MAX_CLIP_SECONDS = 600.0

# COCO joint ← the BVH joint whose *start* it is (names matched case-insensitively, with any
# prefix such as "mixamorig:"). Head: the head joint's end site stands for the nose.
BVH_JOINTS: dict[str, tuple[str, ...]] = {
    "left_shoulder": ("leftarm",),
    "right_shoulder": ("rightarm",),
    "left_elbow": ("leftforearm",),
    "right_elbow": ("rightforearm",),
    "left_wrist": ("lefthand",),
    "right_wrist": ("righthand",),
    "left_hip": ("leftupleg", "leftthigh"),
    "right_hip": ("rightupleg", "rightthigh"),
    "left_knee": ("leftleg", "leftshin"),
    "right_knee": ("rightleg", "rightshin"),
    "left_ankle": ("leftfoot",),
    "right_ankle": ("rightfoot",),
    "neck": ("neck",),
    "head": ("head",),
}
HEAD_JOINTS = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
# A four-legged clip's joints: front legs take the arms' places, hind legs the legs'.
QUADRUPED_BVH_JOINTS: dict[str, tuple[str, ...]] = {
    "left_shoulder": ("leftfrontupleg",),
    "right_shoulder": ("rightfrontupleg",),
    "left_elbow": ("leftfrontleg",),
    "right_elbow": ("rightfrontleg",),
    "left_wrist": ("leftfrontfoot",),
    "right_wrist": ("rightfrontfoot",),
    "left_hip": ("lefthindupleg",),
    "right_hip": ("righthindupleg",),
    "left_knee": ("lefthindleg",),
    "right_knee": ("righthindleg",),
    "left_ankle": ("lefthindfoot",),
    "right_ankle": ("righthindfoot",),
    "neck": ("neck",),
    "head": ("head",),
}
# On a four-legged rig a leg swings at most this far (radians) from straight down: a human
# clip's raised arm would otherwise lift a front leg over the animal's back.
MAX_LEG_SWING = math.radians(50)
SIDE_TRAVEL = 0.3  # subject heights: the most a four-legged subject travels within a clip


@dataclass
class Joint:
    name: str
    offset: np.ndarray
    channels: list[str]
    parent: int | None
    children: list[int] = field(default_factory=list)
    end_site: np.ndarray | None = None


@dataclass
class Clip:
    joints: list[Joint]
    frames: np.ndarray  # (T, channels)
    frame_time: float

    @property
    def seconds(self) -> float:
        return len(self.frames) * self.frame_time

    def find(self, names: tuple[str, ...]) -> int | None:
        """The first joint whose name ends with one of ``names`` (case-insensitive)."""
        for wanted in names:
            for index, joint in enumerate(self.joints):
                bare = re.split(r"[:|]", joint.name)[-1].lower()
                if bare == wanted:
                    return index
        return None


def list_clips() -> list[str]:
    """Names of the clips that ship with the project."""
    return sorted(path.stem for path in MOTIONS_DIR.glob("*.bvh"))


def load_clip(name_or_text: str) -> Clip:
    """A shipped clip by name, a ``.bvh`` file's path, or the text of a BVH file."""
    if "HIERARCHY" not in name_or_text and name_or_text.lower().endswith(".bvh"):
        path = Path(name_or_text)
        if not path.is_file():
            raise MotionClipError(f"The motion clip file {name_or_text} does not exist.")
        name_or_text = path.read_text(errors="replace")
    if "HIERARCHY" not in name_or_text:
        path = MOTIONS_DIR / f"{name_or_text}.bvh"
        if not re.fullmatch(r"[a-z0-9_]+", name_or_text) or not path.is_file():
            raise MotionClipError(
                f"Unknown motion clip {name_or_text!r}; the library has "
                f"{', '.join(list_clips())}, or send a BVH file's text.",
                clip=name_or_text,
            )
        name_or_text = path.read_text()
    if len(name_or_text.encode()) > MAX_BVH_BYTES:
        raise MotionClipError(f"The BVH file is larger than {MAX_BVH_BYTES // (1024 * 1024)} MB.")
    return parse_bvh(name_or_text)


def parse_bvh(text: str) -> Clip:
    """Read a BVH file's hierarchy and motion (typed MotionClipError on anything malformed)."""
    try:
        head, motion = text.split("MOTION", 1)
    except ValueError:
        raise MotionClipError("Not a BVH file: there is no MOTION section.") from None
    tokens = head.split()
    if not tokens or tokens[0] != "HIERARCHY":
        raise MotionClipError("Not a BVH file: it does not start with HIERARCHY.")
    joints: list[Joint] = []
    stack: list[int] = []
    position = 1
    try:
        while position < len(tokens):
            token = tokens[position]
            if token in ("ROOT", "JOINT"):
                parent = stack[-1] if stack else None
                joints.append(Joint(tokens[position + 1], np.zeros(3), [], parent))
                if parent is not None:
                    joints[parent].children.append(len(joints) - 1)
                position += 2
            elif token == "End":  # End Site { OFFSET x y z }
                if tokens[position + 2] != "{" or tokens[position + 3] != "OFFSET":
                    raise MotionClipError("A BVH End Site must hold an OFFSET.")
                joints[stack[-1]].end_site = np.array(
                    [float(v) for v in tokens[position + 4 : position + 7]]
                )
                position += 8  # End Site { OFFSET x y z }
            elif token == "{":
                stack.append(len(joints) - 1)
                position += 1
            elif token == "}":
                stack.pop()
                position += 1
            elif token == "OFFSET":
                joints[stack[-1]].offset = np.array(
                    [float(v) for v in tokens[position + 1 : position + 4]]
                )
                position += 4
            elif token == "CHANNELS":
                count = int(tokens[position + 1])
                joints[stack[-1]].channels = tokens[position + 2 : position + 2 + count]
                position += 2 + count
            else:
                raise MotionClipError(f"Unexpected token {token!r} in the BVH hierarchy.")
    except (IndexError, ValueError) as exc:
        raise MotionClipError(f"The BVH hierarchy is malformed: {exc}.") from exc
    if not joints:
        raise MotionClipError("The BVH hierarchy has no joints.")
    lines = [line for line in motion.strip().splitlines() if line.strip()]
    try:
        count = int(lines[0].split(":")[1])
        frame_time = float(lines[1].split(":")[1])
        frames = np.array([[float(v) for v in line.split()] for line in lines[2:]], np.float64)
    except (IndexError, ValueError) as exc:
        raise MotionClipError(f"The BVH motion section is malformed: {exc}.") from exc
    channels = sum(len(joint.channels) for joint in joints)
    if count < 1 or len(frames) != count or frames.ndim != 2 or frames.shape[1] != channels:
        raise MotionClipError(
            f"The BVH motion has {len(frames)} frames of {frames.shape[-1] if frames.size else 0} "
            f"values; its header says {count} frames of {channels} channels."
        )
    if not (0.0 < frame_time <= 1.0) or count * frame_time > MAX_CLIP_SECONDS:
        raise MotionClipError(
            f"Frame Time {frame_time} s for {count} frames: a clip runs at most "
            f"{MAX_CLIP_SECONDS:g} s, at a positive frame time of at most 1 s."
        )
    if not np.isfinite(frames).all():
        raise MotionClipError("The BVH motion holds non-finite values.")
    return Clip(joints, frames, frame_time)


def _rotation(axis: str, degrees: float) -> np.ndarray:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    if axis == "X":
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    if axis == "Y":
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def world_positions(clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """(T, J, 3) joint positions and (T, J, 3) end-site positions (NaN without one)."""
    count = len(clip.frames)
    positions = np.zeros((count, len(clip.joints), 3))
    ends = np.full((count, len(clip.joints), 3), np.nan)
    for t, values in enumerate(clip.frames):
        column = 0
        rotations: list[np.ndarray] = []
        for index, joint in enumerate(clip.joints):
            local = np.eye(3)
            translation = joint.offset.copy()
            for channel in joint.channels:
                value = values[column]
                column += 1
                if channel.endswith("position"):
                    translation["XYZ".index(channel[0])] += value if joint.parent is None else 0
                else:
                    local = local @ _rotation(channel[0], value)
            if joint.parent is None:
                rotations.append(local)
                positions[t, index] = translation
            else:
                parent_rotation = rotations[joint.parent]
                positions[t, index] = positions[t, joint.parent] + parent_rotation @ joint.offset
                rotations.append(parent_rotation @ local)
            if joint.end_site is not None:
                ends[t, index] = positions[t, index] + rotations[index] @ joint.end_site
    return positions, ends


@dataclass
class _Posed:
    """A clip's joints at the video's frames, by COCO name (linear between the clip's frames)."""

    positions: np.ndarray  # (T, J, 3)
    ends: np.ndarray  # (T, J, 3) end sites, NaN without one
    found: dict[str, int | None]

    @property
    def count(self) -> int:
        return len(self.positions)

    def at(self, coco: str) -> np.ndarray:
        return self.positions[:, self.found[coco]]

    def mid(self, side: str) -> np.ndarray:
        """Between the left and right joint of ``side`` ("hip", "shoulder")."""
        return (self.at(f"left_{side}") + self.at(f"right_{side}")) / 2

    def head(self) -> np.ndarray:
        """The head joint's end site (the nose), else the head joint."""
        end = self.ends[:, self.found["head"]]
        return end if np.isfinite(end).all() else self.at("head")


def _pose_clip(
    clip: Clip, table: dict[str, tuple[str, ...]], fps: float, steps: int | None
) -> _Posed:
    """The clip's joints named by ``table`` (a 422 listing any it lacks), at ``fps`` for its
    own duration or spread over ``steps`` frames."""
    if fps <= 0:
        raise MotionClipError("fps must be positive.")
    found = {coco: clip.find(names) for coco, names in table.items()}
    missing = [coco for coco, index in found.items() if index is None and coco != "neck"]
    if missing:
        raise MotionClipError(
            "The clip's skeleton lacks joints the retargeting needs: "
            + ", ".join(f"{coco} ({'/'.join(table[coco])})" for coco in missing),
            missing=missing,
        )
    positions, ends = world_positions(clip)
    count = steps or max(1, round(clip.seconds * fps))
    times = np.arange(count) * (clip.seconds / count if steps else 1.0 / fps)
    source = np.clip(times / clip.frame_time, 0, len(clip.frames) - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, len(clip.frames) - 1)
    share = (source - low)[:, None, None]
    positions, ends = (
        array[low] * (1 - share) + array[high] * share for array in (positions, ends)
    )
    return _Posed(positions, ends, found)


def is_four_legged(clip: Clip) -> bool:
    """Whether the clip's skeleton is a four-legged one (front and hind legs)."""
    return clip.find(QUADRUPED_BVH_JOINTS["left_shoulder"]) is not None


def retarget(
    clip: Clip,
    rest: RestPose,
    *,
    fps: float,
    steps: int | None = None,
    subject_kind: str | None = None,
) -> np.ndarray:
    """The clip as a (T, 64) z sequence for a character whose rest pose is ``rest``.

    T = the clip's duration at ``fps`` (or ``steps`` frames spread over the clip). A
    four-legged subject (``subject_kind`` "quadruped") takes the clip seen from the side;
    every other subject takes a person's clip seen from the front."""
    if subject_kind == "quadruped":
        return _retarget_side(clip, rest, fps=fps, steps=steps)
    if is_four_legged(clip):
        raise MotionClipError(
            "This clip's skeleton has four legs; it drives a four-legged subject (kind "
            f"quadruped), and this reference's subject is {subject_kind or 'not one'}.",
            subject_kind=subject_kind,
        )
    posed = _pose_clip(clip, BVH_JOINTS, fps, steps)
    at, count = posed.at, posed.count
    head, hips, neck = posed.head(), posed.mid("hip"), posed.mid("shoulder")
    # The clip's own frame, from its first pose: x from right hip to left hip, up from the
    # hips to the neck, depth the third axis (toward the viewer when the clip faces it).
    lateral = at("left_hip")[0] - at("right_hip")[0]
    up = neck[0] - hips[0]
    lateral /= max(np.linalg.norm(lateral), 1e-9)
    up = up - lateral * (up @ lateral)
    height = float(np.linalg.norm(head[0] - (at("left_ankle")[0] + at("right_ankle")[0]) / 2))
    up /= max(np.linalg.norm(up), 1e-9)
    depth_axis = np.cross(lateral, up)

    def plane(points: np.ndarray) -> np.ndarray:  # picture coordinates: x right, y down
        return np.stack([points @ lateral, -(points @ up)], axis=-1)

    joints = np.repeat(rest.joints[None].astype(np.float64), count, axis=0)
    unit = rest.subject_height
    j = JOINT_INDEX
    rest_hips = (rest.joints[j["left_hip"]] + rest.joints[j["right_hip"]]) / 2
    rest_neck = (rest.joints[j["left_shoulder"]] + rest.joints[j["right_shoulder"]]) / 2
    # The torso leans with the clip's spine (hips → neck), about the character's hips.
    spine = plane(neck - hips)
    lean = np.arctan2(spine[:, 0], -spine[:, 1])
    for name in ("left_shoulder", "right_shoulder", *HEAD_JOINTS):
        relative = rest.joints[j[name]] - rest_hips
        cos, sin = np.cos(lean)[:, None], np.sin(lean)[:, None]
        joints[:, j[name]] = rest_hips + np.concatenate(
            [relative[0] * cos - relative[1] * sin, relative[0] * sin + relative[1] * cos], axis=1
        )
    # The head turns with the clip's neck → head direction, at the character's neck length.
    neck_now = (joints[:, j["left_shoulder"]] + joints[:, j["right_shoulder"]]) / 2
    head_dir = plane(head - neck)
    head_dir /= np.maximum(np.linalg.norm(head_dir, axis=1, keepdims=True), 1e-9)
    rest_head = rest.joints[j["nose"]] - rest_neck
    head_shift = neck_now + head_dir * np.linalg.norm(rest_head) - joints[:, j["nose"]]
    for name in HEAD_JOINTS:
        joints[:, j[name]] += head_shift
    for parent, child in LIMB_BONES:  # the character's limbs, parents before children
        direction = plane(at(child) - at(parent))
        direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-9)
        length = np.linalg.norm(rest.joints[j[child]] - rest.joints[j[parent]])
        joints[:, j[child]] = joints[:, j[parent]] + direction * length
    offsets = np.clip((joints - rest.joints[None]) / unit, -MAX_JOINT_OFFSET, MAX_JOINT_OFFSET)
    travel = plane(hips - hips[:1]) / max(height, 1e-9)
    depth = np.zeros((count, NUM_JOINTS))
    for coco in (
        "left_wrist",
        "right_wrist",
        "left_elbow",
        "right_elbow",
        "left_ankle",
        "right_ankle",
    ):
        depth[:, j[coco]] = ((at(coco) - hips) @ depth_axis) / max(height, 1e-9)
    sequence = np.repeat(empty_z()[None], count, axis=0)
    set_joint_offsets(sequence, offsets)
    sequence[:, JOINT_DEPTHS] = np.clip(depth, -1.0, 1.0)
    travel = np.clip(travel, -MAX_ROOT_TRANSLATION, MAX_ROOT_TRANSLATION)
    sequence[:, ROOT_TX] = travel[:, 0]
    sequence[:, ROOT_TY] = travel[:, 1]
    return np.stack([validate_z(z) for z in sequence])


def _retarget_side(clip: Clip, rest: RestPose, *, fps: float, steps: int | None) -> np.ndarray:
    """A clip on a four-legged rig, seen from the side (AnimatedDrawings' quadruped view).

    The picture's x is the clip's forward axis (turned to the way the animal faces), its y
    the clip's up. A four-legged clip's legs map leg to leg; a person's clip gives its arms
    to the front legs and its legs to the hind legs. Each leg takes the clip's bone
    direction in that plane (at most ``MAX_LEG_SWING`` from straight down) at the animal's
    own bone lengths; the head turns by the clip's change of neck → head direction; the
    hips' travel and bob become root motion, in the clip's heights."""
    four_legged = is_four_legged(clip)
    posed = _pose_clip(clip, QUADRUPED_BVH_JOINTS if four_legged else BVH_JOINTS, fps, steps)
    at, count = posed.at, posed.count
    head, hips, chest = posed.head(), posed.mid("hip"), posed.mid("shoulder")
    feet = [at(name)[0] for name in ("left_ankle", "right_ankle", "left_wrist", "right_wrist")]
    ground = np.mean(feet if four_legged else feet[:2], axis=0)
    # An animal's forward is its spine (hips → chest), its up the rest of hips − feet; a
    # person's up is the spine (hips → neck) and forward the way they face.
    if four_legged:
        forward = chest[0] - hips[0]
        forward /= max(np.linalg.norm(forward), 1e-9)
        up = hips[0] - ground
        up = up - forward * (up @ forward)
        up /= max(np.linalg.norm(up), 1e-9)
    else:
        lateral = at("left_hip")[0] - at("right_hip")[0]
        lateral /= max(np.linalg.norm(lateral), 1e-9)
        up = chest[0] - hips[0]
        up = up - lateral * (up @ lateral)
        up /= max(np.linalg.norm(up), 1e-9)
        forward = np.cross(lateral, up)
    j = JOINT_INDEX
    rest_pelvis = (rest.joints[j["left_hip"]] + rest.joints[j["right_hip"]]) / 2
    facing = 1.0 if rest.joints[j["nose"], 0] >= rest_pelvis[0] else -1.0
    everything = np.concatenate([posed.positions[0], head[:1]])
    height = float(np.ptp(everything @ up)) or 1.0

    def plane(points: np.ndarray) -> np.ndarray:  # picture coordinates: x right, y down
        return np.stack([facing * (points @ forward), -(points @ up)], axis=-1)

    joints = np.repeat(rest.joints[None].astype(np.float64), count, axis=0)
    for parent, child in LIMB_BONES:  # parents before children
        direction = plane(at(child) - at(parent))
        angle = np.arctan2(direction[:, 0], direction[:, 1])  # 0 = straight down
        angle = np.clip(angle, -MAX_LEG_SWING, MAX_LEG_SWING)
        length = np.linalg.norm(rest.joints[j[child]] - rest.joints[j[parent]])
        joints[:, j[child]] = joints[:, j[parent]] + length * np.stack(
            [np.sin(angle), np.cos(angle)], axis=1
        )
    # The head turns about the withers by the clip's change of neck → head direction.
    neck = at("neck") if posed.found.get("neck") is not None else chest
    head_dir = plane(head - neck)
    turn = np.arctan2(head_dir[:, 1], head_dir[:, 0])
    turn = np.unwrap(turn - turn[0])
    withers = (rest.joints[j["left_shoulder"]] + rest.joints[j["right_shoulder"]]) / 2
    cos, sin = np.cos(turn)[:, None], np.sin(turn)[:, None]
    for name in HEAD_JOINTS:
        relative = rest.joints[j[name]] - withers
        joints[:, j[name]] = withers + np.concatenate(
            [relative[0] * cos - relative[1] * sin, relative[0] * sin + relative[1] * cos], axis=1
        )
    unit = rest.subject_height
    offsets = np.clip((joints - rest.joints[None]) / unit, -MAX_JOINT_OFFSET, MAX_JOINT_OFFSET)
    travel = plane(hips - hips[:1]) / height
    # Seen from the side a clip's forward travel (a leap of a body length) would carry the
    # animal out of the picture: the drift from the first frame to the last is taken out,
    # the bob and the sway within the clip stay.
    travel[:, 0] -= np.linspace(0.0, travel[-1, 0], count)
    sequence = np.repeat(empty_z()[None], count, axis=0)
    set_joint_offsets(sequence, offsets)
    travel = np.clip(travel, -SIDE_TRAVEL, SIDE_TRAVEL)
    sequence[:, ROOT_TX] = travel[:, 0]
    sequence[:, ROOT_TY] = travel[:, 1]
    return np.stack([validate_z(z) for z in sequence])


LOOP_SHARE = 0.25  # the share of a clip's frames that ease back into its first pose


def loop_clip(z_sequence: np.ndarray) -> np.ndarray:
    """The sequence with its last quarter eased into its first pose, so a GIF that plays it
    in a loop does not jump from the clip's last pose to its first (a clip that already ends
    where it starts barely changes). Smoothstep weights: the last frame sits one small step
    before the first."""
    count = len(z_sequence)
    if count < 4:
        return z_sequence
    tail = max(2, round(LOOP_SHARE * count))
    share = np.arange(1, tail + 1) / (tail + 1)
    weight = (share * share * (3 - 2 * share))[:, None]
    looped = np.array(z_sequence, dtype=np.float32, copy=True)
    looped[-tail:] = (1 - weight) * looped[-tail:] + weight * looped[0]
    return np.stack([validate_z(z) for z in looped])
