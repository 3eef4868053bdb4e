"""Choosing a renderer by name: the one module that knows every implementation.

Apart from ``render`` (the interface, the warp renderer and the shared drawing code) so that
``deform`` (the mesh renderer, built on that interface) and ``render`` do not import each other.
"""

from __future__ import annotations

import numpy as np

from char_pipeline.engine.errors import InvalidInputError
from char_pipeline.engine.render import Renderer, WarpRenderer

RENDERERS = ("mesh", "warp")


def get_renderer(name: str = "mesh") -> Renderer:
    if name == "warp":
        return WarpRenderer()
    if name == "mesh":
        from char_pipeline.engine.deform import MeshRenderer  # imports libigl

        return MeshRenderer()
    raise InvalidInputError(f"Unknown renderer {name!r}; available: {', '.join(RENDERERS)}.")


def playable_sequence(renderer: Renderer, scene, z_sequence: np.ndarray) -> np.ndarray:
    """The z sequence as ``renderer`` plays it: the mesh renderer scales down, smoothly over
    time, joint motion its mesh cannot follow without tearing (MeshRenderer.damp_sequence);
    other renderers play it as given. Every door renders through this."""
    damp = getattr(renderer, "damp_sequence", None)
    return damp(scene, z_sequence) if damp is not None else np.asarray(z_sequence)
