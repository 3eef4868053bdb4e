"""The path to 100k references a day, measured on the machine's PostgreSQL (issue 19).

Run: .venv/bin/python bench/scale.py [--partitions 10000,100000] [--jobs 2000] [--api-seconds 10]
Needs PostgreSQL (a database of its own per run, dropped after) and Redis; all traffic stays
on loopback and every phase is bounded. Figures:
  1. Dagster dynamic partitions (the reference_image_id partitions) on dagster-postgres: time
     to add, list, look up and delete 10k and 100k;
  2. job-store writes per second (create, start, progress, complete) from 1 and 4 threads;
  3. sensor throughput: the job submission sensor's ticks (jobs turned into run requests per
     tick, with 100k partitions known) and the webhook sensor (deliveries per tick to a
     receiver on loopback);
  4. the API with 2 uvicorn workers sharing Redis limits and the PostgreSQL job store:
     GET /v1/jobs, GET /v1/jobs/{id} and POST /v1/generate/video (async) requests per second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("CHAR_OUTBOUND_ALLOW", "127.0.0.1")  # the webhook receiver

from tests.services import REDIS_URL, postgres_database

PARTITIONS = "reference_image_id"


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def partitions(instance, sizes: list[int]) -> list[str]:
    lines = []
    present = 0
    for size in sizes:
        keys = [f"ref_{index:016x}" for index in range(present, size)]
        seconds = sum(
            timed(
                lambda chunk=keys[start : start + 1000]: instance.add_dynamic_partitions(
                    PARTITIONS, chunk
                )
            )
            for start in range(0, len(keys), 1000)
        )
        present = size
        listed = [timed(lambda: instance.get_dynamic_partitions(PARTITIONS)) for _ in range(3)]
        probes = [f"ref_{i * 7919 % size:016x}" for i in range(200)]
        lookups = timed(
            lambda probes=probes: [instance.has_dynamic_partition(PARTITIONS, k) for k in probes]
        )
        lines.append(
            f"  {size:>7,} partitions: add {len(keys):,} in {seconds:.1f} s "
            f"({len(keys) / seconds:,.0f}/s, chunks of 1,000); list all "
            f"{statistics.median(listed) * 1000:,.0f} ms (median of 3); "
            f"200 lookups {lookups * 1000:,.0f} ms"
        )
    total = present
    doomed = [f"ref_{index:016x}" for index in range(total)]
    deleted = timed(lambda: [instance.delete_dynamic_partition(PARTITIONS, k) for k in doomed])
    lines.append(
        f"  delete all {total:,} one by one (as the prune sensor does): {deleted:.1f} s "
        f"({total / deleted:,.0f}/s)"
    )
    return lines


def job_store_writes(url: str, count: int) -> list[str]:
    from char_pipeline.jobstore import open_job_store

    store = open_job_store(url)
    lines = []
    for threads in (1, 4):
        lines.append(_store_round(store, threads, count // threads))
    store.engine.dispose()
    return lines


def _store_round(store, threads: int, per_thread: int) -> str:
    ids: list[str] = []
    lock = threading.Lock()

    def create(n: int) -> None:
        for _ in range(n):
            job = store.create_job(
                kind="video", reference_image_id="ref_0", request={"resolution": "256x256"}
            )
            with lock:
                ids.append(job.id)

    def lifecycle(chunk: list[str]) -> None:
        for job_id in chunk:
            store.start_job(job_id, "run")
            store.update_progress(job_id, 50.0, "half")
            store.complete_job(job_id, {"video_url": "x"})

    created = timed(lambda: _in_threads(create, [per_thread] * threads))
    chunks = [ids[i::threads] for i in range(threads)]
    finished = timed(lambda: _in_threads(lifecycle, chunks))
    total = per_thread * threads
    return (
        f"  {threads} thread(s): {total / created:,.0f} creates/s; "
        f"{3 * total / finished:,.0f} updates/s (start, progress, complete: "
        f"{total / finished:,.0f} jobs/s through their life)"
    )


def _in_threads(target, arguments: list) -> None:
    workers = [threading.Thread(target=target, args=(argument,)) for argument in arguments]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def sensors(instance, url: str, jobs_count: int) -> list[str]:
    import logging

    import dagster as dg

    from char_pipeline.jobstore import open_job_store
    from char_pipeline.resources.jobs import JobStoreResource
    from char_pipeline.sensors.jobs import job_submission_sensor
    from char_pipeline.sensors.webhooks import DELIVERIES_PER_TICK, webhook_delivery_sensor
    from tests.receiver import Receiver

    logging.getLogger("dagster").setLevel(logging.WARNING)  # not a line per delivery
    store = open_job_store(url)
    resource = JobStoreResource(url=url)
    key, _ = store.create_key(name="bench", scopes=["generate:write"])
    instance.add_dynamic_partitions(PARTITIONS, [f"ref_{index:016x}" for index in range(100_000)])
    cursor = max((job.seq for job in store.jobs_after(0, limit=100_000)), default=0)
    lines = []
    # Twice the same references: first as new to the sensor's process (one partition lookup
    # per reference), then as references it saw in the last minutes (none).
    for label in ("references new to the sensor", "references seen in the last 10 min"):
        specs = [
            {
                "kind": "video",
                "reference_image_id": f"ref_{index * 37 % 100_000:016x}",
                "request": {
                    "resolution": "256x256",
                    "fps": 24,
                    "format": "mp4",
                    "result_fields": {},
                    "cache_ttl": 60,
                },
                "api_key_id": key.id,
            }
            for index in range(jobs_count)
        ]
        for start in range(0, len(specs), 500):
            store.create_jobs(specs[start : start + 500])
        ticks, requested = [], 0
        while True:
            context = dg.build_sensor_context(
                instance=instance, cursor=str(cursor), resources={"jobs": resource}
            )
            started = time.perf_counter()
            result = job_submission_sensor(context)
            if not result.run_requests:
                break
            ticks.append(time.perf_counter() - started)
            requested += len(result.run_requests)
            cursor = int(result.cursor)
        median = statistics.median(ticks)
        lines.append(
            f"  job submission, {label}: {jobs_count:,} jobs (100k partitions) in {len(ticks)} "
            f"ticks, {requested} run requests; a tick of 200 jobs {median * 1000:,.0f} ms "
            f"(median) → {200 / median:,.0f} jobs/s per sensor evaluation"
        )
    # Webhooks: completed jobs with a callback to a receiver on loopback.
    with Receiver([store.webhook_secrets(key.id)[0]]) as receiver:
        count = 4 * DELIVERIES_PER_TICK
        for _ in range(count):
            job = store.create_job(
                kind="video",
                reference_image_id="ref_0",
                request={},
                api_key_id=key.id,
                callback_url=receiver.url,
            )
            store.complete_job(job.id, {}, {"job_id": job.id, "status": "completed"})
        tick_seconds = []
        while len(receiver.requests) < count and len(tick_seconds) < 20:
            context = dg.build_sensor_context(instance=instance, resources={"jobs": resource})
            tick_seconds.append(timed(lambda c=context: webhook_delivery_sensor(c)))
        delivered = len(receiver.requests)
    lines.append(
        f"  webhooks: {delivered} deliveries in {len(tick_seconds)} ticks of ≤ "
        f"{DELIVERIES_PER_TICK}; a tick takes {statistics.median(tick_seconds) * 1000:,.0f} ms "
        f"(median) → {DELIVERIES_PER_TICK / statistics.median(tick_seconds):,.0f} deliveries/s "
        f"per sensor (receiver answers at once)"
    )
    store.engine.dispose()
    return lines


def api(database: str, seconds: int) -> list[str]:
    import httpx

    from tests.live_server import LiveServer, upload_reference, wait_until

    wrk = shutil.which("wrk")
    if not wrk:
        return ["  (wrk is not installed: `apt-get install wrk`)"]
    home = Path(tempfile.mkdtemp(prefix="char_bench_scale_"))
    server = LiveServer(
        home,
        CHAR_PROFILE="distributed",
        CHAR_DAGSTER_POSTGRES_URL=database,
        CHAR_RATE_LIMIT_STORAGE=REDIS_URL,
        CHAR_RATE_LIMIT="100000000/minute",
        CHAR_RATE_LIMIT_BURST="100000000/second",
        CHAR_RATE_LIMIT_JOB_READS="100000000/minute",
    )
    key = server.create_key("bench")["api_key"]
    lines = []
    try:
        server.start(timeout=180, api_workers=2)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
            import skimage

            picture = Path(skimage.__file__).parent / "data" / "chelsea.png"
            reference_id = upload_reference(client, picture)
            wait_until(
                lambda: (
                    client.get(f"/v1/reference-image/{reference_id}").json()["status"]
                    == "processed"
                ),
                180,
                "the reference",
            )
            z = client.post("/v1/control/latent?length=24&seed=1").json()["z_sequence"]
            body = {
                "reference_image_id": reference_id,
                "control_type": "latent",
                "z_sequence": z,
                "resolution": "256x256",
                "async": True,
            }
            job_id = client.post("/v1/generate/video", json=body).json()["job_id"]
        script = home / "post.lua"
        import json

        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        for label, path, extra in (
            ("GET /v1/jobs?limit=20", "/v1/jobs?limit=20", []),
            ("GET /v1/jobs/{id}", f"/v1/jobs/{job_id}", []),
            ("POST /v1/generate/video (async)", "/v1/generate/video", ["-s", str(script)]),
        ):
            command = [wrk, "-t2", "-c16", f"-d{seconds}s", "-H", f"Authorization: Bearer {key}"]
            output = subprocess.run(
                [*command, *extra, f"{server.base_url}{path}"],
                capture_output=True,
                text=True,
                check=True,
                timeout=seconds + 60,
            ).stdout
            report = output.splitlines()
            rate = next(line.split()[1] for line in report if line.startswith("Requests/sec"))
            latency = next(line.split()[1:3] for line in report if "Latency" in line)
            errors = [line.strip() for line in report if "Non-2xx" in line or "Socket" in line]
            lines.append(
                f"  {label}: {float(rate):,.0f} requests/s, mean latency {latency[0]} "
                f"(wrk 2 threads × 16 connections, {seconds} s){' ' + '; '.join(errors) if errors else ''}"
            )
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partitions", default="10000,100000")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--api-seconds", type=int, default=10)
    parser.add_argument("--skip", default="", help="comma-separated: partitions,store,sensors,api")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    import dagster as dg

    from char_pipeline.runner import prepare_instance
    from char_pipeline.settings import Settings

    with postgres_database("char_scale") as database:
        home = Path(tempfile.mkdtemp(prefix="char_bench_scale_"))
        settings = Settings(
            pipeline_home=home, profile="distributed", dagster_postgres_url=database
        )
        dagster_home = prepare_instance(settings)
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            if "partitions" not in skip:
                print("Dynamic partitions (dagster-postgres):", flush=True)
                sizes = [int(size) for size in args.partitions.split(",")]
                print("\n".join(partitions(instance, sizes)), flush=True)
            if "store" not in skip:
                print("Job store on PostgreSQL:", flush=True)
                print("\n".join(job_store_writes(settings.resolved_job_store_url, args.jobs)))
            if "sensors" not in skip:
                print("Sensors (one evaluation = one tick):", flush=True)
                print("\n".join(sensors(instance, settings.resolved_job_store_url, args.jobs)))
        shutil.rmtree(home, ignore_errors=True)
    if "api" not in skip:
        with postgres_database("char_scale_api") as database:
            print("API, 2 uvicorn workers, Redis limits, PostgreSQL job store:", flush=True)
            print("\n".join(api(database, args.api_seconds)), flush=True)


if __name__ == "__main__":
    main()
