"""A background for a prompt's scene words, from photographs that installed packages ship.

The predictions door's embedded default places the character over a scene the prompt names
("… in a park", "… on a city street", "… in space"). No generative model runs here, so the
scene is a real photograph chosen by keyword from scikit-image's data folder (public-domain
or CC0 images that ship in the wheel); a prompt that names none gets the reference's own
inpainted background. The choice and the words that made it are reported.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

SCENES: dict[str, tuple[str, tuple[str, ...]]] = {
    # scene: (scikit-image data file, words that name it)
    "grass": ("grass.png", ("grass", "park", "field", "meadow", "lawn", "garden", "forest", "jungle")),
    "brick wall": ("brick.png", ("city", "street", "wall", "brick", "urban", "alley", "building", "cyberpunk", "neon")),
    "gravel": ("gravel.png", ("gravel", "road", "path", "desert", "beach", "sand", "rocky", "ground")),
    "deep space": ("hubble_deep_field.jpg", ("space", "galaxy", "stars", "starry", "cosmic", "universe", "night sky")),
    "moon": ("moon.png", ("moon", "lunar", "crater")),
}  # fmt: skip


def scene_for(prompt: str) -> tuple[str, str] | None:
    """(scene, the word that chose it) for the first scene word in the prompt, or None."""
    text = prompt.lower()
    best: tuple[int, str, str] | None = None
    for scene, (_, words) in SCENES.items():
        for word in words:
            match = re.search(rf"\b{re.escape(word)}\b", text)
            if match and (best is None or match.start() < best[0]):
                best = (match.start(), scene, word)
    return (best[1], best[2]) if best else None


def scene_image(scene: str) -> np.ndarray:
    """The scene's photograph as RGB (greyscale ones are made three-channel)."""
    import skimage.io

    data = Path(__import__("skimage").__file__).parent / "data"
    image = np.asarray(skimage.io.imread(data / SCENES[scene][0]))
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)
