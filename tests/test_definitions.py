import subprocess
import sys

import dagster as dg

from char_pipeline.definitions import defs


def test_definitions_load_and_wire():
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("render_job")
    assert {node.name for node in job.nodes} == {
        "reference_image",
        "subject_mask",
        "identity_features",
        "control_sequences",
        "frames",
        "video",
        "nerf_model",
        "nerf_video",
    }
    assert {node.name for node in defs.resolve_job_def("nerf_request_job").nodes} == {
        "nerf_model",
        "nerf_video",
    }
    assert defs.resolve_sensor_def("reference_upload_sensor")


def test_the_names_the_api_launches_by_are_the_definitions_names():
    """launching.py names jobs and the partitions without importing them (the API process
    carries no asset graph): they must be the real ones."""
    from char_pipeline import launching
    from char_pipeline.assets.partitions import reference_partitions

    for name in (
        launching.RENDER_REQUEST_JOB,
        launching.NERF_REQUEST_JOB,
        launching.BATCH_RENDER_JOB,
    ):
        assert defs.resolve_job_def(name).name == name
    assert reference_partitions.name == launching.PARTITIONS


def test_importing_definitions_does_not_load_heavy_libraries():
    code = "import sys, char_pipeline.definitions; print(','.join(m for m in ('torch', 'onnxruntime', 'transformers', 'diffusers') if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""


def test_dagster_yaml_is_refreshed_unless_edited(tmp_path, monkeypatch):
    from char_pipeline.runner import DAGSTER_YAML, prepare_dagster_home
    from char_pipeline.settings import Settings

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    settings = Settings(pipeline_home=tmp_path)
    config = tmp_path / "dagster" / "dagster.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(DAGSTER_YAML.splitlines()[0] + "\ntelemetry:\n  enabled: false\n")
    prepare_dagster_home(settings)
    assert config.read_text() == DAGSTER_YAML
    config.write_text("telemetry:\n  enabled: false\n")
    prepare_dagster_home(settings)
    assert config.read_text() == "telemetry:\n  enabled: false\n"
