"""NeRF: model build per reference (≤ 5 s), rendering at 320x240 (≥ 5 frames/s) and
640x480 (≥ 1.5 frames/s) on 2 cores, plus the reference-view PSNR and turntable holes.

Run: .venv/bin/python bench/nerf.py [--runs 5] [--frames 24]
Renders a turntable (elevation 10°, the reference camera's distance and fov) per image.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import matplotlib
import skimage

from char_pipeline.engine import nerf
from char_pipeline.engine.images import load_reference_image
from char_pipeline.engine.segmentation import segment_subject

IMAGES = {
    "astronaut": Path(skimage.__file__).parent / "data" / "astronaut.png",
    "chelsea": Path(skimage.__file__).parent / "data" / "chelsea.png",
    "present": Path(matplotlib.get_data_path()) / "sample_data" / "Minduka_Present_Blue_Pack.png",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=24)
    args = parser.parse_args()
    for name, path in IMAGES.items():
        reference = load_reference_image(path.read_bytes())
        mask = segment_subject(reference)
        builds = []
        for _ in range(args.runs):
            started = time.perf_counter()
            model = nerf.build_radiance_field(reference.rgb, mask.soft, mask.bbox)
            model.to_bytes()
            builds.append(time.perf_counter() - started)
        psnr = nerf.reference_psnr(model)
        line = [
            f"{name:<10} build+serialise median {statistics.median(builds):.2f} s "
            f"(runs {', '.join(f'{b:.2f}' for b in builds)}), grid {model.header()['resolution']}, "
            f"reference PSNR {psnr:.2f} dB"
        ]
        for width, height in ((320, 240), (640, 480)):
            rates, holes = [], []
            cameras = nerf.orbit(args.frames)
            for _ in range(args.runs):
                stats = nerf.TrajectoryStats()
                for _frame in nerf.render_trajectory(model, cameras, width, height, stats):
                    pass
                rates.append(stats.frames / stats.seconds)
                holes.append(max(stats.hole_fraction))
            line.append(
                f"   {width}x{height}: median {statistics.median(rates):.2f} frames/s "
                f"(runs {', '.join(f'{r:.2f}' for r in rates)}), worst hole fraction {max(holes):.5f}"
            )
        print("\n".join(line), flush=True)


if __name__ == "__main__":
    main()
