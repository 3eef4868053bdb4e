"""Compute types (v100, a100, t4, cpu): device, precision, limits — chosen per run.

A request's X-GPU-Type travels as the run tag ``char/gpu_type``; assets ask the fleet for
that type. On a machine without a GPU every type runs on the CPU and says so in the run's
metadata. The Kubernetes requests of each type ride on the run as ``dagster-k8s/config``, so
the same code runs on dagster-k8s unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from char_pipeline.engine.generators import get_generator
from char_pipeline.engine.generators.policy import POLICIES as GPU_TYPES
from char_pipeline.engine.generators.store import ModelStore
from char_pipeline.engine.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from char_pipeline.engine.render import MAX_RENDER_PIXELS, Renderer
from char_pipeline.engine.renderers import get_renderer
from char_pipeline.launching import ACCELERATOR_LABELS, GPU_TYPE_TAG, k8s_tags

__all__ = ["ACCELERATOR_LABELS", "COMPUTE_TYPES", "ComputeFleet", "ComputeResource", "k8s_tags"]


def gpu_present() -> bool:
    """True when an NVIDIA device is visible; avoids importing torch just to ask."""
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/nvidia0")


class ComputeResource(dg.ConfigurableResource):
    """One compute type: where the engine runs and how much it may take on."""

    name: str = "cpu"
    device: str = "cpu"
    precision: str = "fp32"
    batch_size: int = 1
    memory_budget_mb: int = 4096
    renderer: str = "mesh"
    max_image_bytes: int = DEFAULT_MAX_BYTES
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    max_render_pixels: int = MAX_RENDER_PIXELS
    allow_cpu_generation: bool = False
    generator_aliases: str = ""  # settings.generator_aliases: modes served by another
    models_dir: str = ""  # the model store (settings.models_root); "" → the process's

    def make_renderer(self) -> Renderer:
        return get_renderer(self.renderer)

    def served_mode(self, requested: str) -> str:
        """The mode a run's config asks for as this deployment serves it (API jobs arrive
        already mapped; manifests and the UI's config are mapped here)."""
        from char_pipeline.services.generation import generator_aliases

        return generator_aliases(self.generator_aliases).get(requested, requested)

    def make_generator(self, mode: str, renderer: Renderer):
        """The generator of a job's served mode under this type's GPU policy; the pipelines
        it loads stay in this process (engine.generators.cache), one load per run worker."""
        gpu_type = self.name if self.name in GPU_TYPES else "v100"
        return get_generator(
            mode,
            renderer,
            gpu_type=gpu_type,
            store=ModelStore(Path(self.models_dir)) if self.models_dir else None,
            allow_cpu=self.allow_cpu_generation,
        )

    def effective_device(self) -> tuple[str, str | None]:
        """The device actually used, and a plain note when the type fell back to CPU."""
        if self.device.startswith("cuda") and not gpu_present():
            return (
                "cpu",
                f"no GPU on this machine: the {self.name} type ran on the CPU ({self.renderer} renderer)",
            )
        return self.device, None

    def run_metadata(self) -> dict:
        device, fallback = self.effective_device()
        return {
            "compute_type": self.name,
            "device": device,
            "precision": self.precision if device != "cpu" else "fp32",
            "gpu_fallback": fallback or "none",
        }


COMPUTE_TYPES: dict[str, dict] = {
    "v100": {
        "device": "cuda",
        "precision": "fp16",
        "batch_size": 8,
        "memory_budget_mb": 16_384,
        "max_render_pixels": 1920 * 1080,
    },
    "t4": {
        "device": "cuda",
        "precision": "fp16",
        "batch_size": 4,
        "memory_budget_mb": 15_360,
        "max_render_pixels": 1920 * 1080,
    },
    "a100": {
        "device": "cuda",
        "precision": "bf16",
        "batch_size": 16,
        "memory_budget_mb": 40_960,
        "max_render_pixels": 3840 * 2160,
    },
    "cpu": {
        "device": "cpu",
        "precision": "fp32",
        "batch_size": 1,
        "memory_budget_mb": 4096,
        "max_render_pixels": 3840 * 2160,
    },
}


class ComputeFleet(dg.ConfigurableResource):
    """All compute types; a run uses the one its ``char/gpu_type`` tag names (default cpu)."""

    v100: ComputeResource
    a100: ComputeResource
    t4: ComputeResource
    cpu: ComputeResource

    @classmethod
    def build(cls, **common) -> ComputeFleet:
        return cls(
            **{
                name: ComputeResource(name=name, **spec, **common)
                for name, spec in COMPUTE_TYPES.items()
            }
        )

    def select(self, gpu_type: str | None) -> ComputeResource:
        return getattr(self, gpu_type) if gpu_type in COMPUTE_TYPES else self.cpu

    def for_run(self, context: dg.AssetExecutionContext) -> ComputeResource:
        return self.select(context.run.tags.get(GPU_TYPE_TAG))
