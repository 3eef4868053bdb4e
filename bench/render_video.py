"""48-frame 720x720 video: render + H.264 encode, streamed (target ≤ 3 s on 2 cores).

Run: .venv/bin/python bench/render_video.py [--runs 5] [--resolution 720x720]
Prints per-run seconds, the median, and the render/encode split.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib
import skimage

from char_pipeline.engine.encode import VideoWriter, probe_video
from char_pipeline.engine.images import load_reference_image
from char_pipeline.engine.motion import text_sequence
from char_pipeline.engine.pipeline import character_from
from char_pipeline.engine.render import RenderSettings, parse_resolution
from char_pipeline.engine.renderers import get_renderer
from char_pipeline.engine.rig import build_rig
from char_pipeline.engine.segmentation import segment_subject

IMAGES = {
    "astronaut": Path(skimage.__file__).parent / "data" / "astronaut.png",
    "present": Path(matplotlib.get_data_path()) / "sample_data" / "Minduka_Present_Blue_Pack.png",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--resolution", default="720x720")
    parser.add_argument("--image", default="astronaut", choices=sorted(IMAGES))
    parser.add_argument("--renderer", default="mesh", choices=["mesh", "warp"])
    args = parser.parse_args()
    width, height = parse_resolution(args.resolution)
    reference = load_reference_image(IMAGES[args.image].read_bytes())
    mask = segment_subject(reference)
    rig = build_rig(reference.rgb, mask.soft, mask.binary, mask.bbox, mask_source=mask.source)
    character = character_from(reference.rgb, mask, rig)
    z_sequence, _ = text_sequence("dance", args.frames)
    renderer = get_renderer(args.renderer)
    totals, renders = [], []
    with tempfile.TemporaryDirectory() as folder:
        for run in range(args.runs):
            path = Path(folder) / f"run{run}.mp4"
            started = time.perf_counter()
            scene = renderer.prepare(character, RenderSettings(width, height))
            render_s = 0.0
            with VideoWriter(
                path, video_format="mp4", fps=24, width=width, height=height
            ) as writer:
                for z_t in z_sequence:
                    t0 = time.perf_counter()
                    frame = renderer.render(scene, z_t)
                    render_s += time.perf_counter() - t0
                    writer.write(frame)
            totals.append(time.perf_counter() - started)
            renders.append(render_s)
            assert probe_video(path).frames == args.frames
    median = statistics.median(totals)
    print(
        f"render+encode {args.frames} frames {width}x{height} ({args.image}, {args.renderer}): runs {[round(t, 3) for t in totals]}"
    )
    print(
        f"median {median:.3f} s  ({args.frames / median:.1f} frames/s); render share {statistics.median(renders):.3f} s, encode+mux {median - statistics.median(renders):.3f} s"
    )


if __name__ == "__main__":
    main()
