"""API jobs → the runs that render them: names, tags and run config, in one place.

Both the job submission sensor (sensors/jobs.py, the safety net) and the API (a job submitted
at once through the webserver's GraphQL API and the instance's run coordinator) build a job's
run from here, so the two always ask for the same run. No Dagster import: the API process
carries no asset graph (tests/test_layers.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from char_pipeline import catalog
from char_pipeline.settings import get_settings

JOB_ID_TAG = "char/job_id"
JOB_IDS_TAG = "char/job_ids"
GPU_TYPE_TAG = "char/gpu_type"
INSTANCE_COUNT_TAG = "char/instance_count"
ATTEMPT_TAG = "char/attempt"
SUBMITTED_BY_TAG = "char/submitted_by"  # "api" on runs the API launched itself
PARTITION_TAG = "dagster/partition"  # Dagster's own: the partition of a partitioned run

RENDER_REQUEST_JOB = "render_request_job"
NERF_REQUEST_JOB = "nerf_request_job"
BATCH_RENDER_JOB = "batch_render_job"
PARTITIONS = "reference_image_id"

# Node selectors of the usual managed-Kubernetes GPU node pools.
ACCELERATOR_LABELS = {
    "v100": "nvidia-tesla-v100",
    "a100": "nvidia-tesla-a100",
    "t4": "nvidia-tesla-t4",
}


def k8s_tags(gpu_type: str | None) -> dict[str, str]:
    """dagster-k8s run tags: one GPU and the node pool of that type (nothing for cpu)."""
    if gpu_type not in ACCELERATOR_LABELS:
        return {}
    config = {
        "container_config": {
            "resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}
        },
        "pod_spec_config": {
            "node_selector": {"cloud.google.com/gke-accelerator": ACCELERATOR_LABELS[gpu_type]}
        },
    }
    return {"dagster-k8s/config": json.dumps(config, sort_keys=True)}


def nerf_run_config_for(job) -> dict:
    """A nerf job's run: its stored trajectory → nerf_video (nerf_model is rebuilt, < 1 s)."""
    request = job.request
    return {
        "ops": {
            "nerf_video": {
                "config": {
                    "trajectory_key": catalog.job_trajectory_key(job.id),
                    "name": job.id,
                    "resolution": request["resolution"],
                    "fps": request["fps"],
                    "format": request["format"],
                    "job_result": {
                        **request["result_fields"],
                        "cache_ttl": request["cache_ttl"],
                        "url_ttl": request.get("url_ttl"),
                    },
                }
            }
        }
    }


def batch_run_config_for(jobs: list) -> dict:
    first = jobs[0].request
    return {
        "ops": {
            "plan_batch": {
                "config": {
                    "tasks": [
                        {
                            "job_id": job.id,
                            "reference_image_id": job.reference_image_id,
                            "sequence_key": catalog.job_sequence_key(job.id),
                            "result_fields": job.request["result_fields"],
                            "cache_ttl": job.request["cache_ttl"],
                            "url_ttl": job.request.get("url_ttl"),
                            "generation": job.request.get("generation"),
                            "background_key": job.request.get("background_key"),
                            "cast": job.request.get("cast"),
                        }
                        for job in jobs
                    ],
                    "resolution": first["resolution"],
                    "fps": first["fps"],
                    "format": first["format"],
                    "tasks_per_step": get_settings().resolved_batch_step_tasks,
                }
            }
        }
    }


def run_config_for(jobs: list) -> dict:
    """One run for jobs of one reference that share resolution, fps and format."""
    first = jobs[0].request
    return {
        "ops": {
            "control_sequences": {
                "config": {
                    "control_types": [],
                    "sequences": {job.id: catalog.job_sequence_key(job.id) for job in jobs},
                }
            },
            "frames": {
                "config": {
                    "resolution": first["resolution"],
                    **(
                        {"background": "image", "background_image": first["background_key"]}
                        if first.get("background_key")
                        else {}
                    ),
                    "generation": {
                        job.id: job.request["generation"]
                        for job in jobs
                        if job.request.get("generation")
                    },
                }
            },
            "video": {
                "config": {
                    "fps": first["fps"],
                    "formats": [first["format"]],
                    "job_results": {
                        job.id: {
                            **job.request["result_fields"],
                            "cache_ttl": job.request["cache_ttl"],
                            "url_ttl": job.request.get("url_ttl"),
                        }
                        for job in jobs
                    },
                }
            },
        }
    }


def job_tag(job_id: str) -> str:
    """A tag per job on every run that renders it, so runs are found by job."""
    return f"char/job.{job_id}"


TICK_GROUP = "tick"
TICK_GROUP_MAX = 32  # jobs per grouped run: a failed run retries at most this many


def tick_group(job) -> str:
    """The group of an ungrouped job found in one sensor tick: video jobs that render alike
    share a run; a nerf job is its own."""
    if job.kind != "video":
        return job.id
    request = job.request
    background = request.get("background_key") or "auto"
    return f"{TICK_GROUP}:{request['resolution']}:{request['fps']}:{request['format']}:{job.gpu_type}:{job.instance_count}:{background}"


@dataclass(frozen=True)
class RunSpec:
    """One run to request: what dg.RunRequest (or GraphQL's launchRun) is given."""

    job_name: str
    run_key: str
    run_config: dict
    tags: dict[str, str]
    partition_key: str | None = None


def run_spec_for_jobs(jobs: list, attempt: int, run_key: str, batch: bool = False) -> RunSpec:
    first = jobs[0]
    tags = {
        JOB_IDS_TAG: ",".join(job.id for job in jobs),
        GPU_TYPE_TAG: first.gpu_type,
        INSTANCE_COUNT_TAG: str(first.instance_count),
        ATTEMPT_TAG: str(attempt),
        **{job_tag(job.id): "1" for job in jobs},
        **k8s_tags(first.gpu_type),
    }
    if len(jobs) == 1:
        tags[JOB_ID_TAG] = first.id
    # A cast (several characters in one frame) is rendered by the batch op, whose steps are
    # not partitioned by one reference.
    if (
        batch
        or len({job.reference_image_id for job in jobs}) > 1
        or any(job.request.get("cast") for job in jobs)
    ):
        # A batch across references: one op run renders them all (assets/batch.py).
        return RunSpec(BATCH_RENDER_JOB, run_key, batch_run_config_for(jobs), tags)
    if first.kind == "nerf":
        return RunSpec(
            NERF_REQUEST_JOB, run_key, nerf_run_config_for(first), tags, first.reference_image_id
        )
    return RunSpec(
        RENDER_REQUEST_JOB, run_key, run_config_for(jobs), tags, first.reference_image_id
    )


def run_spec_for(job, attempt: int) -> RunSpec:
    """One job alone (first runs of single jobs, and every retry)."""
    return run_spec_for_jobs(
        [job], attempt, run_key=job.id if attempt == 1 else f"{job.id}.attempt{attempt}"
    )


class LaunchError(Exception):
    """The webserver did not launch the run (its message says why)."""


_LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

_ADD_PARTITION = """
mutation AddPartition($name: String!, $key: String!, $repository: RepositorySelector!) {
  addDynamicPartition(partitionsDefName: $name, partitionKey: $key, repositorySelector: $repository) {
    __typename
    ... on Error { message }
  }
}
"""


class GraphQLLauncher:
    """Submits a job's run at once through the Dagster webserver's GraphQL API, i.e. the
    instance's run coordinator (queued, tag limits and all), instead of waiting for the
    submission sensor's next tick (the daemon evaluates sensors every 5 s at most).

    The API launches before it creates the job row and marks the job launched, so the
    sensor never requests a second run; a failed launch leaves the job to the sensor.
    Plain HTTP (httpx), so the API process imports no Dagster."""

    def __init__(
        self,
        base_url: str,
        location: str = "char_pipeline",
        repository: str = "__repository__",
        timeout: float = 10.0,
    ) -> None:
        self.url = base_url.rstrip("/") + "/graphql"
        self.repository = {"repositoryLocationName": location, "repositoryName": repository}
        self.timeout = timeout

    def _call(self, query: str, variables: dict) -> dict:
        import httpx

        answer = httpx.post(
            self.url, json={"query": query, "variables": variables}, timeout=self.timeout
        )
        answer.raise_for_status()
        body = answer.json()
        if body.get("errors"):
            raise LaunchError("; ".join(error.get("message", "?") for error in body["errors"]))
        return body["data"]

    def launch(self, job) -> str:
        """Launch the run of one job (its first attempt); the run id."""
        spec = run_spec_for(job, 1)
        tags = {**spec.tags, SUBMITTED_BY_TAG: "api"}
        if spec.partition_key:
            added = self._call(
                _ADD_PARTITION,
                {"name": PARTITIONS, "key": spec.partition_key, "repository": self.repository},
            )["addDynamicPartition"]
            if added["__typename"] not in (
                "AddDynamicPartitionSuccess",
                "DuplicateDynamicPartitionError",
            ):
                raise LaunchError(f"{added['__typename']}: {added.get('message', '')}")
            tags[PARTITION_TAG] = spec.partition_key
        params = {
            "selector": {**self.repository, "jobName": spec.job_name},
            "runConfigData": spec.run_config,
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        result = self._call(_LAUNCH, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            details = result.get("message") or "; ".join(
                error["message"] for error in result.get("errors", [])
            )
            raise LaunchError(f"{result['__typename']}: {details}")
        return result["run"]["runId"]
