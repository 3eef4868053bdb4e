"""Async batch across references: one run for the whole batch vs one run per video.

Run: .venv/bin/python bench/batch.py [--references 8] [--frames 48]
Starts a real `char-pipeline serve` on loopback in a temporary data root, uploads N distinct
references (crops of scikit-image's and matplotlib's sample pictures), then times
(a) POST /v1/batch/video with N async tasks (one per reference, 512x512, X-Instance-Count 2)
    until the batch is completed — one batch_render_job run;
(b) N separate async POST /v1/generate/video jobs until all are completed — N runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import httpx
import matplotlib
import skimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.live_server import LiveServer

PICTURES = [
    Path(skimage.__file__).parent / "data" / "astronaut.png",
    Path(skimage.__file__).parent / "data" / "chelsea.png",
    Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
    Path(matplotlib.get_data_path()) / "sample_data" / "Minduka_Present_Blue_Pack.png",
]


def references(count: int) -> list[bytes]:
    """Distinct PNGs: each picture, then slightly cropped variants of it."""
    out = []
    for index in range(count):
        image = cv2.imread(str(PICTURES[index % len(PICTURES)]), cv2.IMREAD_UNCHANGED)
        trim = index // len(PICTURES)
        image = image[trim : image.shape[0] - trim, trim : image.shape[1] - trim]
        out.append(cv2.imencode(".png", image)[1].tobytes())
    return out


def wait_all(client: httpx.Client, locations: list[str], timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    pending = set(locations)
    while pending and time.monotonic() < deadline:
        for location in list(pending):
            job = client.get(location).json()
            if job["status"] in ("completed", "failed"):
                assert job["status"] == "completed", job
                pending.discard(location)
        time.sleep(0.2)
    assert not pending, f"{len(pending)} jobs still open"


def wait_idle(dagster_home: Path, timeout: float = 600) -> None:
    """Until no run is queued or in progress (e.g. the upload sensor's reference runs), so
    each phase is timed on an idle instance."""
    import dagster as dg

    unfinished = [
        dg.DagsterRunStatus.QUEUED,
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
    ]
    deadline = time.monotonic() + timeout
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        while time.monotonic() < deadline:
            if not instance.get_runs(filters=dg.RunsFilter(statuses=unfinished), limit=1):
                return
            time.sleep(0.5)
    raise TimeoutError("runs still open")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--references", type=int, default=8)
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="char_bench_batch_"))
    server = LiveServer(
        home,
        CHAR_RATE_LIMIT="1000000/minute",
        CHAR_RATE_LIMIT_BURST="1000000/second",
        CHAR_SENSOR_INTERVAL_SECONDS="1",
    )
    key = server.create_key("bench")["api_key"]
    server.start(timeout=120)
    try:
        client = httpx.Client(
            base_url=server.base_url, timeout=120, headers={"Authorization": f"Bearer {key}"}
        )
        ids = []
        for index, data in enumerate(references(args.references)):
            answer = client.post("/v1/reference-image", files={"image": (f"r{index}.png", data)})
            ids.append(answer.json()["reference_image_id"])
        for reference_id in ids:  # processed (mask, rig, identity) before timing
            while client.get(f"/v1/reference-image/{reference_id}").json()["status"] == "pending":
                time.sleep(0.2)

        def task(reference_id: str, seed: int) -> dict:
            z = client.post(f"/v1/control/latent?length={args.frames}&seed={seed}").json()
            return {
                "reference_image_id": reference_id,
                "control_type": "latent",
                "z_sequence": z["z_sequence"],
                "resolution": "512x512",
                "fps": 24,
            }

        tasks = [task(reference_id, 100 + i) for i, reference_id in enumerate(ids)]
        time.sleep(3)  # the upload sensor's reference runs get requested…
        wait_idle(home / "dagster")  # …and finish before the clock starts
        started = time.perf_counter()
        batch = client.post(
            "/v1/batch/video",
            headers={"X-Instance-Count": "2"},
            json={"tasks": tasks, "async": True},
        )
        assert batch.status_code == 202, batch.text
        wait_all(client, [batch.headers["Location"]])
        one_run = time.perf_counter() - started

        singles = [task(reference_id, 500 + i) for i, reference_id in enumerate(ids)]
        wait_idle(home / "dagster")
        started = time.perf_counter()
        locations = []
        for body in singles:
            accepted = client.post("/v1/generate/video", json={**body, "async": True})
            assert accepted.status_code == 202, accepted.text
            locations.append(accepted.headers["Location"])
        wait_all(client, locations)
        many_runs = time.perf_counter() - started
        n = len(ids)
        print(
            f"{n} references × {args.frames} frames 512x512, async through Dagster:\n"
            f"  one batch (1 run, 2 workers): {one_run:.1f} s  ({60 * n / one_run:.1f} videos/min)\n"
            f"  {n} single jobs ({n} runs):      {many_runs:.1f} s  ({60 * n / many_runs:.1f} videos/min)"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
