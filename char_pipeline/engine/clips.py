"""A character from a short video clip: the seed's timestamp rules, decoding, the best frame.

The Sora-style characters door (seed 002) takes a video and a "start,end" segment of 1–3 s in a
video of at most 15 s. The segment is decoded with PyAV (whatever container and codec it reads:
MP4, MOV, WebM, …), a few frames are sampled across it, each is segmented, and the frame where
the character shows best becomes the reference: sharp (variance of the Laplacian inside the
subject's box), large (the subject's share of the frame) and centred. The figures of every
sampled frame are kept so a client can see why that frame won.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from char_pipeline.engine.errors import InvalidInputError

MAX_VIDEO_SECONDS = 15.0
MIN_SEGMENT_SECONDS, MAX_SEGMENT_SECONDS = 1.0, 3.0
SAMPLES = 8  # frames scored across the segment
MAX_SIDE = 1280  # sampled frames are scaled down to this before segmentation
_TIMESTAMPS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*$")


class ClipRuleError(InvalidInputError):
    """The clip or its segment breaks one of the seed's rules; ``details['rule']`` names it."""


def parse_timestamps(text: str) -> tuple[float, float]:
    """'1,3' → (1.0, 3.0): integers or decimals, start ≥ 0, 1 s ≤ end − start ≤ 3 s."""
    match = _TIMESTAMPS.match(text) if isinstance(text, str) else None
    if not match:
        if isinstance(text, str) and text.strip().startswith("-"):
            raise ClipRuleError(
                f"timestamps {text!r}: the start cannot be less than 0.",
                field="timestamps",
                rule="start >= 0",
            )
        raise ClipRuleError(
            f"timestamps must be 'start,end' in seconds (integers or decimals), e.g. '1,3'; got {text!r}.",
            field="timestamps",
            rule="format",
        )
    start, end = float(match.group(1)), float(match.group(2))
    length = end - start
    if not MIN_SEGMENT_SECONDS <= length <= MAX_SEGMENT_SECONDS:
        raise ClipRuleError(
            f"timestamps {text!r}: the segment must last from 1 to 3 seconds (end − start = "
            f"{length:g} s).",
            field="timestamps",
            rule="1 <= end - start <= 3",
            segment_seconds=round(length, 3),
        )
    return start, end


@dataclass
class Segment:
    """What was decoded: the video's facts and the sampled frames of the segment."""

    duration_s: float
    fps: float
    width: int
    height: int
    container: str
    codec: str
    frames: list[np.ndarray] = field(default_factory=list)  # RGB
    times: list[float] = field(default_factory=list)


def read_segment(path: str | Path, start: float, end: float, samples: int = SAMPLES) -> Segment:
    """Decode the video, check the seed's length rules, and sample ``samples`` frames evenly
    across [start, end]. Anything PyAV cannot read is a ClipRuleError naming the cause."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ClipRuleError(
            f"The file is not a video this server can decode ({type(exc).__name__}: {exc}). "
            "Send MP4, MOV or WebM.",
            field="url",
            rule="format",
        ) from exc
    with container:
        if not container.streams.video:
            raise ClipRuleError("The file has no video stream.", field="url", rule="format")
        stream = container.streams.video[0]
        duration = _duration(container, stream)
        if (
            container.format.name in ("image2", "gif_pipe")
            or container.format.name.endswith("_pipe")
            or duration <= 0
        ):
            raise ClipRuleError(
                f"The file is a still image ({container.format.name}), not a video. Send MP4, "
                "MOV or WebM.",
                field="url",
                rule="format",
            )
        if duration > MAX_VIDEO_SECONDS + 1e-3:
            raise ClipRuleError(
                f"The video lasts {duration:.2f} s; characters are made from videos of at most "
                f"{MAX_VIDEO_SECONDS:g} s.",
                field="url",
                rule="video <= 15 s",
                duration_s=round(duration, 3),
            )
        if end > duration + 1e-3:
            raise ClipRuleError(
                f"timestamps end at {end:g} s but the video lasts {duration:.2f} s.",
                field="timestamps",
                rule="end <= duration",
                duration_s=round(duration, 3),
            )
        targets = list(np.linspace(start, end, samples + 2)[1:-1])
        rate = stream.average_rate or stream.guessed_rate
        segment = Segment(
            duration_s=round(duration, 3),
            fps=round(float(rate), 3) if rate else 0.0,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            container=container.format.name,
            codec=stream.codec_context.name,
        )
        try:
            for frame in container.decode(stream):
                if frame.time is None or not targets:
                    continue
                if frame.time + 1e-6 >= targets[0]:
                    rgb = _bounded(frame.to_ndarray(format="rgb24"))
                    while targets and frame.time + 1e-6 >= targets[0]:
                        targets.pop(0)
                        segment.frames.append(rgb)
                        segment.times.append(round(float(frame.time), 3))
                if not targets:
                    break
        except av.error.FFmpegError as exc:
            raise ClipRuleError(
                f"The video could not be decoded to the end of the segment ({exc}).",
                field="url",
                rule="format",
            ) from exc
    if not segment.frames:
        raise ClipRuleError(
            "No frame of the video falls in the timestamps' segment.",
            field="timestamps",
            rule="end <= duration",
        )
    return segment


def _duration(container, stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # av.time_base
    return 0.0


def _bounded(rgb: np.ndarray) -> np.ndarray:
    scale = MAX_SIDE / max(rgb.shape[:2])
    if scale >= 1:
        return rgb
    size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class FrameScore:
    time_s: float
    sharpness: float  # variance of the Laplacian inside the subject's box
    area: float  # the subject's share of the frame
    centredness: float  # 1 at the centre, 0 at a corner
    score: float

    def to_json(self) -> dict:
        return {k: round(v, 4) for k, v in self.__dict__.items()}


def score_frames(
    frames: list[np.ndarray], masks: list[np.ndarray], times: list[float]
) -> list[FrameScore]:
    """sharpness × area × centredness per frame (sharpness relative to the sharpest sample)."""
    raw = []
    for rgb, mask in zip(frames, masks, strict=True):
        height, width = mask.shape
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            raw.append((0.0, 0.0, 0.0))
            continue
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        box = grey[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        sharpness = float(cv2.Laplacian(box, cv2.CV_64F).var())
        area = float(len(xs)) / (width * height)
        offset = np.hypot(xs.mean() / width - 0.5, ys.mean() / height - 0.5) / np.hypot(0.5, 0.5)
        raw.append((sharpness, area, float(1.0 - offset)))
    sharpest = max((s for s, _, _ in raw), default=0.0) or 1.0
    return [
        FrameScore(time, sharp, area, centred, (sharp / sharpest) * area * centred)
        for time, (sharp, area, centred) in zip(times, raw, strict=True)
    ]


# A photographic human face: MediaPipe's face detector fires (≥ this score) on a frame whose
# subject is not a drawing on paper. Drawn faces (a marker figure scored 0.72) are segmented
# as drawings and pass, like products and animals (0 on the gift box and the cat).
FACE_POLICY_SCORE = 0.5


def photographic_face(face_score: float | None, mask_source: str) -> bool:
    return bool(face_score) and face_score >= FACE_POLICY_SCORE and mask_source != "drawing"
