"""Choosing a renderer by name: the one module that knows every implementation.

Apart from ``render`` (the interface, the warp renderer and the shared drawing code) so that
``deform`` (the mesh renderer, built on that interface) and ``render`` do not import each other.
"""

from __future__ import annotations

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
