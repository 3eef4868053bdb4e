"""One call from a reference image to a video: the engine without Dagster or a server."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from char_pipeline.engine.encode import VideoInfo, VideoWriter, probe_video
from char_pipeline.engine.images import load_reference_image
from char_pipeline.engine.render import Character, RenderSettings, parse_resolution
from char_pipeline.engine.renderers import get_renderer, playable_sequence
from char_pipeline.engine.rig import Rig, build_rig
from char_pipeline.engine.segmentation import SubjectMask, segment_subject


def prepare_character(image_bytes: bytes) -> Character:
    """Decode, segment and rig a reference image (skeleton + mesh)."""
    reference = load_reference_image(image_bytes)
    mask = segment_subject(reference)
    rig = build_rig(reference.rgb, mask.soft, mask.binary, mask.bbox, mask_source=mask.source)
    return character_from(reference.rgb, mask, rig)


def character_from(rgb: np.ndarray, mask: SubjectMask, rig: Rig) -> Character:
    """The renderers' view of a segmented, rigged reference."""
    return Character(
        rgb,
        mask.soft,
        mask.bbox,
        rig.rest,
        mask.source,
        rig.kind,
        rig.mesh,
        rig.subject_kind,
        rig.face_box,
    )


def render_video(
    character: Character,
    z_sequence: np.ndarray,
    output: str | os.PathLike[str],
    *,
    resolution: str = "720x720",
    fps: int = 24,
    renderer: str = "mesh",
) -> VideoInfo:
    """Render ``z_sequence`` and stream it into an MP4 or GIF (by ``output``'s suffix)."""
    width, height = parse_resolution(resolution)
    backend = get_renderer(renderer)
    scene = backend.prepare(character, RenderSettings(width=width, height=height))
    video_format = Path(output).suffix.lstrip(".").lower()
    with VideoWriter(
        output, video_format=video_format, fps=fps, width=width, height=height
    ) as writer:
        for z_t in playable_sequence(backend, scene, z_sequence):
            writer.write(backend.render(scene, z_t))
    return probe_video(output)
