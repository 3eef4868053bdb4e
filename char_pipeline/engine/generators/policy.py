"""Per-GPU-type policies of the generative modes: device, dtype, memory, limits.

X-GPU-Type (v100, t4, a100; the run tag ``char/gpu_type``) picks one. V100 and T4 have no
bfloat16, so they run float16; an A100 runs bfloat16 (float16's range overflows in SD's VAE
and attention less often there, and it is as fast). A T4's 16 GB hold SD 1.5 + ControlNet +
AnimateDiff for 16 frames only with model CPU offload and a sliced, tiled VAE; an A100 keeps
everything resident and may compile the denoiser (``CHAR_TORCH_COMPILE=1``). Each type
accepts a largest generated frame and video; beyond → ResourceExhausted (the seed's FAQ Q7).
Without a GPU the generative modes answer ResourceUnavailable (503), unless the deployment
allows CPU generation (``CHAR_ALLOW_CPU_GENERATION=1``: float32, slow, for tests and small
previews), and then the backend report says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from char_pipeline.engine.errors import ResourceExhaustedError, ResourceUnavailableError


@dataclass(frozen=True)
class GpuPolicy:
    gpu_type: str
    dtype: str  # torch dtype name
    memory: str  # "resident" | "model_cpu_offload"
    vae_slicing: bool
    vae_tiling: bool
    compile: bool  # torch.compile the denoiser when CHAR_TORCH_COMPILE=1
    max_side: int  # largest generated width or height, pixels
    max_pixels: int  # largest generated frame, pixels
    frame_window: dict[str, int]  # frames denoised together, per mode
    max_frames: int  # longest generated video
    concurrency: int  # generations at once per process (the run's worker threads)


POLICIES: dict[str, GpuPolicy] = {
    "t4": GpuPolicy(
        "t4",
        dtype="float16",
        memory="model_cpu_offload",
        vae_slicing=True,
        vae_tiling=True,
        compile=False,
        max_side=768,
        max_pixels=768 * 512,
        frame_window={"diffusion": 16, "transformer": 33},
        max_frames=64,
        concurrency=1,
    ),
    "v100": GpuPolicy(
        "v100",
        dtype="float16",
        memory="resident",
        vae_slicing=True,
        vae_tiling=False,
        compile=False,
        max_side=1024,
        max_pixels=768 * 768,
        frame_window={"diffusion": 16, "transformer": 49},
        max_frames=96,
        concurrency=1,
    ),
    "a100": GpuPolicy(
        "a100",
        dtype="bfloat16",
        memory="resident",
        vae_slicing=False,
        vae_tiling=False,
        compile=True,
        max_side=1280,
        max_pixels=1280 * 720,
        frame_window={"diffusion": 16, "transformer": 81},
        max_frames=240,
        concurrency=2,
    ),
}
# CPU generation (CHAR_ALLOW_CPU_GENERATION=1): the requested type's name, CPU limits.
CPU_LIMITS = {
    "dtype": "float32",
    "memory": "resident",
    "vae_slicing": False,
    "vae_tiling": False,
    "compile": False,
    "max_side": 512,
    "max_pixels": 512 * 512,
    "max_frames": 48,
    "concurrency": 1,
}


@dataclass(frozen=True)
class GenerationPlan:
    """Where and how one generation runs: the type's policy as it applies on this device."""

    policy: GpuPolicy
    device: str
    notes: tuple[str, ...] = ()

    @property
    def dtype(self) -> str:
        return self.policy.dtype

    def report(self) -> dict:
        return {
            "gpu_type": self.policy.gpu_type,
            "device": self.device,
            "dtype": self.policy.dtype,
            "memory": self.policy.memory,
            "vae_slicing": self.policy.vae_slicing,
            "vae_tiling": self.policy.vae_tiling,
            "compiled": self.policy.compile,
            "notes": list(self.notes),
        }


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def plan_generation(gpu_type: str, *, allow_cpu: bool, device: str | None = None) -> GenerationPlan:
    """The policy of ``gpu_type`` on this machine (``device``: force 'cuda' or 'cpu' for
    tests; default: CUDA when present). No GPU and CPU generation not allowed → 503."""
    policy = POLICIES.get(gpu_type, POLICIES["v100"])
    if policy.compile and os.environ.get("CHAR_TORCH_COMPILE", "") != "1":
        policy = replace(policy, compile=False)
    device = device or ("cuda" if cuda_available() else "cpu")
    if device == "cuda":
        import torch

        if policy.dtype == "bfloat16" and not torch.cuda.is_bf16_supported():
            return GenerationPlan(
                replace(policy, dtype="float16"),
                "cuda",
                (f"this GPU has no bfloat16: the {gpu_type} policy runs float16",),
            )
        return GenerationPlan(policy, "cuda")
    if not allow_cpu:
        raise ResourceUnavailableError(
            "The generative modes (diffusion, transformer) need a CUDA GPU and this server has "
            "none. Send model 'gan' (the CPU mesh renderer), use a deployment with GPU workers, "
            "or allow slow CPU generation with CHAR_ALLOW_CPU_GENERATION=1.",
            gpu_type=gpu_type,
        )
    cpu = replace(policy, **CPU_LIMITS)
    return GenerationPlan(
        cpu,
        "cpu",
        (
            f"no GPU: CPU generation allowed by CHAR_ALLOW_CPU_GENERATION, float32, "
            f"{gpu_type} limits reduced to {CPU_LIMITS['max_side']} px / "
            f"{CPU_LIMITS['max_frames']} frames",
        ),
    )


def check_limits(plan: GenerationPlan, mode: str, width: int, height: int, frames: int) -> None:
    """The generated frame and video must fit the type (the seed's ResourceExhausted)."""
    policy = plan.policy
    if max(width, height) > policy.max_side or width * height > policy.max_pixels:
        raise ResourceExhaustedError(
            f"model '{mode}' generates at most {policy.max_side} px per side and "
            f"{policy.max_pixels:,} pixels per frame on {policy.gpu_type} ({plan.device}); "
            f"{width}x{height} asked. Lower the resolution, use X-GPU-Type: a100, or model 'gan'.",
            resolution=f"{width}x{height}",
            gpu_type=policy.gpu_type,
            max_side=policy.max_side,
            max_pixels=policy.max_pixels,
        )
    if frames > policy.max_frames:
        raise ResourceExhaustedError(
            f"model '{mode}' generates at most {policy.max_frames} frames per video on "
            f"{policy.gpu_type} ({plan.device}); {frames} asked. Split the video, use "
            "X-GPU-Type: a100, or model 'gan'.",
            frames=frames,
            gpu_type=policy.gpu_type,
            max_frames=policy.max_frames,
        )
