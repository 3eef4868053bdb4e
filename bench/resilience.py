"""How `char-pipeline serve` takes crashes and hostile bodies (issue 18).

Run: .venv/bin/python bench/resilience.py [--rounds 3]
Measures, against a real serve on loopback:
- GET /v1/jobs/{id} latency while another client sends an oversized JSON body
  (100,000 frames × 64 floats, ~47 MB) to /v1/generate/video, and how that body is answered;
- after `kill -9` of each process (daemon, API, code server): seconds until /readyz is 200
  again, or that serve gave up.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import skimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live_server import (
    LiveServer,
    send_oversized,
    serve_children,
    submit_latent_video,
    upload_reference,
)


def oversized_body() -> bytes:
    row = "[" + ",".join(["0.123456789"] * 64) + "]"
    frames = ",".join([row] * 100_000)
    return (
        '{"reference_image_id":"ref_x","control_type":"latent","z_sequence":[' + frames + "]}"
    ).encode()


def poll_during_oversized(client: httpx.Client, job_url: str, body: bytes, raw: bool) -> dict:
    """Poll a job every 50 ms before and while the big body is sent."""
    baseline = []
    for _ in range(20):
        started = time.perf_counter()
        client.get(job_url)
        baseline.append(time.perf_counter() - started)
        time.sleep(0.05)
    outcome: dict = {}

    def send() -> None:
        started = time.perf_counter()
        if raw:  # a raw socket sees an early 413 (httpx writes the whole body first)
            url = f"{client.base_url}/v1/generate/video"
            auth = {"Authorization": client.headers["authorization"]}
            outcome["status"], outcome["bytes_sent"] = send_oversized(url, auth, len(body), 60)
        else:
            try:
                answer = httpx.post(
                    f"{client.base_url}/v1/generate/video",
                    content=body,
                    headers={**client.headers, "content-type": "application/json"},
                    timeout=120,
                )
                outcome["status"] = answer.status_code
                outcome["body"] = answer.text[:200]
            except httpx.HTTPError as exc:
                outcome["status"] = type(exc).__name__
        outcome["seconds"] = time.perf_counter() - started

    sender = threading.Thread(target=send)
    sender.start()
    during = []
    while sender.is_alive():
        started = time.perf_counter()
        client.get(job_url)
        during.append(time.perf_counter() - started)
        time.sleep(0.05)
    sender.join()
    return {
        "poll_ms_before_p50": 1000 * statistics.median(baseline),
        "poll_ms_during_p50": 1000 * statistics.median(during) if during else None,
        "poll_ms_during_max": 1000 * max(during) if during else None,
        "polls_during": len(during),
        "oversized": outcome,
    }


def ready(server: LiveServer) -> bool:
    try:
        return server.readiness().status_code == 200
    except httpx.HTTPError:
        return False


def recovery(server: LiveServer, name: str, limit: float = 120) -> float | str:
    """Kill one of serve's processes; seconds until /readyz is 200 again (or what happened)."""
    (pid,) = serve_children(server, name)
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    while time.monotonic() - killed < limit:
        if server.process.poll() is not None:
            return f"serve exited with code {server.process.returncode}"
        # A new process of that name, and readiness back.
        if serve_children(server, name) not in ([], [pid]) and ready(server):
            return time.monotonic() - killed
        time.sleep(0.1)
    return f"not ready within {limit:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--raw", action="store_true", help="send the big body over a raw socket (sees early 413s)"
    )
    args = parser.parse_args()
    body = oversized_body()
    print(f"oversized body: {len(body) / 1e6:.1f} MB")
    results: list[dict] = []
    for _ in range(args.rounds):
        server = LiveServer(
            Path(tempfile.mkdtemp(prefix="char_bench_")),
            CHAR_RATE_LIMIT="1000000/minute",
            CHAR_RATE_LIMIT_BURST="1000000/second",
        )
        headers = {"Authorization": f"Bearer {server.create_key('bench')['api_key']}"}
        server.start(timeout=180)
        result: dict = {}
        try:
            with httpx.Client(base_url=server.base_url, timeout=60, headers=headers) as client:
                image = Path(skimage.__file__).parent / "data" / "chelsea.png"
                reference_id = upload_reference(client, image)
                job_url = submit_latent_video(
                    client, reference_id, frames=8, seed=1, resolution="64x64"
                )
                result.update(poll_during_oversized(client, job_url, body, args.raw))
                print(json.dumps(result, default=str), flush=True)
            for name in ("dagster-daemon", "api", "code-server"):
                result[f"recover_{name}_s"] = recovery(server, name)
                if server.process.poll() is not None:
                    break
        finally:
            server.stop()
        print(json.dumps(result, default=str))
        results.append(result)

    def med(key: str) -> str:
        values = [r[key] for r in results if isinstance(r.get(key), float)]
        others = {str(r.get(key)) for r in results if not isinstance(r.get(key), float)}
        text = f"{statistics.median(values):.1f}" if values else ""
        return " ".join([text, *sorted(o for o in others if o != "None")]).strip() or "-"

    print(f"median of {args.rounds} rounds:")
    for key in (
        "poll_ms_before_p50",
        "poll_ms_during_p50",
        "poll_ms_during_max",
        "recover_dagster-daemon_s",
        "recover_api_s",
        "recover_code-server_s",
    ):
        print(f"  {key}: {med(key)}")
    print("  oversized answers:", sorted({str(r["oversized"]) for r in results}))


if __name__ == "__main__":
    main()
