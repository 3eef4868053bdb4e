"""Which generator serves a request's ``model``, with which options, and what ``backend`` says.

Every door (sync frames and videos, async jobs, batches, manifests) asks here. A mode is
served by its own backend (engine/generators) unless the deployment maps it to another
(``CHAR_GENERATOR_ALIASES``, e.g. ``diffusion=gan`` on a CPU-only box), and then the
response's ``backend`` says so; a mode whose weights or GPU are missing fails with
ModelNotInstalled (422) or ResourceUnavailable (503) before any work is queued.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from char_pipeline.engine.generators import MODES, GenerationOptions, get_generator
from char_pipeline.engine.generators.store import ModelStore
from char_pipeline.engine.render import Renderer
from char_pipeline.settings import Settings, parse_aliases

WEIGHT_NAMES = (
    "identity_strength",
    "temporal_strength",
    "perceptual_weight",
    "adv_weight",
    "pose_smoothness",
)
SMOOTHING = "applied: Gaussian smoothing of the z sequence over time (sigma = 1.5 × value frames)"
EFFECTS: dict[str, dict[str, str]] = {
    "gan": {
        "identity_strength": "not applicable to the mesh renderer: it moves the reference's own pixels, so identity is preserved by construction",
        "temporal_strength": SMOOTHING,
        "perceptual_weight": "not applicable to the mesh renderer: no generative loss is optimised",
        "adv_weight": "not applicable to the mesh renderer: no adversarial loss is optimised",
        "pose_smoothness": "applied: extra temporal smoothing of the joint offsets (sigma = 1.5 × value frames)",
    },
    "diffusion": {
        "identity_strength": "applied: IP-Adapter scale (default 0.6)",
        "temporal_strength": SMOOTHING
        + "; and the overlap of AnimateDiff windows (value × half a window)",
        "perceptual_weight": "not applicable at inference: a training-time loss weight",
        "adv_weight": "not applicable at inference: a training-time loss weight",
        "pose_smoothness": "applied: extra temporal smoothing of the joint offsets (sigma = 1.5 × value frames)",
    },
    "transformer": {
        "identity_strength": "not applicable: the reference image is always in the transformer's context",
        "temporal_strength": SMOOTHING
        + "; and the overlap of the transformer's windows (value × half a window)",
        "perceptual_weight": "not applicable at inference: a training-time loss weight",
        "adv_weight": "not applicable at inference: a training-time loss weight",
        "pose_smoothness": "applied: extra temporal smoothing of the joint offsets (sigma = 1.5 × value frames)",
    },
}


def generator_aliases(setting: str) -> dict[str, str]:
    """'diffusion=gan,…' → {'diffusion': 'gan'}; unknown names are a settings error."""
    return parse_aliases(setting, MODES, "CHAR_GENERATOR_ALIASES")


def served_mode(settings: Settings, requested: str) -> str:
    return generator_aliases(settings.generator_aliases).get(requested, requested)


def generator_for(settings: Settings, mode: str, renderer: Renderer, gpu: str):
    """The generator of a served mode: ModelNotInstalled / ResourceUnavailable come from here."""
    return get_generator(
        mode,
        renderer,
        gpu_type=gpu,
        store=ModelStore(settings.models_root),
        allow_cpu=settings.allow_cpu_generation,
    )


def options_for(request: Any, etag: str) -> GenerationOptions:
    """A request's generation options; without a seed, one derived from its ETag, so the
    same request gives the same frames (and the cache and the ETag stay truthful)."""
    seed = getattr(request, "seed", None)
    return GenerationOptions(
        prompt=getattr(request, "prompt", None),
        seed=int(etag[1:9], 16) % 2**31 if seed is None else int(seed),
        identity_strength=request.identity_strength,
        temporal_strength=request.temporal_strength,
    )


def spec(mode: str, options: GenerationOptions) -> dict:
    """What a job carries to its run: the served mode and the options (plain JSON)."""
    return {"model": mode, "options": asdict(options)}


def from_spec(data: dict | None) -> tuple[str, GenerationOptions]:
    if not data:
        return "gan", GenerationOptions()
    return data["model"], GenerationOptions(**data.get("options", {}))


def backend_report(
    generator: Any, requested: str, served: str, weights: dict[str, Any], renderer: str
) -> dict:
    """How the request's mode and weights were served — never silently ignored."""
    parameters = {
        name: {"value": value, "effect": EFFECTS[served].get(name, "unknown")}
        for name, value in weights.items()
        if value is not None
    }
    report = generator.report() if hasattr(generator, "report") else {}
    if served == requested:
        note = f"'{requested}' served by {report.get('backend', served)}"
    else:
        note = (
            f"'{requested}' is mapped to '{served}' by this deployment (CHAR_GENERATOR_ALIASES); "
            f"served by {report.get('backend', served)}"
        )
    return {
        "renderer": renderer,
        "device": report.get("device", "cpu"),
        "model_requested": requested,
        "model_served": served,
        "model_note": note,
        "generator": report,
        "parameters": parameters,
    }


def weights_of(request: Any) -> dict[str, Any]:
    return {name: getattr(request, name) for name in WEIGHT_NAMES}
