"""`char-pipeline demo` as a user runs it, on a throwaway data root."""

import os
import subprocess
import sys
from pathlib import Path

import cv2
import dagster as dg

from char_pipeline.engine.encode import probe_video


def test_demo_renders_through_a_real_instance(tmp_path):
    env = {**os.environ, "CHAR_PIPELINE_HOME": str(tmp_path), "COLUMNS": "200"}
    env.pop("DAGSTER_HOME", None)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "char_pipeline.cli",
            "demo",
            "--references",
            "present,chelsea",
            "--steps",
            "4",
            "--resolution",
            "64x64",
            "--fps",
            "8",
            "--turntable-frames",
            "6",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "14 videos from 2/2 references" in completed.stdout
    assert "Traceback" not in completed.stderr, completed.stderr
    videos = sorted((tmp_path / "artifacts" / "videos").rglob("*.mp4"))
    assert len(videos) == 8
    for path in videos:
        assert str(path) in completed.stdout.replace("\n", "")
        if path.name == "nerf_turntable.mp4":
            assert (probe_video(path).frames, probe_video(path).width) == (6, 320)
        else:
            assert probe_video(path).frames == 4
    # A contact sheet beside every control's video, its path printed: look before reading.
    sheets = sorted((tmp_path / "artifacts" / "videos").rglob("*.sheet.png"))
    assert len(sheets) == 6, sheets
    for path in sheets:
        assert str(path) in completed.stdout.replace("\n", "")
        sheet = cv2.imread(str(path))
        assert sheet.shape[0] == 160 and sheet.shape[1] > 4 * 160 * 0.8  # 4 frames side by side
    # The runs live in the project-local instance, so `make dev` shows them afterwards.
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        runs = instance.get_runs()
        assert len(runs) == 2 and all(run.is_success for run in runs)
        assert {run.tags["dagster/partition"] for run in runs} == {
            "ref_demo_present",
            "ref_demo_chelsea",
        }
    assert Path(tmp_path / "dagster" / "dagster.yaml").exists()
