"""The InstantCharacter-style generator (FLUX + subject adapter) with tiny random components."""

from __future__ import annotations

import numpy as np
import pytest

from char_pipeline.engine.errors import ModelNotInstalledError
from char_pipeline.engine.generators.instant_character import InstantCharacterGenerator
from char_pipeline.engine.generators.policy import plan_generation
from char_pipeline.engine.generators.store import ModelStore
from tests.engine.generators.conftest import DEVICES


@pytest.fixture(params=DEVICES)
def generator(request, tiny_store):
    plan = plan_generation("a100", allow_cpu=True, device=request.param)
    return InstantCharacterGenerator(tiny_store, plan)


def _cutout(present) -> np.ndarray:
    reference, mask = present
    alpha = mask.soft[..., None].astype(np.float32) / 255.0
    return np.clip(reference.rgb * alpha + 255 * (1 - alpha), 0, 255).astype(np.uint8)


def test_images_of_the_size_asked_repeat_for_a_seed(generator, present):
    images = generator.generate(_cutout(present), "a box on a beach", width=32, height=32, seed=3, num_images=2, steps=2)  # fmt: skip
    assert len(images) == 2 and images[0].shape == (32, 32, 3) and images[0].dtype == np.uint8
    again = generator.generate(_cutout(present), "a box on a beach", width=32, height=32, seed=3, num_images=2, steps=2)  # fmt: skip
    assert all(np.array_equal(a, b) for a, b in zip(images, again, strict=True))


def test_the_subject_adapter_changes_the_images(generator, present, chelsea):
    def render(reference, scale):
        return generator.generate(reference, "a character", width=32, height=32, seed=1, steps=2, subject_scale=scale)[0]  # fmt: skip

    box = render(_cutout(present), 1.0)
    assert not np.array_equal(box, render(_cutout(present), 0.0))
    assert not np.array_equal(box, render(chelsea[0].rgb, 1.0))  # another character


def test_missing_weights_name_what_to_do(tmp_path):
    plan = plan_generation("a100", allow_cpu=True, device="cpu")
    with pytest.raises(ModelNotInstalledError, match="models pull flux1-dev"):
        InstantCharacterGenerator(ModelStore(tmp_path), plan)
    with pytest.raises(ModelNotInstalledError, match="no public source"):
        ModelStore(tmp_path).pull("instant-character-adapter")
