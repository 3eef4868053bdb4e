"""The deployment files agree with the code: what the runs ask of Kubernetes, the settings the
processes read, the instance configuration, the image's install from the lock."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from char_pipeline.resources.compute import ACCELERATOR_LABELS, COMPUTE_TYPES, k8s_tags
from char_pipeline.runner import dagster_yaml
from char_pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def _env_file() -> dict[str, str]:
    lines = (DEPLOY / "env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_env_example_is_valid_settings():
    env = _env_file()
    names = {f"CHAR_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= names, set(env) - names
    settings = Settings(**{key.removeprefix("CHAR_").lower(): value for key, value in env.items()})
    assert settings.profile == "distributed"
    assert settings.resolved_job_store_url.endswith("options=-csearch_path%3Dchar_pipeline")


def test_instance_file_is_what_the_code_writes():
    settings = Settings(profile="distributed", dagster_postgres_url="postgresql://x@y/z")
    written = dagster_yaml(settings).split("\n", 1)[1]  # all but char-pipeline's marker line
    shipped = (DEPLOY / "dagster.yaml").read_text()
    assert not shipped.startswith(
        "# Written by char-pipeline"
    )  # an edited copy stays the operator's
    assert shipped.endswith(written)


def test_helm_values_match_the_compute_types_and_run_tags():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    pools = {pool["computeType"]: pool for pool in values["charNodePools"]}
    assert set(pools) == set(ACCELERATOR_LABELS) == {t for t in COMPUTE_TYPES if t != "cpu"}
    for gpu_type, pool in pools.items():
        wanted = json.loads(k8s_tags(gpu_type)["dagster-k8s/config"])
        assert pool["nodeSelector"] == wanted["pod_spec_config"]["node_selector"]
        limit = wanted["container_config"]["resources"]["limits"]["nvidia.com/gpu"]
        assert str(pool["gpusPerRun"]) == limit
    limits = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"][
        "tagConcurrencyLimits"
    ]
    assert {entry["value"] for entry in limits} == set(ACCELERATOR_LABELS)
    assert all(entry["key"] == "char/gpu_type" for entry in limits)
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "char_pipeline.definitions"]
    assert {"name": "CHAR_PROFILE", "value": "distributed"} in deployment["env"]
    assert (
        "CHAR_PROFILE=distributed" in values["runLauncher"]["config"]["k8sRunLauncher"]["envVars"]
    )
    database = values["postgresql"]
    env = _env_file()
    assert (
        f"@{database['postgresqlHost']}:{database['service']['port']}/{database['postgresqlDatabase']}"
        in env["CHAR_DAGSTER_POSTGRES_URL"]
    )


def test_one_worker_deployment_per_compute_type_takes_its_queue():
    from char_pipeline.assets.batch import CELERY_QUEUE_TAG, RENDER_CHUNK_OPS

    documents = list(yaml.safe_load_all((DEPLOY / "k8s" / "workers.yaml").read_text()))
    by_queue = {}
    for document in documents:
        assert document["kind"] == "Deployment"
        pod = document["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        command = container["command"]
        assert command[:2] == ["char-pipeline", "worker"]
        by_queue[command[command.index("--queue") + 1]] = (pod, container)
    queues = {op.tags[CELERY_QUEUE_TAG] for op in RENDER_CHUNK_OPS.values()}
    assert set(by_queue) == queues == set(COMPUTE_TYPES)
    for queue, (pod, container) in by_queue.items():
        if queue == "cpu":
            assert "nodeSelector" not in pod and "nvidia.com/gpu" not in str(container)
            continue
        wanted = json.loads(k8s_tags(queue)["dagster-k8s/config"])
        assert pod["nodeSelector"] == wanted["pod_spec_config"]["node_selector"]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "CHAR_CELERY_BROKER_URL" in _env_file()


def test_api_manifests_and_image_agree():
    documents = list(yaml.safe_load_all((DEPLOY / "k8s" / "api.yaml").read_text()))
    kinds = {document["kind"]: document for document in documents}
    assert set(kinds) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    (container,) = kinds["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert "char_pipeline.api.main:app" in container["command"]
    port = container["ports"][0]["containerPort"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    assert kinds["Service"]["spec"]["ports"][0]["targetPort"] == port
    assert (
        kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"]
        == kinds["Deployment"]["metadata"]["name"]
    )
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile and "requirements/cpu.txt" in dockerfile
    assert "char_pipeline.api.main:app" in dockerfile and f"{port}" in dockerfile
