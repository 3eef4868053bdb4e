"""Manifests: row validation, and `char-pipeline render` on a 10-row manifest with 2 bad rows."""

import os
import subprocess
import sys

import pandas as pd
from upath import UPath

from char_pipeline import manifests
from char_pipeline.engine.encode import probe_video


def _write(tmp_path, rows, name="batch.csv"):
    path = tmp_path / name
    frame = pd.DataFrame(rows)
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return UPath(path)


def test_rows_are_validated_with_row_column_and_reason(tmp_path, image_paths):
    rows = [
        {"reference_image": str(image_paths["present"]), "control_type": "latent"},
        {"reference_image": str(image_paths["present"]), "control_type": "dance"},
        {"reference_image": "", "control_type": "text", "steps": "0"},
        {
            "reference_image": str(image_paths["present"]),
            "control_type": "text",
            "resolution": "big",
            "format": "webm",
        },
        {
            "reference_image": str(image_paths["present"]),
            "control_type": "pose",
            "fps": "24",
            "seed": "7",
        },
    ]
    check = manifests.check_manifest(_write(tmp_path, rows))
    assert check.total_rows == 5 and [r["row"] for r in check.rows] == [1, 5]
    assert (
        check.rows[0]["steps"] == 48
        and check.rows[0]["resolution"] == "720x720"
        and check.rows[0]["fps"] == 30
    )
    assert check.rows[1]["fps"] == 24 and check.rows[1]["seed"] == 7
    found = {(p.row, p.column) for p in check.problems}
    assert found == {
        (2, "control_type"),
        (3, "reference_image"),
        (3, "steps"),
        (4, "resolution"),
        (4, "format"),
    }
    assert check.bad_rows == [2, 3, 4]


def test_parquet_and_missing_columns(tmp_path, image_paths):
    check = manifests.check_manifest(
        _write(
            tmp_path,
            [{"reference_image": str(image_paths["present"]), "control_type": "text"}],
            "a.parquet",
        )
    )
    assert len(check.rows) == 1
    check = manifests.check_manifest(_write(tmp_path, [{"image": "x.png"}], "b.csv"))
    assert [(p.row, p.column, p.reason) for p in check.problems][:2] == [
        (0, "reference_image", "required column is missing"),
        (0, "control_type", "required column is missing"),
    ]


def test_render_command_writes_results_in_row_order(tmp_path, image_paths):
    manifest_dir = tmp_path / "manifests"
    manifest_dir.mkdir()
    (manifest_dir / "cat.png").write_bytes(image_paths["chelsea"].read_bytes())
    good = {"steps": "4", "resolution": "64x64", "fps": "8"}
    rows = [
        {
            "reference_image": str(image_paths["present"]),
            "control_type": "latent",
            **good,
            "seed": str(i),
        }
        for i in range(4)
    ] + [
        {"reference_image": "cat.png", "control_type": "text", "prompt": "jump", **good},
        {"reference_image": "cat.png", "control_type": "teleport", **good},  # bad: control_type
        {
            "reference_image": str(image_paths["present"]),
            "control_type": "pose",
            **good,
            "format": "gif",
        },
        {"reference_image": "missing.png", "control_type": "latent", **good},  # bad: no such file
        {"reference_image": str(image_paths["present"]), "control_type": "text", **good},
        {
            "reference_image": "cat.png",
            "control_type": "latent",
            **good,
            "seed": "9",
            "output_prefix": str(tmp_path / "out"),
        },
    ]
    manifest = _write(manifest_dir, rows)
    env = {**os.environ, "CHAR_PIPELINE_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    env.pop("DAGSTER_HOME", None)
    completed = subprocess.run(
        [sys.executable, "-m", "char_pipeline.cli", "render", str(manifest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr  # 2 rows were bad
    assert "10 rows, 8 good, 2 bad" in completed.stdout
    results = pd.read_parquet(manifest_dir / "batch.results.parquet")
    assert list(results["row"]) == list(range(1, 11))
    assert list(results["status"]) == ["completed"] * 5 + [
        "invalid",
        "completed",
        "invalid",
        "completed",
        "completed",
    ]
    assert "control_type" in results.loc[5, "error"] and "does not exist" in results.loc[7, "error"]
    for _, row in results[results["status"] == "completed"].iterrows():
        info = probe_video(row["video_url"])
        assert info.frames == 4 and (info.width, info.height) == (64, 64)
    assert results.loc[6, "video_url"].endswith(".gif")
    assert results.loc[9, "output_uri"] == str(tmp_path / "out" / "batch_row0010.mp4")
    assert probe_video(results.loc[9, "output_uri"]).frames == 4
    assert pd.read_csv(manifest_dir / "batch.results.csv").shape[0] == 10
    assert (manifest_dir / "batch.report.json").exists()


def test_a_rows_generator_mode_and_prompt_reach_its_run(tmp_path, image_paths):
    rows = [
        {"reference_image": str(image_paths["present"]), "control_type": "latent"},
        {
            "reference_image": str(image_paths["present"]),
            "control_type": "text",
            "prompt": "a gift box hopping on a beach",
            "model": "diffusion",
        },
    ]
    check = manifests.check_manifest(_write(tmp_path, rows))
    gan, diffusion = (manifests.row_run_config(row, "ref")["ops"]["frames"] for row in check.rows)
    assert gan["config"]["model"] == "gan" and gan["config"]["prompt"] is None
    assert diffusion["config"] == {
        "resolution": "720x720",
        "model": "diffusion",
        "prompt": "a gift box hopping on a beach",
    }


def test_a_rows_bvh_clip_drives_its_pose_control(tmp_path, image_paths):
    import shutil

    from char_pipeline.engine.bvh import MOTIONS_DIR

    shutil.copy(MOTIONS_DIR / "jumping.bvh", tmp_path / "my_jump.bvh")
    present = str(image_paths["present"])
    rows = [
        {"reference_image": present, "control_type": "pose", "motion_clip": "wave_hello"},
        {"reference_image": present, "control_type": "pose", "motion_clip": "my_jump.bvh", "fps": 12},
        {"reference_image": present, "control_type": "pose", "motion_clip": "missing.bvh"},
        {"reference_image": present, "control_type": "pose", "motion_clip": "moonwalk"},
        {"reference_image": present, "control_type": "latent", "motion_clip": "wave_hello"},
    ]  # fmt: skip
    check = manifests.check_manifest(_write(tmp_path, rows))
    assert [r["row"] for r in check.rows] == [1, 2]
    assert {(p.row, p.column) for p in check.problems} == {
        (3, "motion_clip"),
        (4, "motion_clip"),
        (5, "motion_clip"),
    }
    library, uploaded = (
        manifests.row_run_config(row, "ref")["ops"]["control_sequences"]["config"]
        for row in check.rows
    )
    assert library["motion_clip"] == "wave_hello" and library["clip_fps"] == 30
    assert uploaded["motion_clip"] == str(tmp_path / "my_jump.bvh") and uploaded["clip_fps"] == 12
