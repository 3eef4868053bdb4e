"""Contact sheets and picture checks for the demo references and more subjects.

Run: .venv/bin/python bench/quality_sheets.py --out /tmp/after [--size 384] [--frames 48]
     .venv/bin/python bench/quality_sheets.py --compare /tmp/before /tmp/after --out docs/quality

Renders every reference (the demo's four, plus a person, an animal, two objects and four
drawings on paper) with the demo's three controls through the engine alone, writes one
contact sheet per video (`<reference>_<control>.png`, 8 frames) and prints the picture
figures the `video` asset checks use: the rest-pose silhouette against the mask (IoU), the
share of the background fill darker than its surroundings, the background's smallest mirror
mismatch, the largest share of the subject in triangles stretched
beyond 2× (a tear or smear) and the smallest subject coverage of any frame.
`figures.json` beside the sheets keeps them. ``--compare BEFORE AFTER`` stacks two such
folders (one made by older code) into one JPEG per reference, as docs/quality.md shows them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import skimage

from char_pipeline.engine import metrics
from char_pipeline.engine.controls import (
    empty_z,
    latent_sequence,
)
from char_pipeline.engine.errors import CharPipelineError
from char_pipeline.engine.images import contact_sheet, sheet_indices
from char_pipeline.engine.motion import (
    MotionParams,
    MotionPlan,
    keypoint_track,
    motion_sequence,
    text_sequence,
)
from char_pipeline.engine.pipeline import prepare_character
from char_pipeline.engine.render import RenderSettings
from char_pipeline.engine.renderers import get_renderer, playable_sequence

SCIKIT = Path(skimage.__file__).parent / "data"
SAMPLES = Path(matplotlib.get_data_path()) / "sample_data"
DRAWINGS = Path(__file__).resolve().parents[1] / "tests" / "data" / "drawings"
REFERENCES = {
    "astronaut": SCIKIT / "astronaut.png",
    "chelsea": SCIKIT / "chelsea.png",
    "grace_hopper": SAMPLES / "grace_hopper.jpg",
    "present": SAMPLES / "Minduka_Present_Blue_Pack.png",
    "camera": SCIKIT / "camera.png",  # a person standing, cut at the knees
    "horse": SCIKIT / "horse.png",  # an animal, whole
    "coffee": SCIKIT / "coffee.png",  # an object
    "rocket": SCIKIT / "rocket.jpg",  # an object, thin and tall
    "marker_figure": DRAWINGS / "marker_figure.jpg",
    "stick_figure": DRAWINGS / "stick_figure.jpg",
    "pig": DRAWINGS / "pig.jpg",
    "bug": DRAWINGS / "bug.jpg",
}


def controls(rest, steps: int, subject_kind: str | None = None) -> dict[str, np.ndarray]:
    """The demo's three controls: a dance keypoint track, 'wave hello' (for the subject's
    kind, as the control_sequences asset plays it), latent seed 7."""
    _, pose = keypoint_track("dance", steps, rest)
    text, _ = text_sequence("wave hello", steps, model="custom-nlp", subject_kind=subject_kind)
    return {"pose": pose, "text": text, "latent": latent_sequence(steps, 7, "gaussian")}


def measure(name: str, path: Path, out: Path, size: int, steps: int) -> dict:
    renderer = get_renderer("mesh")
    character = prepare_character(path.read_bytes())
    scene = renderer.prepare(character, RenderSettings(width=size, height=size))
    placed_alpha = scene.subject[..., 3]
    _, rest_alpha = renderer.render_layers(scene, empty_z())
    rest_area = max(1, int((rest_alpha > 127).sum()))
    figures = {
        "mask_source": character.mask_source,
        "rig": character.rig_kind,
        "subject_kind": getattr(character, "subject_kind", None),
        "silhouette_iou": round(metrics.silhouette_iou(rest_alpha, placed_alpha), 4),
        "dark_fill_share": round(
            metrics.dark_fill_share(scene.background, character.rgb, character.soft_mask), 5
        ),
        "mirror_mismatch": round(metrics.mirror_mismatch(scene.background), 3),
        "controls": {},
    }
    for control, z_sequence in controls(
        character.rest, steps, getattr(character, "subject_kind", None)
    ).items():
        started = time.perf_counter()
        sheet_at, sheet_frames = set(sheet_indices(len(z_sequence))), []
        torn, coverage, error = 0.0, 1.0, None
        try:
            for index, z_t in enumerate(playable_sequence(renderer, scene, z_sequence)):
                frame, alpha = renderer.render_layers(scene, z_t)
                posed, _ = renderer.deform(scene, z_t)
                torn = max(torn, metrics.torn_area_share(scene.vertices, posed, scene.triangles))
                coverage = min(coverage, float((alpha > 127).sum()) / rest_area)
                if index in sheet_at:
                    sheet_frames.append(frame)
        except CharPipelineError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if sheet_frames:
            sheet = contact_sheet(sheet_frames)
            cv2.imwrite(str(out / f"{name}_{control}.png"), sheet[..., ::-1])
        figures["controls"][control] = {
            "max_torn_share": round(torn, 4),
            "min_coverage": round(coverage, 3),
            "seconds": round(time.perf_counter() - started, 2),
            "error": error,
        }
    return figures


def motions(out: Path, size: int, steps: int, only: set[str]) -> None:
    """Every motion of the library that applies to each reference's kind, and a motion clip
    (wave_hello for people and figures, quadruped_walk for four-legged animals), looped: the checks' figures per video, one contact sheet per
    reference (a row per motion). A row with a figure past its check's bound is flagged."""
    from char_pipeline.engine.bvh import load_clip, loop_clip, retarget
    from char_pipeline.engine.faces import face_visibility
    from char_pipeline.engine.kinds import APPLIES_TO

    renderer = get_renderer("mesh")
    print(
        f"{'reference':<15}{'kind':<10}{'motion':<12}{'torn':>8}{'cover':>7}{'pops':>6}{'face':>6}"
    )
    for name, path in REFERENCES.items():
        if name not in only:
            continue
        character = prepare_character(path.read_bytes())
        scene = renderer.prepare(character, RenderSettings(width=size, height=size))
        _, rest_alpha = renderer.render_layers(scene, empty_z())
        rest_area = max(1, int((rest_alpha > 127).sum()))
        kind = character.subject_kind or "figure"
        plays = {m: MotionPlan(m, None, MotionParams(), ()) for m in APPLIES_TO[kind]}
        sequences = {m: motion_sequence(plan, steps) for m, plan in plays.items()}
        clip = {"person": "wave_hello", "figure": "wave_hello", "quadruped": "quadruped_walk"}
        if kind in clip:  # as a run plays it: looped (a GIF's seam is measured)
            sequences[f"clip:{clip[kind]}"] = loop_clip(
                retarget(load_clip(clip[kind]), character.rest, fps=24, subject_kind=kind)
            )
        rows = []
        for motion, z_sequence in sequences.items():
            coherence = metrics.TemporalCoherence()
            torn, coverage, strip = 0.0, 1.0, []
            at = set(sheet_indices(len(z_sequence)))
            for index, z_t in enumerate(playable_sequence(renderer, scene, z_sequence)):
                frame, alpha, share = renderer.render_measured(scene, z_t)
                torn = max(torn, share)
                coverage = min(coverage, float((alpha > 127).sum()) / rest_area)
                coherence.add(frame)
                if index in at:
                    strip.append(frame)
            faces = (
                face_visibility(character.rgb, strip) if kind in ("person", "portrait") else None
            )
            pops = coherence.pop_ratio(loop=True)
            bad = (
                torn > metrics.MAX_TORN_SHARE
                or coverage < metrics.MIN_FRAME_COVERAGE_SHARE
                or pops > metrics.MAX_POP_RATIO
                or (faces is not None and faces.applies and faces.frames_without_face > 0)
            )
            face = (
                f"{len(strip) - faces.frames_without_face}/{len(strip)}"
                if faces is not None and faces.applies
                else "-"
            )
            print(
                f"{name:<15}{kind:<10}{motion:<12}{torn:>8.4f}{coverage:>7.2f}{pops:>6.2f}"
                f"{face:>6}" + ("  <-- check fails" if bad else "")
            )
            rows.append(contact_sheet(strip, height=96))
        width = max(row.shape[1] for row in rows)
        rows = [
            np.pad(r, ((0, 3), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows
        ]
        cv2.imwrite(
            str(out / f"{name}_motions.jpg"),
            np.vstack(rows)[..., ::-1],
            [cv2.IMWRITE_JPEG_QUALITY, 80],
        )


def compare(before: Path, after: Path, out: Path, row_height: int = 104) -> None:
    """One image per reference: the older code's three sheets over today's, labelled."""
    out.mkdir(parents=True, exist_ok=True)
    for name in REFERENCES:
        rows = []
        for label, folder in (("before", before), ("after", after)):
            for control in ("pose", "text", "latent"):
                path = folder / f"{name}_{control}.png"
                if not path.exists():
                    continue
                sheet = cv2.imread(str(path))
                scale = row_height / sheet.shape[0]
                sheet = cv2.resize(sheet, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                tag = np.full((row_height, 96, 3), 255, np.uint8)
                for line, text in enumerate((label, control)):
                    cv2.putText(tag, text, (6, 40 + 24 * line), 0, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
                rows.append(np.hstack([tag, sheet]))
        if not rows:
            continue
        width = max(row.shape[1] for row in rows)
        rows = [
            np.pad(r, ((0, 3), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows
        ]
        cv2.imwrite(str(out / f"{name}.jpg"), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 82])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--only", default="", help="comma-separated reference names")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    parser.add_argument(
        "--motions", action="store_true", help="every motion that applies to each kind"
    )
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare, args.out)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = {n for n in args.only.split(",") if n} or set(REFERENCES)
    if args.motions:
        motions(args.out, args.size, args.frames, wanted)
        return
    results = {}
    print(
        f"{'reference':<15}{'mask':<9}{'rig':<11}{'iou':>7}{'dark':>8}{'mirror':>8}"
        f"{'control':>9}{'torn':>9}{'cover':>7}"
    )
    for name, path in REFERENCES.items():
        if name not in wanted:
            continue
        try:
            figures = measure(name, path, args.out, args.size, args.frames)
        except CharPipelineError as exc:
            figures = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"{name:<15}{figures['error']}")
            results[name] = figures
            continue
        results[name] = figures
        for control, row in figures["controls"].items():
            print(
                f"{name:<15}{figures['mask_source']:<9}{figures['rig']:<11}"
                f"{figures['silhouette_iou']:>7.3f}{figures['dark_fill_share']:>8.4f}"
                f"{figures['mirror_mismatch']:>8.3f}{control:>9}{row['max_torn_share']:>9.4f}"
                f"{row['min_coverage']:>7.2f}" + (f"  {row['error']}" if row["error"] else "")
            )
    (args.out / "figures.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
