"""Small inline previews for asset metadata in the Dagster UI."""

from __future__ import annotations

import base64

import cv2
import dagster as dg
import numpy as np

from char_pipeline.engine.images import encode_png


def thumbnail(image: np.ndarray, max_side: int = 192) -> np.ndarray:
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return image
    return cv2.resize(
        image,
        (max(1, int(width * scale)), max(1, int(height * scale))),
        interpolation=cv2.INTER_AREA,
    )


def markdown_images(images: dict[str, np.ndarray], max_side: int = 192) -> dg.MetadataValue:
    """Markdown with each image inlined as a data-URI PNG thumbnail."""
    parts = []
    for caption, image in images.items():
        encoded = base64.b64encode(encode_png(thumbnail(image, max_side))).decode()
        parts.append(f"**{caption}**\n\n![{caption}](data:image/png;base64,{encoded})")
    return dg.MetadataValue.md("\n\n".join(parts))
