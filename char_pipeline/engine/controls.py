"""The control-vector layout shared by pose, text and latent controls (docs/controls.md).

Every control type emits vectors ``z_t`` of the same length and meaning, so any
``z_sequence`` can drive any renderer. Offsets are in *subject heights* (the subject's
bounding-box height), image axes: x to the right, y down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from char_pipeline.engine.errors import ControlVectorError, InvalidInputError, KeypointError

COCO_JOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
JOINT_INDEX = {name: i for i, name in enumerate(COCO_JOINTS)}
NUM_JOINTS = len(COCO_JOINTS)

Z_DIM = 64
JOINT_OFFSETS = slice(0, 2 * NUM_JOINTS)  # (dx, dy) per joint, subject heights
JOINT_DEPTHS = slice(34, 34 + NUM_JOINTS)  # depth per joint, subject heights, + toward camera
ROOT_TX = 51  # root translation, subject heights
ROOT_TY = 52
ROOT_LOG_SCALE = 53  # uniform scale = exp(value)
ROOT_ROTATION = 54  # radians, positive turns counter-clockwise on screen
ROOT_LOG_SQUASH_X = 55  # horizontal scale = exp(value): turning, spinning
RESERVED = slice(56, 64)  # must be zero in layout v1; kept for style controls

# Bounds beyond which a vector cannot be a plausible motion of the same subject.
MAX_JOINT_OFFSET = 2.0
MAX_ROOT_TRANSLATION = 3.0
MAX_LOG_SCALE = 1.5
MAX_ROTATION = 2 * np.pi
MIN_KEYPOINTS = 2

# Canonical skeleton in subject heights, origin at the box's top centre. A front-facing
# subject's left side is on the image's right, as in COCO.
CANONICAL_SKELETON = np.array(
    [
        [0.00, 0.08],
        [0.03, 0.06],
        [-0.03, 0.06],
        [0.06, 0.08],
        [-0.06, 0.08],
        [0.13, 0.21],
        [-0.13, 0.21],
        [0.17, 0.36],
        [-0.17, 0.36],
        [0.19, 0.50],
        [-0.19, 0.50],
        [0.08, 0.53],
        [-0.08, 0.53],
        [0.09, 0.74],
        [-0.09, 0.74],
        [0.09, 0.95],
        [-0.09, 0.95],
    ],
    dtype=np.float64,
)


@dataclass(frozen=True)
class RestPose:
    """Where the joints sit in the reference image, in pixels, and the subject's height."""

    joints: np.ndarray  # (17, 2) pixels in the reference image
    subject_height: float  # pixels
    image_size: tuple[int, int]  # (width, height)

    def to_json(self) -> dict[str, Any]:
        return {
            "joints": {
                name: [float(x), float(y)]
                for name, (x, y) in zip(COCO_JOINTS, self.joints, strict=True)
            },
            "subject_height": self.subject_height,
            "image_size": list(self.image_size),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RestPose:
        joints = np.array([data["joints"][name] for name in COCO_JOINTS], dtype=np.float64)
        return cls(joints, float(data["subject_height"]), tuple(data["image_size"]))


def template_rest_pose(bbox: tuple[int, int, int, int], image_size: tuple[int, int]) -> RestPose:
    """The canonical skeleton stretched over the subject's bounding box.

    This is the rest pose of renderer v1 for any character; a rigged renderer replaces it
    with a detected or mask-derived skeleton.
    """
    x0, y0, x1, y1 = bbox
    height = float(y1 - y0)
    width = float(x1 - x0)
    # Canonical x spans about ±0.19 subject heights; stretch it to the box width.
    x_scale = width / 0.5 if width < 0.5 * height else height
    joints = np.empty_like(CANONICAL_SKELETON)
    joints[:, 0] = (x0 + x1) / 2.0 + CANONICAL_SKELETON[:, 0] * x_scale
    joints[:, 1] = y0 + CANONICAL_SKELETON[:, 1] * height
    return RestPose(joints=joints, subject_height=height, image_size=image_size)


def empty_z() -> np.ndarray:
    return np.zeros(Z_DIM, dtype=np.float32)


def set_joint_offsets(z: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    z[..., JOINT_OFFSETS] = np.asarray(offsets).reshape(*z.shape[:-1], 2 * NUM_JOINTS)
    return z


def joint_offsets(z: np.ndarray) -> np.ndarray:
    """(..., 17, 2) joint offsets of one vector or a sequence."""
    return np.asarray(z)[..., JOINT_OFFSETS].reshape(*np.shape(z)[:-1], NUM_JOINTS, 2)


def validate_z(z: Sequence[float] | np.ndarray, *, index: int | None = None) -> np.ndarray:
    """Check one control vector against layout v1 and return it as float32."""
    where = "" if index is None else f" at frame {index}"
    try:
        vector = np.asarray(z, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ControlVectorError(f"The control vector{where} must be a list of numbers.") from exc
    if vector.ndim != 1 or vector.shape[0] != Z_DIM:
        raise ControlVectorError(
            f"The control vector{where} has length {vector.size}; layout v1 needs {Z_DIM} "
            "numbers (see docs/controls.md). Generate it with a /v1/control endpoint.",
            expected_length=Z_DIM,
            actual_length=int(vector.size),
            frame_index=index,
        )
    if not np.all(np.isfinite(vector)):
        raise ControlVectorError(
            f"The control vector{where} contains NaN or infinity.", frame_index=index
        )
    problems = []
    if np.abs(vector[JOINT_OFFSETS]).max() > MAX_JOINT_OFFSET:
        problems.append(f"a joint offset exceeds {MAX_JOINT_OFFSET} subject heights")
    if np.abs(vector[[ROOT_TX, ROOT_TY]]).max() > MAX_ROOT_TRANSLATION:
        problems.append(f"the root translation exceeds {MAX_ROOT_TRANSLATION} subject heights")
    if np.abs(vector[[ROOT_LOG_SCALE, ROOT_LOG_SQUASH_X]]).max() > MAX_LOG_SCALE:
        problems.append(f"a log-scale exceeds ±{MAX_LOG_SCALE}")
    if abs(vector[ROOT_ROTATION]) > MAX_ROTATION:
        problems.append("the rotation exceeds one full turn")
    if np.abs(vector[RESERVED]).max() > 0:
        problems.append("reserved entries 56..63 must be zero in layout v1")
    if problems:
        raise ControlVectorError(
            f"The control vector{where} is out of range: " + "; ".join(problems) + ".",
            frame_index=index,
        )
    return vector.astype(np.float32)


def validate_z_sequence(
    z_sequence: Sequence[Sequence[float]] | np.ndarray, *, max_frames: int | None = None
) -> np.ndarray:
    """Check a (T, 64) sequence; returns float32."""
    if z_sequence is None or len(z_sequence) == 0:
        raise ControlVectorError("The control sequence is empty; it needs at least one z_t.")
    if max_frames is not None and len(z_sequence) > max_frames:
        raise ControlVectorError(
            f"The control sequence has {len(z_sequence)} frames; the limit is {max_frames}.",
            max_frames=max_frames,
        )
    return np.stack([validate_z(z, index=i) for i, z in enumerate(z_sequence)])


# ---------------------------------------------------------------------------------------
# Pose control: keypoints in the reference image's normalised coordinates → z.


@dataclass(frozen=True)
class Keypoint:
    """One joint: x, y in 0..1 of the reference image; z optional (same units as x)."""

    x: float
    y: float
    z: float | None = None
    confidence: float | None = None
    name: str | None = None
    index: int | None = None


MIN_CONFIDENCE = 0.3


def _joint_index(keypoint: Keypoint, position: int) -> int:
    if keypoint.name is not None:
        key = keypoint.name.strip().lower().replace(" ", "_").replace("-", "_")
        if key not in JOINT_INDEX:
            raise KeypointError(
                f"Unknown joint name {keypoint.name!r}; use one of the COCO-17 names: "
                + ", ".join(COCO_JOINTS),
                joint=keypoint.name,
            )
        return JOINT_INDEX[key]
    if keypoint.index is not None:
        if not 0 <= keypoint.index < NUM_JOINTS:
            raise KeypointError(
                f"Joint index {keypoint.index} is outside 0..{NUM_JOINTS - 1} (COCO-17).",
                index=keypoint.index,
            )
        return keypoint.index
    if position >= NUM_JOINTS:
        raise KeypointError(f"Got more than {NUM_JOINTS} unnamed keypoints (COCO-17 order).")
    return position


# Each joint's kinematic parent (None: a root of the chain). A joint nobody placed follows
# its parent's offset: a missing wrist moves with its elbow; a missing shoulder stays at rest.
KINEMATIC_PARENT: dict[str, str | None] = {
    "nose": None,
    "left_eye": "nose",
    "right_eye": "nose",
    "left_ear": "left_eye",
    "right_ear": "right_eye",
    "left_shoulder": None,
    "right_shoulder": None,
    "left_elbow": "left_shoulder",
    "right_elbow": "right_shoulder",
    "left_wrist": "left_elbow",
    "right_wrist": "right_elbow",
    "left_hip": None,
    "right_hip": None,
    "left_knee": "left_hip",
    "right_knee": "right_hip",
    "left_ankle": "left_knee",
    "right_ankle": "right_knee",
}


def _fill_from_parents(offsets: np.ndarray, depths: np.ndarray, given: np.ndarray) -> None:
    """In place: every joint not given takes its nearest given ancestor's offset and depth,
    or stays at rest (0) when no ancestor was given. COCO order lists parents first."""
    for joint, name in enumerate(COCO_JOINTS):
        if given[joint]:
            continue
        parent = KINEMATIC_PARENT[name]
        while parent is not None and not given[JOINT_INDEX[parent]]:
            parent = KINEMATIC_PARENT[parent]
        if parent is not None:
            offsets[joint] = offsets[JOINT_INDEX[parent]]
            depths[joint] = depths[JOINT_INDEX[parent]]


def encode_pose(keypoints: Sequence[Keypoint], rest: RestPose) -> np.ndarray:
    """Encode one frame of keypoints as a z vector relative to the reference's rest pose.

    A joint that is missing or below confidence 0.3 follows its nearest placed ancestor in
    the skeleton (a wrist its elbow), else stays at rest. Unnamed keypoints are read in
    COCO-17 order.
    """
    offsets, depths, given = _encode_frame(keypoints, rest)
    _fill_from_parents(offsets, depths, given)
    return _pose_z(offsets, depths)


def _pose_z(offsets: np.ndarray, depths: np.ndarray) -> np.ndarray:
    z = empty_z()
    set_joint_offsets(z, offsets)
    z[JOINT_DEPTHS] = depths
    return validate_z(z)


def _encode_frame(
    keypoints: Sequence[Keypoint], rest: RestPose
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame's joint offsets (subject heights), depths and which joints were placed."""
    if len(keypoints) < MIN_KEYPOINTS:
        raise KeypointError(
            f"Got {len(keypoints)} keypoint(s); at least {MIN_KEYPOINTS} are needed.",
            count=len(keypoints),
        )
    width, height = rest.image_size
    offsets = np.zeros((NUM_JOINTS, 2))
    depths = np.zeros(NUM_JOINTS)
    given = np.zeros(NUM_JOINTS, dtype=bool)
    seen: set[int] = set()
    for position, keypoint in enumerate(keypoints):
        joint = _joint_index(keypoint, position)
        if joint in seen:
            raise KeypointError(
                f"Joint {COCO_JOINTS[joint]!r} is given twice.", joint=COCO_JOINTS[joint]
            )
        seen.add(joint)
        values = [keypoint.x, keypoint.y] + ([keypoint.z] if keypoint.z is not None else [])
        if not all(isinstance(v, int | float) and np.isfinite(v) for v in values):
            raise KeypointError(
                f"Keypoint {COCO_JOINTS[joint]!r} has a NaN or non-numeric coordinate.",
                joint=COCO_JOINTS[joint],
            )
        if not (0.0 <= keypoint.x <= 1.0 and 0.0 <= keypoint.y <= 1.0):
            raise KeypointError(
                f"Keypoint {COCO_JOINTS[joint]!r} is at ({keypoint.x}, {keypoint.y}); x and y "
                "must be normalised to 0..1 of the reference image.",
                joint=COCO_JOINTS[joint],
            )
        if keypoint.z is not None and abs(keypoint.z) > 1.0:
            raise KeypointError(
                f"Keypoint {COCO_JOINTS[joint]!r} has z={keypoint.z}; use -1..1.",
                joint=COCO_JOINTS[joint],
            )
        if keypoint.confidence is not None:
            if not (np.isfinite(keypoint.confidence) and 0.0 <= keypoint.confidence <= 1.0):
                raise KeypointError(
                    f"Keypoint {COCO_JOINTS[joint]!r} confidence must be in 0..1.",
                    joint=COCO_JOINTS[joint],
                )
            if keypoint.confidence < MIN_CONFIDENCE:
                continue
        pixel = np.array([keypoint.x * width, keypoint.y * height])
        offsets[joint] = (pixel - rest.joints[joint]) / rest.subject_height
        given[joint] = True
        if keypoint.z is not None:
            depths[joint] = keypoint.z * width / rest.subject_height
    return offsets, depths, given


def keypoints_from_json(items: Sequence[dict[str, Any]]) -> list[Keypoint]:
    """Parse keypoint dicts as the API and keypoint files spell them."""
    keypoints = []
    for position, item in enumerate(items):
        if not isinstance(item, dict) or "x" not in item or "y" not in item:
            raise KeypointError(
                f"Keypoint {position} needs numeric 'x' and 'y'.", position=position
            )
        try:
            keypoints.append(
                Keypoint(
                    x=float(item["x"]),
                    y=float(item["y"]),
                    z=None if item.get("z") is None else float(item["z"]),
                    confidence=None
                    if item.get("confidence") is None
                    else float(item["confidence"]),
                    name=item.get("name"),
                    index=None if item.get("index") is None else int(item["index"]),
                )
            )
        except (TypeError, ValueError) as exc:
            raise KeypointError(
                f"Keypoint {position} has a non-numeric value.", position=position
            ) from exc
    return keypoints


LOOP_TOLERANCE = 0.05  # subject heights: first and last frames this close make a loop


def encode_pose_sequence(frames: Sequence[Sequence[Keypoint]], rest: RestPose) -> np.ndarray:
    """Encode a keypoint track. A joint missing from some frames (a detector that blinks)
    is interpolated in time between the frames that place it (held before the first and
    after the last, or around the end of a track that loops); a joint no frame places follows its nearest placed ancestor; else it
    stays at rest. (It used to take the nearest placed joint's offset frame by frame, so a
    blinking elbow made the arm pop.)"""
    if not frames:
        raise KeypointError("The keypoint sequence is empty.")
    encoded = [_encode_frame(frame, rest) for frame in frames]
    offsets = np.stack([e[0] for e in encoded])  # (T, 17, 2)
    depths = np.stack([e[1] for e in encoded])  # (T, 17)
    given = np.stack([e[2] for e in encoded])  # (T, 17)
    # A track that ends where it starts is a loop: a gap across its end wraps around (held
    # values at both ends made a seam at every loop of the demo's dance track).
    both = given[0] & given[-1]
    looped = (
        len(frames) > 2
        and both.any()
        and bool(
            np.linalg.norm(offsets[0, both] - offsets[-1, both], axis=1).mean() < LOOP_TOLERANCE
        )
    )
    period = len(frames) if looped else None
    for joint in range(NUM_JOINTS):
        placed = np.flatnonzero(given[:, joint])
        if 0 < len(placed) < len(frames):
            missing = np.flatnonzero(~given[:, joint])
            for axis in range(2):
                offsets[missing, joint, axis] = np.interp(
                    missing, placed, offsets[placed, joint, axis], period=period
                )
            depths[missing, joint] = np.interp(
                missing, placed, depths[placed, joint], period=period
            )
            given[missing, joint] = True
    for t in range(len(frames)):
        _fill_from_parents(offsets[t], depths[t], given[t])
    return np.stack([_pose_z(offsets[t], depths[t]) for t in range(len(frames))])


def rest_keypoints_normalised(rest: RestPose) -> np.ndarray:
    width, height = rest.image_size
    return rest.joints / np.array([width, height])


# ---------------------------------------------------------------------------------------
# Latent control: seeded, temporally correlated noise decoded into motion.

LATENT_CHANNELS = 12
LATENT_SMOOTHING_FRAMES = 4.0


def _latent_basis() -> np.ndarray:
    """Each latent channel moves one interpretable part of the body (docs/controls.md)."""
    basis = np.zeros((LATENT_CHANNELS, Z_DIM), dtype=np.float64)

    def joints(channel: int, moves: dict[str, tuple[float, float]]) -> None:
        for name, (dx, dy) in moves.items():
            basis[channel, 2 * JOINT_INDEX[name]] = dx
            basis[channel, 2 * JOINT_INDEX[name] + 1] = dy

    joints(0, {"left_elbow": (0.06, -0.08), "left_wrist": (0.10, -0.20)})  # left arm raise
    joints(1, {"right_elbow": (-0.06, -0.08), "right_wrist": (-0.10, -0.20)})  # right arm raise
    joints(2, {"left_wrist": (-0.08, -0.05)})  # left forearm bend
    joints(3, {"right_wrist": (0.08, -0.05)})  # right forearm bend
    joints(4, {"left_knee": (0.03, -0.04), "left_ankle": (0.05, -0.08)})  # left leg lift
    joints(5, {"right_knee": (-0.03, -0.04), "right_ankle": (-0.05, -0.08)})  # right leg lift
    head = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
    joints(6, {name: (0.03, 0.0) for name in head})  # head tilt / turn
    joints(7, {name: (0.04, 0.0) for name in (*head, "left_shoulder", "right_shoulder")})  # lean
    basis[8, ROOT_TY] = 0.03  # bob
    basis[9, ROOT_TX] = 0.05  # sway
    basis[10, ROOT_ROTATION] = 0.06  # rock
    basis[11, ROOT_LOG_SCALE] = 0.02  # breathe
    return basis


LATENT_BASIS = _latent_basis()


def latent_noise(
    length: int, seed: int | None, distribution: str = "gaussian", *, loop: bool = True
) -> np.ndarray:
    """(length, 12) unit-variance noise, smoothed over ~4 frames so motion is continuous.

    ``loop``: the smoothing wraps around the clip (circular convolution), so the last frame
    steps to the first like any frame to the next — a GIF or a looped video has no seam (the
    open sequence ended 2–3× further from its first frame than any step between frames).
    """
    if length < 1:
        raise InvalidInputError("length must be at least 1.")
    if distribution not in ("gaussian", "uniform"):
        raise InvalidInputError(
            f"Unknown distribution {distribution!r}; use 'gaussian' or 'uniform'.",
            distribution=distribution,
        )
    rng = np.random.default_rng(seed)
    pad = int(3 * LATENT_SMOOTHING_FRAMES)
    shape = (length if loop else length + 2 * pad, LATENT_CHANNELS)
    if distribution == "gaussian":
        white = rng.standard_normal(shape)
    else:
        white = rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), shape)
    if loop:  # wrap the clip around itself (np.resize repeats it when it is shorter than pad)
        before = np.resize(white[::-1], (pad, LATENT_CHANNELS))[::-1]
        white = np.concatenate([before, white, np.resize(white, (pad, LATENT_CHANNELS))])
    taps = np.arange(-pad, pad + 1)
    kernel = np.exp(-0.5 * (taps / LATENT_SMOOTHING_FRAMES) ** 2)
    kernel /= np.sqrt(np.sum(kernel**2))  # keeps unit variance after filtering
    smooth = np.stack(
        [np.convolve(white[:, c], kernel, mode="valid") for c in range(LATENT_CHANNELS)], axis=1
    )
    return smooth[:length]


def decode_latent(noise: np.ndarray) -> np.ndarray:
    """Map latent channels to z vectors; tanh keeps every motion within a plausible range."""
    return (np.tanh(noise / 1.5) * 1.5 @ LATENT_BASIS).astype(np.float32)


def latent_sequence(
    length: int, seed: int | None = None, distribution: str = "gaussian", *, loop: bool = True
) -> np.ndarray:
    """A deterministic (for a given seed) (length, 64) latent-driven control sequence; a
    seamless loop unless ``loop`` is False."""
    return decode_latent(latent_noise(length, seed, distribution, loop=loop))


# Head height as a fraction of a standing person's height (classic 7.5-heads canon).
HEADS_PER_PERSON = 7.5


def face_rest_pose(
    face: tuple[int, int, int, int], bbox: tuple[int, int, int, int], image_size: tuple[int, int]
) -> RestPose:
    """A person's rest pose from a detected face box (x, y, w, h).

    The body is extrapolated from the face with standard proportions, so a portrait gets its
    shoulders and arms where they really are even though legs fall outside the picture.
    """
    fx, fy, fw, fh = face
    head_height = 1.25 * fh  # a face detector's box misses the crown and chin
    person_height = HEADS_PER_PERSON * head_height
    top = fy - 0.2 * fh
    centre_x = fx + fw / 2.0
    joints = np.empty_like(CANONICAL_SKELETON)
    joints[:, 0] = centre_x + CANONICAL_SKELETON[:, 0] * person_height
    joints[:, 1] = (
        top + (CANONICAL_SKELETON[:, 1] - CANONICAL_SKELETON[0, 1]) * person_height + 0.55 * fh
    )
    return RestPose(joints=joints, subject_height=person_height, image_size=image_size)


def keypoints_from_z(z_sequence: np.ndarray, rest: RestPose) -> list[list[dict[str, Any]]]:
    """Absolute keypoints (as a pose client would send them) for each z of a sequence.

    Joint offsets and root translation/scale are applied; joints outside the image are left
    out, as a pose estimator would.
    Used to make pose-keypoint tracks from the motion library (the demo's pose control).
    """
    width, height = rest.image_size
    frames = []
    pivot = rest.joints[[JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]]].mean(axis=0)
    for z in np.asarray(z_sequence):
        joints = rest.joints + joint_offsets(z) * rest.subject_height
        scale = float(np.exp(z[ROOT_LOG_SCALE]))
        joints = (
            pivot
            + (joints - pivot) * scale
            + np.array([z[ROOT_TX], z[ROOT_TY]]) * rest.subject_height
        )
        normalised = joints / np.array([width, height])
        frames.append(
            [
                {"name": name, "x": round(float(x), 5), "y": round(float(y), 5)}
                for name, (x, y) in zip(COCO_JOINTS, normalised, strict=True)
                if 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0
            ]
        )
    return frames


def smooth_sequence(
    z_sequence: np.ndarray, *, temporal_strength: float | None, pose_smoothness: float | None
) -> np.ndarray:
    """Temporal smoothing of a sequence: the API's temporal_strength and pose_smoothness.

    ``temporal_strength`` (0..1) smooths every entry over up to ±3 frames (Gaussian sigma =
    1.5 × strength frames); ``pose_smoothness`` (0..1) adds the same again on the joint
    offsets only, to damp keypoint jitter. 0 or None leaves the sequence untouched.
    """
    z = np.asarray(z_sequence, dtype=np.float64)
    for strength, columns in ((temporal_strength, slice(None)), (pose_smoothness, JOINT_OFFSETS)):
        if strength is None or strength <= 0 or len(z) < 3:
            continue
        if strength > 1:
            raise InvalidInputError("temporal_strength and pose_smoothness must be within 0..1.")
        sigma = 1.5 * float(strength)
        radius = max(1, round(3 * sigma))
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        taps /= taps.sum()
        padded = np.pad(z[:, columns], ((radius, radius), (0, 0)), mode="edge")
        z[:, columns] = np.stack(
            [np.convolve(padded[:, c], taps, mode="valid") for c in range(padded.shape[1])], axis=1
        )
    return z.astype(np.float32)
