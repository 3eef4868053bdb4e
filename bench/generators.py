"""Seconds per frame and peak memory of each generator mode on whatever device is present.

Without weights in the model store (or with --tiny) the generative modes run the tiny
random components of tests/tiny_models.py: a regression figure of the pipeline code and
its overheads, not of the real models. With a GPU and `char-pipeline models pull …` done,
the same command measures the real models (compare with the seed's own figures: GAN
1–2 s/frame, diffusion 10–50 s/frame at 720p).

Run: .venv/bin/python bench/generators.py [--runs 3] [--frames 16] [--resolution WxH] [--tiny]
Each mode runs in a child process so its peak memory (RSS; CUDA max allocated) is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(mode: str, store_root: str, frames: int, resolution: str, runs: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import skimage
    import torch

    from char_pipeline.engine.generators import GenerationOptions, get_generator
    from char_pipeline.engine.generators.store import ModelStore
    from char_pipeline.engine.images import load_reference_image
    from char_pipeline.engine.motion import MotionParams, MotionPlan, motion_sequence
    from char_pipeline.engine.pipeline import character_from
    from char_pipeline.engine.render import RenderSettings
    from char_pipeline.engine.renderers import get_renderer
    from char_pipeline.engine.rig import build_rig
    from char_pipeline.engine.segmentation import segment_subject

    reference = load_reference_image(
        (Path(skimage.__file__).parent / "data" / "astronaut.png").read_bytes()
    )
    mask = segment_subject(reference)
    rig = build_rig(reference.rgb, mask.soft, mask.binary, mask.bbox)
    renderer = get_renderer("mesh")
    width, height = (int(v) for v in resolution.split("x"))
    scene = renderer.prepare(
        character_from(reference.rgb, mask, rig), RenderSettings(width, height)
    )
    z = motion_sequence(MotionPlan("wave", None, MotionParams(), ()), frames)
    generator = get_generator(
        mode, renderer, store=ModelStore(Path(store_root)), allow_cpu=True, gpu_type="t4"
    )
    options = GenerationOptions(seed=1, steps=4 if "tiny" in store_root else None)
    started = time.perf_counter()
    list(generator.generate(scene, z[:1], options))  # loads the models
    first = time.perf_counter() - started
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        list(generator.generate(scene, z, options))
        seconds.append(time.perf_counter() - started)
    report = generator.report() if hasattr(generator, "report") else {}
    return {
        "mode": mode,
        "device": report.get("device", "cpu"),
        "dtype": report.get("dtype", "-"),
        "first_call_s": round(first, 2),
        "runs_s": [round(s, 2) for s in seconds],
        "s_per_frame": round(statistics.median(seconds) / frames, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20)
        if torch.cuda.is_available()
        else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument(
        "--resolution",
        default=None,
        help="default 512x512 for real models; 64x64 for the tiny ones (their VAE downsamples "
        "only 2×, so attention over 256² latents would dwarf everything else)",
    )
    parser.add_argument(
        "--tiny", action="store_true", help="tiny random models, even if real ones are installed"
    )
    parser.add_argument("--child", nargs=2, metavar=("MODE", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, store = args.child
        print(json.dumps(measure(mode, store, args.frames, args.resolution, args.runs)))
        return 0

    sys.path.insert(0, str(ROOT))
    from char_pipeline.engine.generators.store import MODE_ENTRIES, ModelStore
    from char_pipeline.settings import get_settings

    real = ModelStore(get_settings().models_root)
    with tempfile.TemporaryDirectory(prefix="tiny_models_") as folder:
        tiny = None
        rows = []
        for mode in ("gan", "diffusion", "transformer"):
            store = real.root
            needs = MODE_ENTRIES.get(mode, ())
            if args.tiny or not all(real.installed(name) for name in needs):
                if tiny is None:
                    from tests.tiny_models import build_store

                    tiny = build_store(Path(folder) / "tiny")
                store = tiny
            resolution = args.resolution or ("64x64" if store == tiny else "512x512")
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, str(store), "--runs", str(args.runs),
                 "--frames", str(args.frames), "--resolution", resolution],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["models"] = (
                "none (the mesh renderer)"
                if mode == "gan"
                else "tiny random (tests/tiny_models.py)"
                if store == tiny
                else "real (model store)"
            )
            row["resolution"] = resolution
            rows.append(row)
            print(json.dumps(row))
    print()
    print(
        "| mode | models | resolution | device | dtype | s/frame (median) | runs (s) | first call (s) | peak RSS MB |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['mode']} | {row['models']} | {row['resolution']} | {row['device']} | {row['dtype']} | "
            f"{row['s_per_frame']} | {', '.join(map(str, row['runs_s']))} | {row['first_call_s']} | "
            f"{row['peak_rss_mb']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
