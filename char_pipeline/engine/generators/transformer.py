"""Mode 'transformer': Wan 2.1 VACE 1.3B, a video diffusion transformer, over the mesh.

Why this one: it is the smallest open video DiT that diffusers ships with both inputs the
seed's transformer mode needs — a reference image in its context (identity, attended by
every frame's tokens) and a control video — under Apache-2.0, and 1.3B fits a T4 with CPU
offload. The control video is the OpenPose map of each frame's posed joints for kinds with
a human skeleton, and the mesh renderer's own frames for animals and objects (VACE reads a
frame video as a layout hint), so the puppet is the motion prior here too. The prompt (or
the default description) guides appearance. Frames are denoised in windows of 4k+1 (the
VAE's temporal stride), overlapping by ``temporal_strength``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from char_pipeline.engine.generators.base import (
    DEFAULT_NEGATIVE,
    DEFAULT_PROMPT,
    GenerationOptions,
    Layers,
    fit_size,
    mesh_prior,
    resize,
    window_overlap,
    windowed,
)
from char_pipeline.engine.generators.cache import PIPELINES
from char_pipeline.engine.generators.diffusion import apply_memory_policy
from char_pipeline.engine.generators.policy import GenerationPlan, check_limits
from char_pipeline.engine.generators.store import ModelStore
from char_pipeline.engine.render import Renderer

ENTRY = "wan2.1-vace-1.3b"
DEFAULTS = {"steps": 30, "guidance_scale": 5.0, "conditioning_scale": 1.0}


def load_pipeline(folder: Path, plan: GenerationPlan):
    import torch
    from diffusers import WanVACEPipeline

    pipeline = WanVACEPipeline.from_pretrained(
        folder, dtype=getattr(torch, plan.dtype), local_files_only=True
    )
    apply_memory_policy(pipeline, plan, denoiser="transformer")
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


class TransformerGenerator:
    mode = "transformer"

    def __init__(self, renderer: Renderer, store: ModelStore, plan: GenerationPlan) -> None:
        self.renderer = renderer
        self.plan = plan
        self.folder = store.require(ENTRY)

    def check(self, width: int, height: int, frames: int) -> None:
        check_limits(self.plan, self.mode, width, height, frames)

    def generate(
        self, scene, z_sequence: np.ndarray, options: GenerationOptions | None = None
    ) -> Iterator[Layers]:
        import torch
        from PIL import Image

        options = options or GenerationOptions()
        self.check(scene.width, scene.height, len(z_sequence))
        prior = mesh_prior(self.renderer, scene, z_sequence)
        control = prior.poses if prior.pose_control else prior.frames
        window = self.plan.policy.frame_window[self.mode]
        overlap = window_overlap(window, options.temporal_strength)
        key = (self.mode, str(self.folder), self.plan.device, self.plan.dtype, self.plan.policy.memory)  # fmt: skip
        load = lambda: load_pipeline(self.folder, self.plan)  # noqa: E731

        with PIPELINES.use(key, self.plan.policy.concurrency, load) as pipeline:
            factor = pipeline.vae_scale_factor_spatial * pipeline.transformer.config.patch_size[1]
            stride = pipeline.vae_scale_factor_temporal
            width, height = fit_size(scene.width, scene.height, factor)
            reference = Image.fromarray(prior.reference)

            def run(start: int, end: int) -> np.ndarray:
                count = end - start
                padded = -(-(count - 1) // stride) * stride + 1  # frames must be 4k + 1
                frames = control[start:end] + [control[end - 1]] * (padded - count)
                generator = torch.Generator(device="cpu").manual_seed(int(options.seed))
                result = pipeline(
                    video=[Image.fromarray(resize(f, width, height)) for f in frames],
                    reference_images=[reference],
                    conditioning_scale=DEFAULTS["conditioning_scale"],
                    prompt=options.prompt or DEFAULT_PROMPT,
                    negative_prompt=options.negative_prompt or DEFAULT_NEGATIVE,
                    height=height,
                    width=width,
                    num_frames=padded,
                    num_inference_steps=options.steps or DEFAULTS["steps"],
                    guidance_scale=DEFAULTS["guidance_scale"]
                    if options.guidance_scale is None
                    else options.guidance_scale,
                    generator=generator,
                    output_type="np",
                )
                video = np.asarray(result.frames[0], dtype=np.float32)[:count]
                return np.stack(
                    [resize(np.rint(f * 255).astype(np.uint8), scene.width, scene.height) for f in video]
                )  # fmt: skip

            for index, frame in enumerate(windowed(len(control), window, overlap, run)):
                yield frame, prior.alphas[index], prior.torn[index]

    def report(self, options: GenerationOptions | None = None) -> dict:
        options = options or GenerationOptions()
        window = self.plan.policy.frame_window[self.mode]
        return {
            "backend": "Wan 2.1 VACE (video diffusion transformer): reference image + control video",
            "pipeline": "diffusers.WanVACEPipeline",
            "model_files": {ENTRY: str(self.folder)},
            **self.plan.report(),
            "control": "OpenPose maps of the mesh renderer's joints (the mesh frames for animals and objects)",
            "frame_window": window,
            "window_overlap": window_overlap(window, options.temporal_strength),
        }
