"""Shared fixtures: real images that installed packages ship, and isolated data roots."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import skimage

from char_pipeline.engine.images import load_reference_image
from char_pipeline.engine.segmentation import segment_subject
from char_pipeline.storage import ArtifactStore

# One ONNX copy of the identity model for the whole run (tests and the servers they start),
# instead of an export (~1.5 s) in every temporary data root.
os.environ.setdefault("CHAR_MODEL_CACHE", tempfile.mkdtemp(prefix="char_test_models_"))

SCIKIT_DATA = Path(skimage.__file__).parent / "data"
SAMPLE_DATA = Path(matplotlib.get_data_path()) / "sample_data"
# Children's drawings photographed on paper (AnimatedDrawings' examples, MIT; see its README).
DRAWINGS = Path(__file__).parent / "data" / "drawings"


@pytest.fixture(scope="session")
def image_paths() -> dict[str, Path]:
    return {
        "astronaut": SCIKIT_DATA / "astronaut.png",
        "chelsea": SCIKIT_DATA / "chelsea.png",
        "grace_hopper": SAMPLE_DATA / "grace_hopper.jpg",
        "present": SAMPLE_DATA / "Minduka_Present_Blue_Pack.png",
        "brick": SCIKIT_DATA / "brick.png",
        "grass": SCIKIT_DATA / "grass.png",
        "gravel": SCIKIT_DATA / "gravel.png",
        "coffee": SCIKIT_DATA / "coffee.png",
        "stick_figure": DRAWINGS / "stick_figure.jpg",
        "pig": DRAWINGS / "pig.jpg",
        "marker_figure": DRAWINGS / "marker_figure.jpg",
        "bug": DRAWINGS / "bug.jpg",
    }


@pytest.fixture(scope="session")
def present(image_paths):
    """The product with an alpha channel: a reference and its mask."""
    reference = load_reference_image(image_paths["present"].read_bytes())
    return reference, segment_subject(reference)


@pytest.fixture(scope="session")
def chelsea(image_paths):
    reference = load_reference_image(image_paths["chelsea"].read_bytes())
    return reference, segment_subject(reference)


@pytest.fixture()
def store(tmp_path) -> ArtifactStore:
    return ArtifactStore(root_url=str(tmp_path / "artifacts"))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1))


@pytest.fixture(scope="session")
def astronaut(image_paths):
    """A person photo (scikit-image): a reference and its U²-Net-p mask."""
    reference = load_reference_image(image_paths["astronaut"].read_bytes())
    return reference, segment_subject(reference)
