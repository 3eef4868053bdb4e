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


def retarget(clip: Clip, rest: RestPose, *, fps: float, steps: int | None = None) -> np.ndarray:
    """The clip as a (T, 64) z sequence for a character whose rest pose is ``rest``.

    T = the clip's duration at ``fps`` (or ``steps`` frames spread over the clip)."""
    if fps <= 0:
        raise MotionClipError("fps must be positive.")
    found = {coco: clip.find(names) for coco, names in BVH_JOINTS.items()}
    missing = [coco for coco, index in found.items() if index is None and coco != "neck"]
    if missing:
        raise MotionClipError(
            "The clip's skeleton lacks joints the retargeting needs: "
            + ", ".join(f"{coco} ({'/'.join(BVH_JOINTS[coco])})" for coco in missing),
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

    def at(coco: str) -> np.ndarray:
        return positions[:, found[coco]]

    head_end = ends[:, found["head"]]
    head = head_end if np.isfinite(head_end).all() else at("head")
    hips = (at("left_hip") + at("right_hip")) / 2
    neck = (at("left_shoulder") + at("right_shoulder")) / 2
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
