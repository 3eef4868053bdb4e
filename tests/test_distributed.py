"""The distributed profile for real: `char-pipeline serve` with Dagster on PostgreSQL,
artifacts on an S3 server (moto), and batch steps fanned out over RabbitMQ to two
`char-pipeline worker` processes, each with its own data root (they share only the
database, the bucket and the broker, as two machines would).

One test, two batches, so the service and the workers start once (~1 minute):
1. a batch of 6 tasks across 3 references: both workers render steps (the run's step
   records say which), every video decodes, one verified webhook per job;
2. a worker killed (kill -9) while it renders: the broker hands its step to the other
   worker and every job still completes once, with one webhook.
"""

from __future__ import annotations

import collections
import time

import httpx
import pytest

from char_pipeline.catalog import run_output_key
from char_pipeline.engine.encode import probe_video
from char_pipeline.storage import ArtifactStore
from tests.live_server import (
    LiveServer,
    LiveWorker,
    json_of,
    purge_queues,
    upload_reference,
    wait_until,
)
from tests.receiver import Receiver
from tests.services import RABBITMQ_URL, moto_s3, postgres_database, require_service

QUEUE = "t4"  # the batch asks for t4 (X-GPU-Type); the workers take that queue


def step_workers(instance, run_id: str) -> dict[str, list[str]]:
    """Step key → the Celery workers that started it, in order (dagster-celery's engine
    event "Executing steps … in celery worker" carries the worker's name)."""
    import dagster as dg

    started = collections.defaultdict(list)
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = record.dagster_event.engine_event_data
        worker = data.metadata.get("Celery worker") if data else None
        if worker is not None:
            started[record.step_key].append(worker.value)
    return dict(started)


def runs_of(instance, job_id: str) -> list[str]:
    """The Dagster runs of a job (the submission sensor tags each run with its jobs)."""
    import dagster as dg

    from char_pipeline.sensors.jobs import job_tag

    runs = instance.get_runs(filters=dg.RunsFilter(tags={job_tag(job_id): "1"}))
    return [run.run_id for run in runs]


def submit_batch(client, references, *, frames, resolution, callback_url, seed) -> dict:
    tasks = []
    for index, reference_id in enumerate(references):
        z_sequence = client.post(f"/v1/control/latent?length={frames}&seed={seed + index}")
        tasks.append(
            {
                "reference_image_id": reference_id,
                "control_type": "latent",
                "z_sequence": json_of(z_sequence)["z_sequence"],
                "resolution": resolution,
                "fps": 12,
            }
        )
    answer = client.post(
        "/v1/batch/video",
        headers={"X-GPU-Type": QUEUE},
        json={"tasks": tasks, "async": True, "callback_url": callback_url},
    )
    assert answer.status_code == 202, answer.text
    return answer.json()


def batch_jobs(client, batch_id: str) -> list[dict]:
    return json_of(client.get("/v1/jobs", params={"batch_id": batch_id, "limit": 100}))["data"]


def wait_batch(client, batch: dict, timeout: float) -> list[dict]:
    def finished():
        jobs = batch_jobs(client, batch["batch_id"])
        done = all(job["status"] in ("completed", "failed", "cancelled") for job in jobs)
        return jobs if done and len(jobs) == len(batch["tasks"]) else None

    return wait_until(finished, timeout, f"batch {batch['batch_id']} to finish", interval=2)


@pytest.mark.slow
def test_batch_steps_fan_out_to_celery_workers_and_survive_a_killed_one(
    tmp_path, image_paths, monkeypatch
):
    import dagster as dg

    from char_pipeline.runner import prepare_dagster_home
    from char_pipeline.settings import Settings

    require_service("RabbitMQ", "127.0.0.1", 5672)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with postgres_database("char_distributed") as database, moto_s3("artifacts") as endpoint:
        settings = {
            "CHAR_PROFILE": "distributed",
            "CHAR_DAGSTER_POSTGRES_URL": database,
            "CHAR_ARTIFACTS_URL": "s3://artifacts/char",
            "CHAR_S3_ENDPOINT_URL": endpoint,
            "CHAR_CELERY_BROKER_URL": RABBITMQ_URL,
            "CHAR_SENSOR_INTERVAL_SECONDS": "1",
            "CHAR_OUTBOUND_ALLOW": "127.0.0.1",
        }
        purge_queues(RABBITMQ_URL, [QUEUE, "dagster"])
        server = LiveServer(tmp_path / "serve", **settings)
        key = server.create_key("distributed")
        workers = [
            LiveWorker(name, tmp_path / name, server.env, QUEUE) for name in ("left", "right")
        ]
        # This test's own view of the shared Dagster instance (environment restored after).
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "observer"))
        monkeypatch.setenv("CHAR_DAGSTER_POSTGRES_URL", database)
        observer_home = prepare_dagster_home(
            Settings(
                pipeline_home=tmp_path / "observer",
                profile="distributed",
                dagster_postgres_url=database,
            )
        )
        headers = {"Authorization": f"Bearer {key['api_key']}"}
        try:
            with (
                Receiver([key["webhook_secret"]]) as receiver,
                httpx.Client(base_url=server.base_url, timeout=60, headers=headers) as client,
                dg.DagsterInstance.from_config(str(observer_home)) as instance,
            ):
                server.start()
                references = [
                    upload_reference(client, image_paths[name])
                    for name in ("chelsea", "astronaut", "present")
                ]
                for reference_id in references:
                    wait_until(
                        lambda r=reference_id: (
                            json_of(client.get(f"/v1/reference-image/{r}"))["status"] == "processed"
                        ),
                        180,
                        f"reference {reference_id} to be processed",
                    )
                wait_until(lambda: all(w.ready() for w in workers), 120, "the workers")

                # 1. Six tasks across three references: both workers render.
                batch = submit_batch(
                    client,
                    references * 2,
                    frames=12,
                    resolution="128x128",
                    callback_url=receiver.url,
                    seed=100,
                )
                jobs = wait_batch(client, batch, 300)
                assert [job["status"] for job in jobs] == ["completed"] * 6, jobs
                run_ids = {run for job in jobs for run in runs_of(instance, job["job_id"])}
                assert len(run_ids) == 1, run_ids  # one run, its steps on the workers
                started = step_workers(instance, run_ids.pop())
                render_steps = {k: v for k, v in started.items() if k.startswith("render_chunk_t4")}
                assert len(render_steps) == 6, started  # one task per step
                assert {v[0] for v in render_steps.values()} == {w.name for w in workers}, started
                for job in jobs:
                    video = client.get(job["result"]["video_url"])
                    assert video.status_code == 200
                    path = tmp_path / f"{job['job_id']}.mp4"
                    path.write_bytes(video.content)
                    assert probe_video(path).frames == 12

                # 2. A worker killed while it renders: its step goes to the other worker.
                batch = submit_batch(
                    client,
                    references * 2,
                    frames=48,
                    resolution="320x320",
                    callback_url=receiver.url,
                    seed=200,
                )
                victim, survivor = workers

                store = ArtifactStore(root_url="s3://artifacts/char", s3_endpoint_url=endpoint)

                def victim_is_rendering():
                    """(run, step) the victim renders, not yet half done (its job's progress),
                    so the kill surely lands mid-task."""
                    jobs = batch_jobs(client, batch["batch_id"])
                    runs = {run for job in jobs for run in runs_of(instance, job["job_id"])}
                    for run_id in runs:
                        for step, names in step_workers(instance, run_id).items():
                            if not step.startswith("render_chunk_t4") or names[-1] != victim.name:
                                continue
                            chunk_key = run_output_key(
                                run_id, "plan_batch", QUEUE, step.split("[")[1].rstrip("]")
                            )
                            (task,) = store.read_json(chunk_key)["tasks"]
                            job = json_of(client.get(f"/v1/jobs/{task['job_id']}"))
                            if job["status"] in ("pending", "processing") and job["progress"] < 50:
                                return run_id, step
                    return None

                run_id, killed_step = wait_until(
                    victim_is_rendering, 120, "the victim's step", interval=0.5
                )
                victim.kill()
                jobs = wait_batch(client, batch, 300)
                assert [job["status"] for job in jobs] == ["completed"] * 6, jobs
                assert step_workers(instance, run_id)[killed_step][-1] == survivor.name

                # One verified webhook per job, for both batches.
                wait_until(lambda: len(receiver.requests) >= 12, 60, "the webhooks")
                time.sleep(2)  # a duplicate would arrive within the sensor's next ticks
                per_job = collections.Counter(r["body"]["job_id"] for r in receiver.requests)
                assert len(per_job) == 12 and set(per_job.values()) == {1}, per_job
                assert all(r["verified"] for r in receiver.requests)
                assert server.stop() == 0
        except BaseException:
            print(server.log_tail(), *(w.log_tail() for w in workers), sep="\n\n")
            raise
        finally:
            for worker in workers:
                worker.stop()
            server.stop()
