"""The Sora-style and InstantCharacter-style doors: seconds per request, in process.

- a character from a 1–3 s segment of a 720p clip (fetch from a loopback server, decode,
  segment 8 frames, face policy, reference upload), median over --runs;
- a prediction at the seed's default size (1024*1024, one image, sync mode, embedded default),
  the first one (which also processes the reference) and the warm ones.

Run: .venv/bin/python bench/doors.py [--runs 5]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from char_pipeline.engine.images import load_reference_image
    from tests.api.conftest import api_client, static_files
    from tests.api.test_sora import write_clip
    from tests.conftest import SAMPLE_DATA

    present = SAMPLE_DATA / "Minduka_Present_Blue_Pack.png"
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        clips = root / "clips"
        clips.mkdir()
        import tests.api.test_sora as sora

        sora.SIZE = 720  # a 720p-class clip (square), as the seed recommends
        write_clip(clips / "box.mp4", load_reference_image(present.read_bytes()).rgb, 5)
        with (
            static_files(clips) as files,
            api_client(root / "home", outbound_allow="127.0.0.1", rate_limit="10000/minute",
                       rate_limit_burst="10000/10 seconds") as api,
        ):  # fmt: skip
            _, key = api.state.jobs.create_key("bench", ["reference:read", "generate:write"])
            headers = {"Authorization": f"Bearer {key}"}
            character_seconds = []
            for run in range(args.runs):
                started = time.perf_counter()
                response = api.post(
                    "/sora/v1/characters",
                    headers=headers,
                    json={"model": "sora-character", "url": f"{files}/box.mp4", "timestamps": f"{run % 3},{run % 3 + 2}"},
                )  # fmt: skip
                character_seconds.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
            image = "data:image/png;base64," + base64.b64encode(present.read_bytes()).decode()
            prediction_seconds = []
            for run in range(args.runs + 1):
                started = time.perf_counter()
                response = api.post(
                    "/api/v3/wavespeed-ai/instant-character",
                    headers=headers,
                    json={"prompt": "a gift box jumping in a park", "image": image, "seed": run, "enable_sync_mode": True},
                )  # fmt: skip
                prediction_seconds.append(time.perf_counter() - started)
                assert response.json()["data"]["status"] == "completed", response.text
    print(
        f"character from a 720² clip: runs {[round(s, 2) for s in character_seconds]} "
        f"median {statistics.median(character_seconds):.2f} s"
    )
    print(
        f"prediction 1024*1024: first {prediction_seconds[0]:.2f} s, warm runs "
        f"{[round(s, 2) for s in prediction_seconds[1:]]} median "
        f"{statistics.median(prediction_seconds[1:]):.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
