"""Manifest sensors evaluated tick by tick, then the runs they ask for, then the results."""

import json

import dagster as dg
import pandas as pd
import pytest

from char_pipeline.definitions import build_definitions
from char_pipeline.sensors.manifests import manifest_results_sensor, manifest_sensor
from char_pipeline.settings import Settings, get_settings


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAR_PIPELINE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    settings = Settings(pipeline_home=tmp_path / "home")
    folder = tmp_path / "home" / "manifests"
    folder.mkdir(parents=True)
    defs = build_definitions(settings)
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        yield instance, defs, folder
    get_settings.cache_clear()


def _tick(sensor, instance, defs, cursor=None):
    context = dg.build_sensor_context(
        instance=instance, resources={"store": defs.resources["store"]}, cursor=cursor
    )
    return sensor(context)


def test_new_same_and_edited_manifests(setup, image_paths):
    instance, defs, folder = setup
    rows = [
        {
            "reference_image": str(image_paths["present"]),
            "control_type": "latent",
            "steps": 3,
            "resolution": "64x64",
            "fps": 8,
        },
        {"reference_image": str(image_paths["present"]), "control_type": "bogus", "steps": 3},
        {
            "reference_image": str(image_paths["present"]),
            "control_type": "text",
            "prompt": "wave",
            "steps": 3,
            "resolution": "64x64",
            "fps": 8,
        },
    ]
    pd.DataFrame(rows).to_csv(folder / "night.csv", index=False)

    first = _tick(manifest_sensor, instance, defs)
    assert [r.tags["char/manifest_row"] for r in first.run_requests] == ["1", "3"]
    (partitions,) = first.dynamic_partitions_requests
    assert partitions.partition_keys == [first.run_requests[0].partition_key]
    report = json.loads((folder / "night.report.json").read_text())
    assert report["bad_rows"] == [2] and report["problems"][0]["column"] == "control_type"

    again = _tick(manifest_sensor, instance, defs, cursor=first.cursor)
    assert again.run_requests == []

    pd.DataFrame(rows[:1]).to_csv(folder / "night.csv", index=False)  # edited: a new version
    edited = _tick(manifest_sensor, instance, defs, cursor=first.cursor)
    assert len(edited.run_requests) == 1
    assert edited.run_requests[0].run_key != first.run_requests[0].run_key

    # Run the first version's rows, then the results sensor writes the table in row order.
    instance.add_dynamic_partitions("reference_image_id", partitions.partition_keys)
    job = defs.resolve_job_def("render_job")
    for request in first.run_requests:
        result = job.execute_in_process(
            run_config=request.run_config,
            instance=instance,
            partition_key=request.partition_key,
            tags=request.tags,
            asset_selection=request.asset_selection,  # as the daemon would: videos, no 3D
        )
        assert result.success
    assert "No manifest finished" not in (
        _tick(manifest_results_sensor, instance, defs).skip_reason or ""
    )
    results = pd.read_parquet(folder / "night.results.parquet")
    assert list(results["status"]) == ["completed", "invalid", "completed"]
    assert results.loc[0, "frames"] == 3 and results.loc[0, "video_url"].endswith(".mp4")
