"""API benchmarks against a real `char-pipeline serve` (API + Dagster webserver + daemon).

Run: .venv/bin/python bench/api.py [--frames 40] [--jobs 5]
Targets (2 cores, warm): POST /v1/generate/frame 720x720 p50 ≤ 150 ms, p95 ≤ 300 ms;
GET /v1/jobs/{id} ≥ 300 requests/s; async 48-frame 720x720 video POST → completed p50 ≤ 12 s;
GET /v1/jobs (a page of 20) ≥ 100 requests/s; long poll: status change → answer p50 ≤ 300 ms.
Rate limits are raised for the run (CHAR_RATE_LIMIT*) so they do not cap the measurement.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import skimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live_server import LiveServer


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _throughput(base: str, headers: dict, path: str, threads: int, seconds: float) -> float:
    counts = [0] * threads
    stop_at = time.perf_counter() + seconds

    def poll(slot: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as own:
            while time.perf_counter() < stop_at:
                assert own.get(path).status_code == 200
                counts[slot] += 1

    workers = [threading.Thread(target=poll, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - started)


def _load(base: str, key: str, path: str, args) -> str:
    """Requests per second on one URL: wrk when installed (Debian package), else threads."""
    wrk = shutil.which("wrk")
    if not wrk:
        headers = {"Authorization": f"Bearer {key}"}
        rate = _throughput(base, headers, path, args.threads, args.poll_seconds)
        return f"{rate:.0f} requests/s ({args.threads} Python client threads on the same cores, 1 API worker)"
    output = subprocess.run(
        [
            wrk,
            "-t2",
            "-c16",
            f"-d{int(args.poll_seconds)}s",
            "-H",
            f"Authorization: Bearer {key}",
            f"{base}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(
        next(line.split()[1] for line in output.splitlines() if line.startswith("Requests/sec"))
    )
    errors = [line for line in output.splitlines() if "Non-2xx" in line or "Socket errors" in line]
    return (
        f"{rate:.0f} requests/s (wrk, 2 threads, 16 connections, 1 API worker) {' '.join(errors)}"
    )


def _small_jobs(client, base: str, headers: dict, reference_id: str, count: int) -> str:
    bodies = []
    for index in range(count):
        length = 12 + (index * 7) % 13  # 12–24 frames
        z = client.post(f"/v1/control/latent?length={length}&seed={9000 + index}").json()
        bodies.append(
            {
                "reference_image_id": reference_id,
                "control_type": "latent",
                "z_sequence": z["z_sequence"],
                "resolution": "256x256",
                "fps": 24,
                "async": True,
            }
        )
    answers: list[float] = []
    job_ids: list[str] = []
    lock = threading.Lock()

    def submit(slot: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as own:
            for body in bodies[slot::4]:
                sent = time.perf_counter()
                response = own.post("/v1/generate/video", json=body)
                assert response.status_code == 202, response.text
                with lock:
                    answers.append(time.perf_counter() - sent)
                    job_ids.append(response.json()["job_id"])

    started = time.perf_counter()
    clients = [threading.Thread(target=submit, args=(slot,)) for slot in range(4)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    pending = set(job_ids)
    while pending:
        for job_id in list(pending):
            job = client.get(f"/v1/jobs/{job_id}?wait=10").json()
            if job["status"] in ("completed", "failed", "cancelled"):
                assert job["status"] == "completed", job
                pending.discard(job_id)
    elapsed = time.perf_counter() - started
    return (
        f"{count} async jobs of 12–24 frames at 256x256, 4 clients: all completed in {elapsed:.1f} s "
        f"({count / elapsed * 60:.0f} jobs/minute); submissions answered in max {max(answers) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=40, help="timed frame requests")
    parser.add_argument("--jobs", type=int, default=5, help="timed async video jobs")
    parser.add_argument(
        "--poll-seconds", type=float, default=5.0, help="duration of the GET /v1/jobs load"
    )
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--long-polls", type=int, default=10, help="timed long polls")
    parser.add_argument(
        "--small-jobs", type=int, default=40, help="async 12–24-frame 256x256 jobs, 4 clients"
    )
    parser.add_argument("--skip-jobs", action="store_true", help="only frames and job polling")
    args = parser.parse_args()

    server = LiveServer(
        Path(tempfile.mkdtemp(prefix="char_bench_")),
        CHAR_RATE_LIMIT="1000000/minute",
        CHAR_RATE_LIMIT_BURST="1000000/second",
        CHAR_RATE_LIMIT_JOB_READS="1000000/minute",
        CHAR_SENSOR_INTERVAL_SECONDS="1",
    )
    key = server.create_key("bench")["api_key"]
    headers = {"Authorization": f"Bearer {key}"}
    base = server.base_url
    server.start(timeout=120)
    try:
        client = httpx.Client(base_url=base, timeout=120, headers=headers)
        image = Path(skimage.__file__).parent / "data" / "astronaut.png"
        with image.open("rb") as handle:
            reference_id = client.post(
                "/v1/reference-image", files={"image": (image.name, handle)}
            ).json()["reference_image_id"]
        vectors = [
            client.post(f"/v1/control/latent?length=1&seed={seed}").json()["z_sequence"][0]
            for seed in range(args.frames + 5)
        ]

        # 1. Sync frames, each a different z so the cache never answers.
        latencies = []
        for index, z_t in enumerate(vectors):
            started = time.perf_counter()
            response = client.post(
                "/v1/generate/frame",
                json={
                    "reference_image_id": reference_id,
                    "control_type": "latent",
                    "z_t": z_t,
                    "resolution": "720x720",
                },
            )
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.text
            if index >= 5:
                latencies.append(elapsed * 1000)
        print(
            f"POST /v1/generate/frame 720x720 ({len(latencies)} requests, warm): p50 {statistics.median(latencies):.0f} ms, p95 {percentile(latencies, 0.95):.0f} ms, max {max(latencies):.0f} ms"
        )

        # 2. The same 48-frame 720x720 video, sync (rendered in the API process) and async
        # (through Dagster), side by side; a timeline per async job.
        def latent_48(seed: int) -> list:
            """A new 48-step z sequence per seed: the cache never answers."""
            return client.post(f"/v1/control/latent?length=48&seed={seed}").json()["z_sequence"]

        def video_48(z: list, run_async: bool) -> httpx.Response:
            """POST the 48-frame 720x720 video of ``z``, sync or async."""
            body = {
                "reference_image_id": reference_id,
                "control_type": "latent",
                "z_sequence": z,
                "resolution": "720x720",
                "fps": 24,
            }
            return client.post("/v1/generate/video", json={**body, "async": run_async})

        sync_seconds = []
        for seed in range(0 if args.skip_jobs else args.jobs):
            z = latent_48(3000 + seed)
            started = time.perf_counter()
            answer = video_48(z, run_async=False)
            assert answer.status_code == 200, answer.text
            sync_seconds.append(time.perf_counter() - started)
        timelines = []
        for seed in range(0 if args.skip_jobs else args.jobs):
            z = latent_48(1000 + seed)
            posted = time.perf_counter()
            accepted = video_48(z, run_async=True)
            assert accepted.status_code == 202, accepted.text
            marks: dict[str, float] = {}
            while True:
                job = client.get(accepted.headers["Location"]).json()
                now = time.perf_counter() - posted
                if job["status"] == "processing":
                    marks.setdefault("run_started", now)
                if job["progress"] > 0:
                    marks.setdefault("first_frame", now)
                if job["message"] and job["message"].startswith("Encoding"):
                    marks.setdefault("encoding", now)
                if job["status"] in ("completed", "failed"):
                    marks["done"] = now
                    assert job["status"] == "completed", job
                    break
                time.sleep(0.05)
            timelines.append(marks)
            print("  job", seed, {k: round(v, 2) for k, v in marks.items()})
        done = [t["done"] for t in timelines]
        if not done:
            accepted = client.post(
                "/v1/generate/video",
                json={
                    "reference_image_id": reference_id,
                    "control_type": "latent",
                    "z_sequence": vectors[:2],
                    "resolution": "64x64",
                    "async": True,
                },
            )
        else:
            print(
                f"async 48-frame 720x720 video, POST → completed ({len(done)} jobs): p50 {statistics.median(done):.2f} s, max {max(done):.2f} s; "
                f"medians — sensor wait + run launch {statistics.median(t['run_started'] for t in timelines):.2f} s, "
                f"first frame at {statistics.median(t.get('first_frame', t['done']) for t in timelines):.2f} s, "
                f"encode start {statistics.median(t.get('encoding', t['done']) for t in timelines):.2f} s"
            )
            sync = statistics.median(sync_seconds)
            print(
                f"the same video sync ({len(sync_seconds)} renders): p50 {sync:.2f} s → async/sync "
                f"{statistics.median(done) / sync:.1f}×"
            )

        # 3. GET /v1/jobs/{id} throughput: wrk when installed (Debian package), else threads.
        job_path = accepted.headers["Location"]
        print(f"GET /v1/jobs/{{id}}: {_load(base, key, job_path, args)}")

        # 4. GET /v1/jobs, a page of 20 of the account's jobs, newest first.
        for seed in range(25):
            z = client.post(f"/v1/control/latent?length=2&seed={5000 + seed}").json()["z_sequence"]
            client.post(
                "/v1/generate/video",
                json={
                    "reference_image_id": reference_id,
                    "control_type": "latent",
                    "z_sequence": z,
                    "resolution": "64x64",
                    "async": True,
                },
            )
        print(f"GET /v1/jobs?limit=20 (25+ jobs): {_load(base, key, '/v1/jobs?limit=20', args)}")

        # 5. Long poll: from a job's status change (written straight to the job store, as a
        # run would) to the waiting client's answer.
        from char_pipeline.jobstore import open_job_store
        from char_pipeline.settings import Settings

        store = open_job_store(Settings(pipeline_home=server.home).resolved_job_store_url)
        latencies = []
        for index in range(args.long_polls):
            job = store.create_job(
                kind="video",
                reference_image_id=reference_id,
                request={},
                account_id=store.verify_key(key).account_id,
            )
            answered: list[float] = []

            def long_poll(job_id: str = job.id, answered: list[float] = answered) -> None:
                with httpx.Client(base_url=base, headers=headers, timeout=90) as own:
                    assert own.get(f"/v1/jobs/{job_id}?wait=30").json()["status"] == "processing"
                answered.append(time.perf_counter())

            thread = threading.Thread(target=long_poll)
            thread.start()
            time.sleep(0.3 + 0.07 * index)  # the request is waiting; vary the phase
            changed = time.perf_counter()
            store.start_job(job.id, f"bench-{index}")
            thread.join()
            latencies.append((answered[0] - changed) * 1000)
        print(
            f"long poll, status change → answer ({len(latencies)} jobs): p50 {statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms"
        )
        # 6. Many small jobs: four clients submit them at once; time until all completed.
        if args.small_jobs:
            print(_small_jobs(client, base, headers, reference_id, args.small_jobs))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
