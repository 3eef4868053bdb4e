"""The compute choice: device, renderer backend and input limits, in one resource."""

from __future__ import annotations

import dagster as dg

from char_pipeline.engine.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from char_pipeline.engine.render import MAX_RENDER_PIXELS, Renderer, get_renderer


class ComputeResource(dg.ConfigurableResource):
    """Where and how the engine runs; assets never hard-code a device or a backend."""

    device: str = "cpu"
    renderer: str = "warp"
    max_image_bytes: int = DEFAULT_MAX_BYTES
    max_image_pixels: int = DEFAULT_MAX_PIXELS
    max_render_pixels: int = MAX_RENDER_PIXELS

    def make_renderer(self) -> Renderer:
        return get_renderer(self.renderer)
