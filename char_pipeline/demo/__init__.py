"""The bundled demo batch: real images that installed packages ship."""

from __future__ import annotations

from pathlib import Path


def demo_references() -> dict[str, Path]:
    """reference id → image file: a person, a cat, a portrait and a product with alpha."""
    import matplotlib
    import skimage

    scikit_data = Path(skimage.__file__).parent / "data"
    sample_data = Path(matplotlib.get_data_path()) / "sample_data"
    return {
        "ref_demo_astronaut": scikit_data / "astronaut.png",
        "ref_demo_chelsea": scikit_data / "chelsea.png",
        "ref_demo_grace_hopper": sample_data / "grace_hopper.jpg",
        "ref_demo_present": sample_data / "Minduka_Present_Blue_Pack.png",
    }
