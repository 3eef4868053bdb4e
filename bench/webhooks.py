"""Webhook delivery through a real `char-pipeline serve`: delay and a 200-job drain.

Run: .venv/bin/python bench/webhooks.py [--latency-jobs 20] [--burst 200]
Jobs are answered from the render cache (an identical request was rendered once), so they
complete inside the POST and the figures measure the callback path alone: outbox →
webhook_delivery_sensor (Dagster daemon) → signed POST → a receiver on 127.0.0.1.
Targets: completion → receipt p50 ≤ 5 s; 200 jobs finishing within a minute all called
back within 2 minutes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import skimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live_server import LiveServer
from tests.receiver import Receiver


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-jobs", type=int, default=20)
    parser.add_argument("--burst", type=int, default=200)
    args = parser.parse_args()
    server = LiveServer(
        Path(tempfile.mkdtemp(prefix="char_hooks_")),
        CHAR_OUTBOUND_ALLOW="127.0.0.1",
        CHAR_RATE_LIMIT="1000000/minute",
        CHAR_RATE_LIMIT_BURST="1000000/second",
    )
    key = server.create_key("bench")
    server.start(timeout=120)
    try:
        with (
            Receiver([key["webhook_secret"]]) as receiver,
            httpx.Client(
                base_url=server.base_url,
                timeout=60,
                headers={"Authorization": f"Bearer {key['api_key']}"},
            ) as client,
        ):
            image = Path(skimage.__file__).parent / "data" / "chelsea.png"
            with image.open("rb") as handle:
                reference_id = client.post(
                    "/v1/reference-image", files={"image": (image.name, handle)}
                ).json()["reference_image_id"]
            z_sequence = client.post("/v1/control/latent?length=4&seed=1").json()["z_sequence"]
            body = {
                "reference_image_id": reference_id,
                "control_type": "latent",
                "z_sequence": z_sequence,
                "resolution": "64x64",
            }
            assert (
                client.post("/v1/generate/video", json=body).status_code == 200
            )  # fills the cache

            def submit() -> tuple[str, float]:
                answer = client.post(
                    "/v1/generate/video", json={**body, "async": True, "callback_url": receiver.url}
                )
                assert answer.status_code == 202, answer.text
                return answer.json()["job_id"], time.time()

            def wait_for(job_ids: set[str], timeout: float) -> dict[str, float]:
                stop = time.monotonic() + timeout
                while time.monotonic() < stop:
                    with receiver.lock:
                        got = {
                            r["body"]["job_id"]: r["at"]
                            for r in receiver.requests
                            if r["status"] == 200
                        }
                    if job_ids <= set(got):
                        return got
                    time.sleep(0.1)
                raise SystemExit(f"only {len(job_ids & set(got))}/{len(job_ids)} callbacks arrived")

            delays = []
            for _ in range(args.latency_jobs):
                job_id, posted = submit()
                delays.append(wait_for({job_id}, 60)[job_id] - posted)
                time.sleep(random.uniform(0, 5))  # land anywhere in the daemon's 5 s sensor loop
            ordered = sorted(delays)
            print(
                f"completion → webhook receipt ({len(delays)} jobs, one at a time): p50 {statistics.median(delays):.2f} s, "
                f"p95 {ordered[int(0.95 * (len(ordered) - 1))]:.2f} s, max {ordered[-1]:.2f} s"
            )

            started = time.time()
            burst = dict(submit() for _ in range(args.burst))
            submitted = time.time() - started
            arrived = wait_for(set(burst), 180)
            last = max(arrived[j] for j in burst)
            per_job = [arrived[j] - burst[j] for j in burst]
            print(
                f"{args.burst} jobs completed within {submitted:.1f} s; all {args.burst} callbacks received {last - started:.1f} s after the first "
                f"(per job: p50 {statistics.median(per_job):.2f} s, max {max(per_job):.2f} s); receiver saw "
                f"{len(receiver.requests)} requests, all verified: {all(r['verified'] for r in receiver.requests)}"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
