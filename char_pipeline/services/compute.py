"""Compute types (the seed's X-GPU-Type), their limits, and what a backend reports."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from char_pipeline.engine.errors import InvalidInputError, ResourceExhaustedError
from char_pipeline.engine.render import parse_resolution
from char_pipeline.engine.version import RENDER_VERSION

# Largest frame per compute type (the seed's FAQ Q6): 1080p on shared GPUs, 4K on a100.
GPU_MAX_PIXELS = {"v100": 1920 * 1080, "t4": 1920 * 1080, "a100": 3840 * 2160}
GPU_MAX_SIDE = {"v100": 1920, "t4": 1920, "a100": 3840}
# Frames × pixels a single job may render (the seed's FAQ Q7: too many high-res frames).
GPU_PIXEL_BUDGET = {"v100": 3000 * 1280 * 720, "t4": 3000 * 1280 * 720, "a100": 3000 * 1920 * 1080}


def gpu_settings(gpu_type: str | None, instance_count: str | None) -> tuple[str, int]:
    gpu = (gpu_type or "v100").strip().lower()
    if gpu not in GPU_MAX_PIXELS:
        raise InvalidInputError(
            f"X-GPU-Type must be one of v100, a100, t4; got {gpu_type!r}.", header="X-GPU-Type"
        )
    try:
        count = int(instance_count) if instance_count is not None else 1
    except ValueError:
        count = 0
    if not 1 <= count <= 4:
        raise InvalidInputError(
            f"X-Instance-Count must be an integer from 1 to 4; got {instance_count!r}.",
            header="X-Instance-Count",
        )
    return gpu, count


def check_resolution(resolution: str, gpu: str) -> tuple[int, int]:
    width, height = parse_resolution(resolution, max_pixels=GPU_MAX_PIXELS["a100"])
    if width * height > GPU_MAX_PIXELS[gpu] or max(width, height) > GPU_MAX_SIDE[gpu]:
        raise ResourceExhaustedError(
            f"{resolution} does not fit on {gpu}: shared types go up to 1920x1080; request X-GPU-Type: a100 for up to 3840x2160.",
            resolution=resolution,
            gpu_type=gpu,
        )
    return width, height


def check_budget(frames: int, width: int, height: int, gpu: str) -> None:
    """Frames × pixels one job may render on a compute type (the seed's FAQ Q7)."""
    if frames * width * height > GPU_PIXEL_BUDGET[gpu]:
        raise ResourceExhaustedError(
            f"{frames} frames at {width}x{height} exceed the {gpu} budget; reduce the resolution or the frames, split the video, or use X-GPU-Type: a100.",
            frames=frames,
            resolution=f"{width}x{height}",
            gpu_type=gpu,
        )


def check_even_size(width: int, height: int) -> None:
    """MP4 here is H.264 yuv420p, whose chroma planes need an even width and height."""
    if width % 2 or height % 2:
        raise InvalidInputError(
            f"MP4 (H.264, yuv420p) needs an even width and height; got {width}x{height}.",
            field="resolution",
        )


def etag_for(kind: str, reference_version: str, fields: dict[str, Any]) -> str:
    """The ETag and cache key of a render: everything that changes its bytes — the request's
    fields, the reference as processed (``References.version``) and the renderers' version."""
    canonical = json.dumps(
        {"kind": kind, "reference": reference_version, "engine": RENDER_VERSION, **fields},
        sort_keys=True,
        separators=(",", ":"),
    )
    return "g" + hashlib.sha256(canonical.encode()).hexdigest()[:40]
