"""Mode 'diffusion' end to end with tiny random components (tests/tiny_models.py): the real
loading path (from_pretrained, load_ip_adapter), the real pipeline, over the mesh prior."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from char_pipeline.engine.errors import ModelNotInstalledError, ResourceExhaustedError
from char_pipeline.engine.generators import GenerationOptions, get_generator
from char_pipeline.engine.generators import diffusion as diffusion_module
from char_pipeline.engine.generators.base import mesh_prior, resize
from char_pipeline.engine.generators.cache import PIPELINES
from char_pipeline.engine.generators.store import ModelStore
from char_pipeline.engine.motion import MotionParams, MotionPlan, motion_sequence
from tests.engine.generators.conftest import DEVICES

FAST = GenerationOptions(steps=2, seed=5)


def _wave(frames: int = 5) -> np.ndarray:
    return motion_sequence(MotionPlan("wave", None, MotionParams(), ()), frames)


def _frames(generator, scene, z, options=FAST) -> list[np.ndarray]:
    return [frame for frame, _, _ in generator.generate(scene, z, options)]


@pytest.fixture(params=DEVICES)
def generator(request, renderer, tiny_store):
    return get_generator(
        "diffusion", renderer, store=tiny_store, allow_cpu=True, device=request.param
    )


def test_frames_have_the_count_and_size_and_repeat_for_a_seed(generator, person_scene):
    z = _wave()
    loads = PIPELINES.loads
    first = _frames(generator, person_scene, z)
    again = _frames(generator, person_scene, z)
    assert len(first) == 5 and first[0].shape == (64, 64, 3) and first[0].dtype == np.uint8
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert PIPELINES.loads - loads <= 1  # loaded once per process, then reused
    other_seed = _frames(generator, person_scene, z, dataclasses.replace(FAST, seed=6))
    assert not np.array_equal(first[0], other_seed[0])
    # Not the mesh frames passed through: diffusion changed them.
    prior = mesh_prior(generator.renderer, person_scene, z)
    assert np.abs(first[0].astype(int) - prior.frames[0]).mean() > 2


def test_the_mesh_frames_are_the_init_video_and_the_joints_the_pose_control(
    generator, person_scene, pipeline_calls
):
    seen = pipeline_calls(diffusion_module)
    z = _wave(3)
    _frames(generator, person_scene, z, dataclasses.replace(FAST, strength=0.4))
    prior = mesh_prior(generator.renderer, person_scene, z)
    assert all(
        np.array_equal(np.asarray(image), frame)
        for image, frame in zip(seen["video"], prior.frames, strict=True)
    )
    assert all(
        np.array_equal(np.asarray(image), resize(pose, 64, 64))
        for image, pose in zip(seen["conditioning_frames"], prior.poses, strict=True)
    )
    assert seen["strength"] == 0.4 and seen["controlnet_conditioning_scale"] == 1.0
    assert np.asarray(seen["ip_adapter_image"]).shape[2] == 3  # the reference cut-out


def test_pose_conditioning_changes_the_frames(generator, person_scene, monkeypatch):
    z = _wave(3)
    denoised = dataclasses.replace(FAST, steps=4, strength=1.0)  # every step sees the pose
    posed = _frames(generator, person_scene, z, denoised)

    def without_poses(renderer, scene, z_sequence):
        prior = mesh_prior(renderer, scene, z_sequence)
        prior.poses = [np.full_like(pose, 255) for pose in prior.poses]
        return prior

    monkeypatch.setattr(diffusion_module, "mesh_prior", without_poses)
    blank = _frames(generator, person_scene, z, denoised)
    difference = [np.abs(a.astype(int) - b).mean() for a, b in zip(posed, blank, strict=True)]
    assert max(difference) > 0.5, difference


def test_ip_adapter_scale_changes_the_frames(generator, person_scene):
    z = _wave(3)
    with_identity = _frames(generator, person_scene, z, dataclasses.replace(FAST, identity_strength=1.0))  # fmt: skip
    without = _frames(generator, person_scene, z, dataclasses.replace(FAST, identity_strength=0.0))
    assert np.abs(with_identity[0].astype(int) - without[0]).mean() > 0.5


def test_objects_get_no_human_pose_control(generator, object_scene, monkeypatch):
    seen = {}
    monkeypatch.setattr(
        diffusion_module, "mesh_prior", lambda *a: seen.setdefault("prior", mesh_prior(*a))
    )
    frames = _frames(generator, object_scene, _wave(2))
    assert len(frames) == 2 and not seen["prior"].pose_control


def test_windows_cover_long_sequences(renderer, tiny_store, person_scene):
    generator = get_generator("diffusion", renderer, store=tiny_store, allow_cpu=True, device="cpu")
    policy = dataclasses.replace(generator.plan.policy, frame_window={"diffusion": 4})
    generator.plan = dataclasses.replace(generator.plan, policy=policy)
    frames = _frames(generator, person_scene, _wave(10), dataclasses.replace(FAST, temporal_strength=1.0))  # fmt: skip
    assert len(frames) == 10 and all(f.shape == (64, 64, 3) for f in frames)


def test_missing_weights_name_the_pull_command(renderer, tmp_path):
    with pytest.raises(ModelNotInstalledError) as error:
        get_generator("diffusion", renderer, store=ModelStore(tmp_path), allow_cpu=True)
    assert "char-pipeline models pull sd15" in error.value.message
    assert error.value.details["command"] == "char-pipeline models pull sd15"


def test_limits_of_the_type(renderer, tiny_store, person_scene):
    generator = get_generator("diffusion", renderer, store=tiny_store, allow_cpu=True, device="cpu")
    with pytest.raises(ResourceExhaustedError, match="512 px"):
        generator.check(640, 480, 4)
    with pytest.raises(ResourceExhaustedError, match="48 frames"):
        list(generator.generate(person_scene, _wave(49), FAST))
