"""A batch on the distributed profile with 1 worker, then 2 (issue 19).

Run: .venv/bin/python bench/distributed.py [--references 20] [--frames 48] [--repeats 2]
Needs the machine's PostgreSQL (a database of its own, dropped after) and RabbitMQ; starts an
S3 server (moto) on loopback, `char-pipeline serve` with CHAR_PROFILE=distributed, and
`char-pipeline worker --queue v100` processes (the API's default GPU type; without a GPU
the v100 compute type renders on the CPU). Times POST /v1/batch/video (N references ×
frames at 512x512, async, one task per step) until every task completed, with one worker and
with two; each figure is the median of --repeats batches (different seeds: no cache hits).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.batch import references, wait_idle
from char_pipeline.runner import dagster_postgres_url
from tests.live_server import LiveServer, LiveWorker, purge_queues, wait_until
from tests.services import RABBITMQ_URL, moto_s3, postgres_database

QUEUE = "v100"


def run_batch(client: httpx.Client, ids: list[str], frames: int, seed: int) -> float:
    tasks = []
    for index, reference_id in enumerate(ids):
        z = client.post(f"/v1/control/latent?length={frames}&seed={seed + index}").json()
        tasks.append(
            {
                "reference_image_id": reference_id,
                "control_type": "latent",
                "z_sequence": z["z_sequence"],
                "resolution": "512x512",
                "fps": 24,
            }
        )
    started = time.perf_counter()
    answer = client.post("/v1/batch/video", json={"tasks": tasks, "async": True})
    assert answer.status_code == 202, answer.text
    location = answer.headers["Location"]

    def done():
        batch = client.get(location).json()
        if batch["status"] in ("completed", "failed"):
            assert batch["status"] == "completed", batch
            return True
        return False

    wait_until(done, 1800, "the batch", interval=0.5)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--references", type=int, default=20)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[name] = "bench"
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    home = Path(tempfile.mkdtemp(prefix="char_bench_distributed_"))
    with postgres_database("char_bench") as database, moto_s3("artifacts") as endpoint:
        os.environ["CHAR_DAGSTER_POSTGRES_URL"] = dagster_postgres_url(database)  # wait_idle
        purge_queues(RABBITMQ_URL, [QUEUE, "dagster"])
        server = LiveServer(
            home / "serve",
            CHAR_PROFILE="distributed",
            CHAR_DAGSTER_POSTGRES_URL=database,
            CHAR_ARTIFACTS_URL="s3://artifacts/bench",
            CHAR_S3_ENDPOINT_URL=endpoint,
            CHAR_CELERY_BROKER_URL=RABBITMQ_URL,
            CHAR_SENSOR_INTERVAL_SECONDS="1",
            CHAR_RATE_LIMIT="1000000/minute",
            CHAR_RATE_LIMIT_BURST="1000000/second",
        )
        key = server.create_key("bench")["api_key"]
        workers: list[LiveWorker] = []
        try:
            server.start(timeout=180)
            client = httpx.Client(
                base_url=server.base_url, timeout=120, headers={"Authorization": f"Bearer {key}"}
            )
            ids = []
            for index, data in enumerate(references(args.references)):
                answer = client.post(
                    "/v1/reference-image", files={"image": (f"r{index}.png", data)}
                )
                ids.append(answer.json()["reference_image_id"])
            for reference_id in ids:
                while (
                    client.get(f"/v1/reference-image/{reference_id}").json()["status"] == "pending"
                ):
                    time.sleep(0.5)
            figures = {}
            for count in (1, 2):
                while len(workers) < count:
                    name = f"w{len(workers) + 1}"
                    workers.append(LiveWorker(name, home / name, server.env, QUEUE))
                wait_until(lambda: all(w.ready() for w in workers), 120, "the workers")
                # Warm: each worker imports the code location on its first step.
                run_batch(client, ids[: 2 * count], args.frames, seed=90_000 + count)
                wait_idle(home / "serve" / "dagster")
                seconds = [
                    run_batch(client, ids, args.frames, seed=1000 * (count * 10 + repeat))
                    for repeat in range(args.repeats)
                ]
                figures[count] = seconds
                print(f"{count} worker(s): {', '.join(f'{s:.1f}' for s in seconds)} s", flush=True)
            n = len(ids)
            print(f"\n{n} references × {args.frames} frames at 512x512, one task per step:")
            for count, seconds in figures.items():
                median = statistics.median(seconds)
                print(
                    f"  {count} worker(s): median {median:.1f} s over {len(seconds)} "
                    f"({60 * n / median:.1f} videos/min)"
                )
        finally:
            for worker in workers:
                worker.stop()
            server.stop()


if __name__ == "__main__":
    main()
