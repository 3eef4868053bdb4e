"""A tiny model store (random weights, built once per session) and a small posed scene."""

from __future__ import annotations

import pytest
import torch

from char_pipeline.engine.pipeline import character_from
from char_pipeline.engine.render import RenderSettings
from char_pipeline.engine.renderers import get_renderer
from char_pipeline.engine.rig import build_rig
from tests.tiny_models import build_store

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(
            not torch.cuda.is_available(), reason="no CUDA device on this machine"
        ),
    ),
]


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory):
    from char_pipeline.engine.generators.store import ModelStore

    return ModelStore(build_store(tmp_path_factory.mktemp("tiny_models")))


@pytest.fixture(scope="session")
def renderer():
    return get_renderer("mesh")


def _scene(renderer, reference, mask, size=(64, 64)):
    rig = build_rig(reference.rgb, mask.soft, mask.binary, mask.bbox)
    return renderer.prepare(character_from(reference.rgb, mask, rig), RenderSettings(*size))


@pytest.fixture(scope="session")
def person_scene(renderer, astronaut):
    return _scene(renderer, *astronaut)


@pytest.fixture(scope="session")
def object_scene(renderer, present):
    return _scene(renderer, *present)


@pytest.fixture()
def pipeline_calls(monkeypatch):
    """``watch(module)``: the keyword arguments of the next calls of the pipeline that
    ``module.load_pipeline`` loads (a fresh load: the process cache is cleared around it)."""
    from char_pipeline.engine.generators.cache import PIPELINES

    seen: dict = {}

    def watch(module) -> dict:
        original = module.load_pipeline

        def spying_load(*args):
            pipeline = original(*args)
            call = type(pipeline).__call__

            def spy(self, *call_args, **kwargs):
                seen.update(kwargs)
                return call(self, *call_args, **kwargs)

            monkeypatch.setattr(type(pipeline), "__call__", spy)
            return pipeline

        monkeypatch.setattr(module, "load_pipeline", spying_load)
        PIPELINES.clear()
        return seen

    yield watch
    PIPELINES.clear()  # the spied pipeline must not serve later tests
