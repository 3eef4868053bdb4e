"""Mode 'diffusion': SD 1.5 + ControlNet OpenPose + IP-Adapter + AnimateDiff, over the mesh.

Why these: they are the open models that give the seed's "spatio-temporal diffusion with
identity conditioning" on one consumer GPU, and diffusers ships them as one public pipeline
(``AnimateDiffVideoToVideoControlNetPipeline``): the mesh renderer's frames are its init
video (img2img at ``strength``, so layout and identity start right and diffusion refines
them), each frame's posed joints drawn as an OpenPose map steer ControlNet, IP-Adapter reads
the reference cut-out (``identity_strength`` → adapter scale), and the AnimateDiff motion
module denoises a window of frames together (temporal coherence; windows overlap by
``temporal_strength``). Weights come from the model store (``models pull``).
"""

from __future__ import annotations

import math
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
from char_pipeline.engine.generators.policy import GenerationPlan, check_limits
from char_pipeline.engine.generators.store import MODE_ENTRIES, ModelStore
from char_pipeline.engine.render import Renderer

IP_ADAPTER_WEIGHTS = "ip-adapter_sd15.safetensors"
DEFAULTS = {
    "steps": 25,
    "guidance_scale": 7.5,
    "strength": 0.55,
    "identity_strength": 0.6,
    "controlnet_scale": 1.0,
}


def _variant(folder: Path) -> str | None:
    """'fp16' when the folder holds only the half-precision files (as `models pull` takes)."""
    return "fp16" if any(folder.rglob("*.fp16.safetensors")) else None


def load_pipeline(folders: dict[str, Path], plan: GenerationPlan):
    """The pipeline from the store's folders, with the plan's dtype and memory policy."""
    import torch
    from diffusers import (
        AnimateDiffVideoToVideoControlNetPipeline,
        ControlNetModel,
        DDIMScheduler,
        MotionAdapter,
    )

    dtype = getattr(torch, plan.dtype)
    adapter_folder = folders["animatediff-motion-adapter"]
    motion_adapter = MotionAdapter.from_pretrained(
        adapter_folder, dtype=dtype, variant=_variant(adapter_folder), local_files_only=True
    )
    control_folder = folders["controlnet-openpose-sd15"]
    controlnet = ControlNetModel.from_pretrained(
        control_folder, dtype=dtype, variant=_variant(control_folder), local_files_only=True
    )
    base = folders["sd15"]
    pipeline = AnimateDiffVideoToVideoControlNetPipeline.from_pretrained(
        base,
        motion_adapter=motion_adapter,
        controlnet=controlnet,
        dtype=dtype,
        variant=_variant(base),
        local_files_only=True,
    )
    # AnimateDiff's motion modules were trained with a linear-beta DDIM schedule.
    pipeline.scheduler = DDIMScheduler.from_config(
        pipeline.scheduler.config,
        beta_schedule="linear",
        clip_sample=False,
        timestep_spacing="linspace",
        steps_offset=1,
    )
    pipeline.load_ip_adapter(
        str(folders["ip-adapter-sd15"]),
        subfolder="models",
        weight_name=IP_ADAPTER_WEIGHTS,
        local_files_only=True,
    )
    apply_memory_policy(pipeline, plan, denoiser="unet")
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def apply_memory_policy(pipeline, plan: GenerationPlan, *, denoiser: str) -> None:
    """Place the pipeline as the plan says: resident on the device, or model CPU offload
    (each model moves to the GPU only while it runs); VAE slicing/tiling; torch.compile."""
    policy = plan.policy
    if plan.device == "cuda" and policy.memory == "model_cpu_offload":
        pipeline.enable_model_cpu_offload()
    else:
        pipeline.to(plan.device)
    vae = pipeline.vae
    if policy.vae_slicing and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
    if policy.vae_tiling and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
    if policy.compile and plan.device == "cuda":
        import torch

        setattr(pipeline, denoiser, torch.compile(getattr(pipeline, denoiser)))


class DiffusionGenerator:
    mode = "diffusion"

    def __init__(self, renderer: Renderer, store: ModelStore, plan: GenerationPlan) -> None:
        self.renderer = renderer
        self.plan = plan
        # Every file is checked before any work: ModelNotInstalled names the pull command.
        self.folders = {name: store.require(name) for name in MODE_ENTRIES["diffusion"]}

    def check(self, width: int, height: int, frames: int) -> None:
        check_limits(self.plan, self.mode, width, height, frames)

    def _use(self):
        key = (self.mode, tuple(str(f) for f in self.folders.values()), self.plan.device, self.plan.dtype, self.plan.policy.memory)  # fmt: skip
        return PIPELINES.use(
            key, self.plan.policy.concurrency, lambda: load_pipeline(self.folders, self.plan)
        )

    def generate(
        self, scene, z_sequence: np.ndarray, options: GenerationOptions | None = None
    ) -> Iterator[Layers]:
        import torch
        from PIL import Image

        options = options or GenerationOptions()
        self.check(scene.width, scene.height, len(z_sequence))
        prior = mesh_prior(self.renderer, scene, z_sequence)
        window = self.plan.policy.frame_window[self.mode]
        overlap = window_overlap(window, options.temporal_strength)
        strength = DEFAULTS["strength"] if options.strength is None else options.strength
        # img2img runs steps × strength denoising steps: at least one.
        steps = max(options.steps or DEFAULTS["steps"], math.ceil(1 / max(strength, 1e-3)))
        identity = DEFAULTS["identity_strength"] if options.identity_strength is None else options.identity_strength  # fmt: skip
        control_scale = DEFAULTS["controlnet_scale"] if prior.pose_control else 0.0

        with self._use() as pipeline:
            factor = pipeline.vae_scale_factor * 2 ** (
                len(pipeline.unet.config.block_out_channels) - 1
            )
            width, height = fit_size(scene.width, scene.height, factor)
            pipeline.set_ip_adapter_scale(float(identity))
            reference = Image.fromarray(prior.reference)

            def run(start: int, end: int) -> np.ndarray:
                video = [Image.fromarray(resize(f, width, height)) for f in prior.frames[start:end]]
                poses = [Image.fromarray(resize(p, width, height)) for p in prior.poses[start:end]]
                generator = torch.Generator(device="cpu").manual_seed(int(options.seed))
                result = pipeline(
                    video=video,
                    conditioning_frames=poses,
                    prompt=options.prompt or DEFAULT_PROMPT,
                    negative_prompt=options.negative_prompt or DEFAULT_NEGATIVE,
                    ip_adapter_image=reference,
                    height=height,
                    width=width,
                    strength=strength,
                    num_inference_steps=steps,
                    guidance_scale=DEFAULTS["guidance_scale"]
                    if options.guidance_scale is None
                    else options.guidance_scale,
                    controlnet_conditioning_scale=control_scale,
                    generator=generator,
                    output_type="np",
                    decode_chunk_size=8,
                )
                frames = np.asarray(result.frames[0], dtype=np.float32)
                return np.stack(
                    [resize(np.rint(f * 255).astype(np.uint8), scene.width, scene.height) for f in frames]
                )  # fmt: skip

            for index, frame in enumerate(windowed(len(prior.frames), window, overlap, run)):
                yield frame, prior.alphas[index], prior.torn[index]

    def report(self, options: GenerationOptions | None = None) -> dict:
        options = options or GenerationOptions()
        window = self.plan.policy.frame_window[self.mode]
        return {
            "backend": "AnimateDiff video-to-video + ControlNet OpenPose + IP-Adapter (SD 1.5)",
            "pipeline": "diffusers.AnimateDiffVideoToVideoControlNetPipeline",
            "model_files": {name: str(folder) for name, folder in self.folders.items()},
            **self.plan.report(),
            "init": f"mesh renderer frames, img2img strength {options.strength or DEFAULTS['strength']}",
            "frame_window": window,
            "window_overlap": window_overlap(window, options.temporal_strength),
        }
