"""Animation engine (renderer v2 'mesh'): rig build per reference (≤ 1.5 s), rendering
after the rig is built at 720x720 (≥ 25 frames/s) and 1280x720 (≥ 15 frames/s), and the
peak memory of a streamed 3,000-frame 720x720 MP4 (≤ 1.5 GB).

Run: .venv/bin/python bench/animation.py [--runs 5] [--long-frames 3000]
The long video runs in a child process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib
import skimage

from char_pipeline.engine.images import load_reference_image
from char_pipeline.engine.motion import text_sequence
from char_pipeline.engine.pipeline import character_from
from char_pipeline.engine.render import RenderSettings
from char_pipeline.engine.renderers import get_renderer, playable_sequence
from char_pipeline.engine.rig import build_rig
from char_pipeline.engine.segmentation import segment_subject

IMAGES = {
    "astronaut": Path(skimage.__file__).parent / "data" / "astronaut.png",
    "chelsea": Path(skimage.__file__).parent / "data" / "chelsea.png",
    "present": Path(matplotlib.get_data_path()) / "sample_data" / "Minduka_Present_Blue_Pack.png",
    "grace_hopper": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
}


def character(name: str):
    reference = load_reference_image(IMAGES[name].read_bytes())
    mask = segment_subject(reference)
    return reference, mask


def long_video(frames: int) -> None:
    """Child process: stream a long dance video to MP4, print the peak RSS."""
    from char_pipeline.engine.encode import VideoWriter, probe_video

    reference, mask = character("astronaut")
    rig = build_rig(reference.rgb, mask.soft, mask.binary, mask.bbox, mask_source=mask.source)
    subject = character_from(reference.rgb, mask, rig)
    renderer = get_renderer("mesh")
    scene = renderer.prepare(subject, RenderSettings(720, 720))
    z_sequence, _ = text_sequence("dance", frames)  # (frames, 64) float32: 0.8 MB at 3,000
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "long.mp4"
        with VideoWriter(path, video_format="mp4", fps=24, width=720, height=720) as writer:
            for z_t in z_sequence:
                writer.write(renderer.render(scene, z_t))
        info = probe_video(path)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"long video: {info.frames} frames 720x720 in {time.perf_counter() - started:.1f} s, "
        f"{info.size_bytes / 1e6:.1f} MB, peak RSS {peak_mb:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--long-frames", type=int, default=3000)
    parser.add_argument("--child-long", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_long:
        long_video(args.child_long)
        return
    renderer = get_renderer("mesh")
    z_sequence, _ = text_sequence("dance", args.frames)
    for name in IMAGES:
        reference, mask = character(name)
        builds = []
        for _ in range(args.runs):
            started = time.perf_counter()
            rig = build_rig(
                reference.rgb, mask.soft, mask.binary, mask.bbox, mask_source=mask.source
            )
            builds.append(time.perf_counter() - started)
        subject = character_from(reference.rgb, mask, rig)
        line = (
            f"{name:<13} rig {rig.kind:<14} build median {statistics.median(builds):.3f} s "
            f"(first {builds[0]:.3f} s), mesh {len(rig.mesh.vertices)} vertices"
        )
        for width, height in ((720, 720), (1280, 720)):
            scene = renderer.prepare(subject, RenderSettings(width, height))
            rates = []
            for _ in range(args.runs):
                started = time.perf_counter()
                # As every door plays a sequence: the damping pre-pass, then the frames.
                for z_t in playable_sequence(renderer, scene, z_sequence):
                    renderer.render(scene, z_t)
                rates.append(len(z_sequence) / (time.perf_counter() - started))
            line += f" | {width}x{height} {statistics.median(rates):.1f} frames/s"
        print(line, flush=True)
    if args.long_frames:
        subprocess.run(
            [sys.executable, __file__, "--child-long", str(args.long_frames)], check=True
        )


if __name__ == "__main__":
    main()
