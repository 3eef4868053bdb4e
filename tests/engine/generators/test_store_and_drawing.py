"""The model store (list, require, record/verify, remove, offline pull), OpenPose maps, and
the windows that cover a long sequence."""

from __future__ import annotations

import numpy as np
import pytest

from char_pipeline.engine.controls import CANONICAL_SKELETON
from char_pipeline.engine.errors import ModelNotInstalledError
from char_pipeline.engine.generators.base import windowed
from char_pipeline.engine.generators.openpose import BODY_18, COLOURS, draw_pose
from char_pipeline.engine.generators.store import REGISTRY, ModelStore


def test_the_registry_names_source_licence_and_loader_of_every_entry():
    for entry in REGISTRY.values():
        assert entry.repo_id.count("/") == 1 and entry.licence and entry.loader
        assert entry.required and entry.approx_size_gb > 0


def test_a_copied_in_folder_is_installed_recorded_verified_and_removed(tmp_path):
    store = ModelStore(tmp_path)
    with pytest.raises(ModelNotInstalledError, match="char-pipeline models pull dinov2-small"):
        store.require("dinov2-small")
    folder = tmp_path / "dinov2-small"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "dinov2"}')
    (folder / "model.safetensors").write_bytes(b"weights")
    assert store.require("dinov2-small") == folder
    assert "hashes not recorded" in store.verify("dinov2-small")["note"]
    assert len(store.record("dinov2-small")["files"]) == 2
    assert store.verify("dinov2-small")["ok"]
    (folder / "model.safetensors").write_bytes(b"tampered")
    report = store.verify("dinov2-small")
    assert not report["ok"] and "model.safetensors" in report["problems"][0]
    listing = {row["name"]: row for row in store.listing()}
    assert listing["dinov2-small"]["installed"] and not listing["sd15"]["installed"]
    assert store.remove("dinov2-small") and not store.installed("dinov2-small")


def test_pull_offline_says_how_to_copy_the_folder_in(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotInstalledError) as error:
        ModelStore(tmp_path).pull("clip-vit-base-patch32")
    assert "copy the folder to" in error.value.message and "--record" in error.value.message


def test_the_pose_map_follows_the_openpose_convention():
    joints = np.array([200.0, 40.0]) + CANONICAL_SKELETON * 400  # a figure 400 px tall
    pose = draw_pose(joints, 512, 512)
    for name, colour in (("nose", COLOURS[0]), ("left_wrist", COLOURS[7])):
        index = BODY_18.index(name)
        x, y = np.rint(joints[["nose", "left_wrist"].index(name) * 9]).astype(int)
        assert tuple(pose[y, x]) == colour, (name, index)
    assert pose[0, 0].sum() == 0  # black background
    joints[9] = [600.0, 100.0]  # the left wrist leaves the frame: it and its limb vanish
    cut = draw_pose(joints, 512, 512)
    assert (np.abs(cut.astype(int) - pose) > 0).any()


def test_windows_cross_fade_and_cover_every_frame_once():
    calls = []

    def run(start, end):
        calls.append((start, end))
        return np.stack([np.full((2, 2, 3), index, np.uint8) for index in range(start, end)])

    frames = list(windowed(10, 4, 2, run))
    assert [int(f[0, 0, 0]) for f in frames] == list(range(10))  # consistent windows agree
    assert calls == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert len(list(windowed(3, 16, 8, run))) == 3
