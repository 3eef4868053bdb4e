"""What every generator shares: options, the mesh prior, windows over a long sequence.

A generator turns a prepared scene (engine.render / engine.deform) and a z sequence into
frames. The mesh renderer is the motion prior of the generative modes: its frames are
diffusion's init video (img2img), its posed joints are the OpenPose control, its cut-out of
the reference is the identity image. Generative backends denoise windows of frames at a
time; consecutive windows overlap by a share of a window (``temporal_strength``) and are
cross-faded there, so a long video has no seam where one window ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from char_pipeline.engine.generators.openpose import draw_pose
from char_pipeline.engine.render import Renderer, posed_joints
from char_pipeline.engine.renderers import playable_sequence

Layers = tuple[np.ndarray, np.ndarray, float | None]  # frame, subject alpha, torn share
# Kinds whose rig is a human skeleton: their pose map is a real OpenPose body. Animals and
# objects would get a human stick figure drawn over them, so their control is the mesh.
POSE_KINDS = (None, "person", "portrait", "figure")
DEFAULT_PROMPT = "the same character as in the reference image, consistent appearance, best quality"
DEFAULT_NEGATIVE = "blurry, deformed, extra limbs, low quality, watermark, text"


@dataclass(frozen=True)
class GenerationOptions:
    """What a request may tune; None takes the backend's documented default."""

    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int = 0
    identity_strength: float | None = None  # diffusion: IP-Adapter scale
    temporal_strength: float | None = None  # window overlap share (and z smoothing upstream)
    steps: int | None = None
    guidance_scale: float | None = None
    strength: float | None = None  # diffusion: img2img denoising strength over the mesh frames


@dataclass
class Prior:
    """The mesh renderer's take on a sequence: what the generative modes start from."""

    frames: list[np.ndarray]
    alphas: list[np.ndarray]
    torn: list[float | None]
    poses: list[np.ndarray]
    reference: np.ndarray  # the placed cut-out over white, cropped to the subject (RGB)
    pose_control: bool  # False for kinds without a human skeleton (animals, objects)


def render_layers(renderer: Renderer, scene, played: np.ndarray) -> Iterator[Layers]:
    """The renderer's frames of a sequence as it plays it (``played``: playable_sequence)."""
    measured = getattr(renderer, "render_measured", None)  # renderers with a mesh
    for z_t in played:
        if measured is not None:
            yield measured(scene, z_t)
        else:
            frame, alpha = renderer.render_layers(scene, z_t)
            yield frame, alpha, None


def mesh_prior(renderer: Renderer, scene, z_sequence: np.ndarray) -> Prior:
    frames, alphas, torn, poses = [], [], [], []
    played = playable_sequence(renderer, scene, z_sequence)
    for z_t, (frame, alpha, share) in zip(
        played, render_layers(renderer, scene, played), strict=True
    ):
        frames.append(frame)
        alphas.append(alpha)
        torn.append(share)
        poses.append(draw_pose(posed_joints(scene, z_t), scene.width, scene.height))
    return Prior(
        frames,
        alphas,
        torn,
        poses,
        reference_cutout(scene.subject),
        getattr(scene, "subject_kind", None) in POSE_KINDS,
    )


def reference_cutout(subject: np.ndarray) -> np.ndarray:
    """The placed subject (premultiplied RGBA) over white, cropped to its box: the identity
    image IP-Adapter and VACE see, without the background that is not the character."""
    alpha = subject[..., 3:4].astype(np.float32) / 255.0
    over_white = subject[..., :3].astype(np.float32) + 255.0 * (1.0 - alpha)
    ys, xs = np.nonzero(subject[..., 3] > 8)
    if len(xs) == 0:
        return np.clip(over_white, 0, 255).astype(np.uint8)
    crop = over_white[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return np.clip(crop, 0, 255).astype(np.uint8)


def fit_size(width: int, height: int, multiple: int) -> tuple[int, int]:
    """The generated size: the frame's, rounded down to what the model's latents divide."""
    return max(multiple, width // multiple * multiple), max(multiple, height // multiple * multiple)


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width < image.shape[1]
    return cv2.resize(
        image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    )


def window_overlap(window: int, temporal_strength: float | None) -> int:
    """Frames two consecutive windows share: half a window at temporal_strength 1 (0.5 by
    default), none at 0."""
    strength = 0.5 if temporal_strength is None else float(np.clip(temporal_strength, 0.0, 1.0))
    return min(window - 1, round(window * 0.5 * strength))


def windowed(
    count: int,
    window: int,
    overlap: int,
    run: Callable[[int, int], np.ndarray],
) -> Iterator[np.ndarray]:
    """Frames 0..count-1, generated ``window`` at a time by ``run(start, end)`` (→ (n, H, W, 3)
    uint8), consecutive windows sharing ``overlap`` frames that are cross-faded linearly.
    Frames are yielded as soon as no later window touches them."""
    pending: dict[int, tuple[np.ndarray, float]] = {}
    start, emitted = 0, 0
    while True:
        end = min(start + window, count)
        frames = run(start, end).astype(np.float32)
        shared = overlap if start > 0 else 0  # with the previous window: fades in
        tail = overlap if end < count else 0  # with the next window: fades out
        for offset, frame in enumerate(frames):
            index = start + offset
            weight = (offset + 1) / (shared + 1) if offset < shared else 1.0
            if offset >= len(frames) - tail:
                weight *= (len(frames) - offset) / (tail + 1)
            total, weights = pending.get(index, (0.0, 0.0))
            pending[index] = (total + weight * frame, weights + weight)
        next_start = count if end == count else end - overlap
        while emitted < next_start:
            total, weights = pending.pop(emitted)
            yield np.clip(np.rint(total / weights), 0, 255).astype(np.uint8)
            emitted += 1
        if end == count:
            return
        start = next_start


class MeshGenerator:
    """Mode 'gan': the mesh (or warp) renderer itself, one pass per frame, on the CPU."""

    mode = "gan"

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer

    def generate(
        self, scene, z_sequence: np.ndarray, options: GenerationOptions | None = None
    ) -> Iterator[Layers]:
        return render_layers(
            self.renderer, scene, playable_sequence(self.renderer, scene, z_sequence)
        )

    def report(self) -> dict:
        return {
            "backend": f"{self.renderer.name} renderer",
            "device": "cpu",
            "model_files": "none (geometry: ARAP mesh deformation of the reference's pixels)"
            if self.renderer.name == "mesh"
            else "none (thin-plate-spline warp of the reference's pixels)",
        }


def cast_layers(renderer: Renderer, scenes: list, z_sequence: np.ndarray) -> Iterator[Layers]:
    """Several characters in one frame (a cast): each scene holds one character in its slot
    over the same background; every character plays the sequence as its own mesh allows
    (damped per character), and the frames are composited left to right by coverage."""
    played = [playable_sequence(renderer, scene, z_sequence) for scene in scenes]
    for index in range(len(z_sequence)):
        frame, alpha = renderer.render_layers(scenes[0], played[0][index])
        out = frame.astype(np.float32)
        coverage = alpha.astype(np.float32)
        for scene, sequence in zip(scenes[1:], played[1:], strict=True):
            member, member_alpha = renderer.render_layers(scene, sequence[index])
            weight = member_alpha.astype(np.float32)[..., None] / 255.0
            out = weight * member + (1.0 - weight) * out
            coverage = np.maximum(coverage, member_alpha)
        yield np.clip(np.rint(out), 0, 255).astype(np.uint8), coverage.astype(np.uint8), None
