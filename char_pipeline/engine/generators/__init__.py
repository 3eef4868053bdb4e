"""The seed's generator modes behind one interface (docs/generators.md).

``gan`` is the mesh renderer (the embedded default, CPU); ``diffusion`` and ``transformer``
are diffusers pipelines whose weights live in the model store (store.py) and which run
under a per-GPU-type policy (policy.py). Every door reaches them through
``get_generator``; heavy imports (torch, diffusers) happen only when a generative mode runs.
"""

from __future__ import annotations

from char_pipeline.engine.errors import InvalidInputError
from char_pipeline.engine.generators.base import GenerationOptions, Layers, MeshGenerator
from char_pipeline.engine.generators.policy import plan_generation
from char_pipeline.engine.generators.store import ModelStore
from char_pipeline.engine.render import Renderer

MODES = ("gan", "diffusion", "transformer")

__all__ = ["MODES", "GenerationOptions", "Layers", "MeshGenerator", "get_generator"]


def get_generator(
    mode: str,
    renderer: Renderer,
    *,
    gpu_type: str = "v100",
    store: ModelStore | None = None,
    allow_cpu: bool = False,
    device: str | None = None,
):
    """The generator of ``mode``. Generative modes check, before any work, that their
    weights are installed (ModelNotInstalled) and that a GPU is present or CPU generation
    allowed (ResourceUnavailable)."""
    if mode == "gan":
        return MeshGenerator(renderer)
    if mode not in MODES:
        raise InvalidInputError(f"model must be one of {', '.join(MODES)}; got {mode!r}.")
    from char_pipeline.engine.generators.store import model_store

    store = store or model_store()
    if mode == "diffusion":
        from char_pipeline.engine.generators.diffusion import MODE_ENTRIES, DiffusionGenerator

        for name in MODE_ENTRIES["diffusion"]:
            store.require(name)
        return DiffusionGenerator(
            renderer, store, plan_generation(gpu_type, allow_cpu=allow_cpu, device=device)
        )
    from char_pipeline.engine.generators.transformer import TransformerGenerator

    store.require("wan2.1-vace-1.3b")
    return TransformerGenerator(
        renderer, store, plan_generation(gpu_type, allow_cpu=allow_cpu, device=device)
    )
