import json

import dagster as dg
import yaml

from char_pipeline import catalog
from char_pipeline.definitions import ASSETS, build_resources
from char_pipeline.resources.compute import ComputeFleet, gpu_present, k8s_tags
from char_pipeline.runner import prepare_dagster_home
from char_pipeline.sensors.jobs import run_request_for
from char_pipeline.settings import Settings


def test_fleet_selects_types_and_falls_back_to_cpu_plainly():
    fleet = ComputeFleet.build()
    assert fleet.select("a100").max_render_pixels == 3840 * 2160
    assert fleet.select("t4").batch_size == 4 and fleet.select("v100").precision == "fp16"
    assert fleet.select("h100").name == "cpu" and fleet.select(None).name == "cpu"
    if not gpu_present():
        device, note = fleet.select("v100").effective_device()
        assert device == "cpu" and "no GPU on this machine" in note
    assert fleet.select("cpu").effective_device() == ("cpu", None)


def test_k8s_tags_request_one_gpu_on_the_right_pool():
    config = json.loads(k8s_tags("a100")["dagster-k8s/config"])
    assert config["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert (
        config["pod_spec_config"]["node_selector"]["cloud.google.com/gke-accelerator"]
        == "nvidia-tesla-a100"
    )
    assert k8s_tags("cpu") == {}


def test_job_runs_carry_gpu_type_and_k8s_tags(tmp_path):
    from char_pipeline.jobstore import JobStore

    store = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    job = store.create_job(
        kind="video",
        reference_image_id="ref_abcd1234",
        request={
            "resolution": "64x64",
            "fps": 8,
            "format": "mp4",
            "result_fields": {},
            "cache_ttl": 60,
        },
        gpu_type="t4",
        instance_count=3,
    )
    request = run_request_for(job, 1)
    assert request.tags["char/gpu_type"] == "t4" and request.tags["char/instance_count"] == "3"
    assert "nvidia-tesla-t4" in request.tags["dagster-k8s/config"]


def test_shipped_instance_config_limits_each_gpu_type(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = prepare_dagster_home(Settings(pipeline_home=tmp_path))
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    limits = {
        (limit["key"], limit["value"]): limit["limit"]
        for limit in config["run_coordinator"]["config"]["tag_concurrency_limits"]
    }
    assert set(limits) == {("char/gpu_type", t) for t in ("v100", "t4", "a100")}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_coordinator is not None


def test_render_metadata_says_which_type_ran_where(tmp_path, image_paths):
    settings = Settings(pipeline_home=tmp_path)
    resources = build_resources(settings)
    catalog.save_upload(
        resources["store"],
        image_paths["present"].read_bytes(),
        "p.png",
        reference_id="ref_gpu_present",
    )
    run_config = {
        "ops": {
            "control_sequences": {"config": {"control_types": ["latent"], "steps": 2}},
            "frames": {"config": {"resolution": "64x64"}},
            "video": {"config": {"formats": ["mp4"]}},
            # The 3D turntable is not what these tests are about: keep it short.
            "nerf_video": {"config": {"frames": 4}},
        }
    }
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        instance.add_dynamic_partitions("reference_image_id", ["ref_gpu_present"])
        result = dg.materialize(
            ASSETS,
            partition_key="ref_gpu_present",
            instance=instance,
            resources=resources,
            run_config=run_config,
            tags={"char/gpu_type": "a100"},
        )
    metadata = result.asset_materializations_for_node("frames")[0].metadata
    assert metadata["compute_type"].value == "a100"
    if not gpu_present():
        assert metadata["device"].value == "cpu" and "no GPU" in metadata["gpu_fallback"].value
