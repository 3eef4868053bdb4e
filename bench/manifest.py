"""A manifest of 20 references × 48 frames at 512x512 through Dagster (target ≤ 2 minutes).

Run: .venv/bin/python bench/manifest.py [--references 20] [--frames 48]
The 20 references are distinct images made from the pictures scikit-image and matplotlib
ship (crops and mirror images of the astronaut, cat, coffee, rocket, Grace Hopper and the
gift box). `char-pipeline render` runs every row through render_job on a real Dagster
instance in one process, so models load once. Reports videos per minute and the per-video
overhead beyond pure rendering (render + encode measured by bench/render_video.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib
import pandas as pd
import skimage
from PIL import Image, ImageOps


def make_references(folder: Path, count: int) -> list[Path]:
    data, sample = (
        Path(skimage.__file__).parent / "data",
        Path(matplotlib.get_data_path()) / "sample_data",
    )
    sources = [
        data / "astronaut.png",
        data / "chelsea.png",
        data / "coffee.png",
        data / "rocket.jpg",
        sample / "grace_hopper.jpg",
        sample / "Minduka_Present_Blue_Pack.png",
    ]
    paths = []
    for index in range(count):
        image = Image.open(sources[index % len(sources)])
        variant = index // len(sources)
        if variant % 2:
            image = ImageOps.mirror(image)
        if variant >= 2:
            width, height = image.size
            image = image.crop(
                (width // 12, height // 12, width - width // 12, height - height // 12)
            )
        path = folder / f"ref_{index:02d}.png"
        image.save(path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--references", type=int, default=20)
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="char_manifest_"))
    folder = home / "manifests"
    folder.mkdir(parents=True)
    references = make_references(folder, args.references)
    controls = ["text", "latent", "pose"]
    rows = [
        {
            "reference_image": path.name,
            "control_type": controls[i % 3],
            "prompt": "dance",
            "seed": i,
            "steps": args.frames,
            "resolution": "512x512",
            "fps": 24,
            "format": "mp4",
        }
        for i, path in enumerate(references)
    ]
    manifest = folder / "bench.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    env = {**os.environ, "CHAR_PIPELINE_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "char_pipeline.cli", "render", str(manifest)],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(completed.stdout[-3000:] + completed.stderr[-3000:])
    results = pd.read_parquet(folder / "bench.results.parquet")
    assert (results["status"] == "completed").all(), results
    per_run = results["seconds"].median()
    print(
        f"manifest of {len(rows)} references × {args.frames} frames at 512x512 via `char-pipeline render`: {elapsed:.1f} s wall ({len(rows) / elapsed * 60:.1f} videos/minute)"
    )
    print(
        f"per row: median {per_run:.2f} s in its Dagster run (all six assets), mean identity cosine {results['identity_cosine'].mean():.3f}"
    )


if __name__ == "__main__":
    main()
