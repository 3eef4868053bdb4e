"""Write ``char_pipeline/motions/quadruped_walk.bvh``: the project's own four-legged clip.

No motion-capture library we could ship offline has a quadruped clip under a licence that
allows it, so this one is authored by formula, like a keyframed walk cycle: a lateral-sequence
walk (left hind, left front, right hind, right front, a quarter cycle apart), each leg
swinging about the hip or shoulder and bending its knee while it swings forward, the back
bobbing twice per cycle and the head nodding with it. Two cycles in 2 s at 30 fps, so the
clip loops seamlessly. Y is up, Z forward, X the animal's left. Run it to re-create the file:
``python tools/author_quadruped_walk.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "char_pipeline" / "motions" / "quadruped_walk.bvh"
FPS = 30
SECONDS = 2.0
CYCLES = 2
SWING_DEGREES = 16.0  # upper leg, either side of straight down
KNEE_DEGREES = 28.0  # the lower leg's bend while the leg swings forward
# Phase of each leg in the cycle (lateral-sequence walk).
PHASES = {"LeftHind": 0.0, "LeftFront": 0.25, "RightHind": 0.5, "RightFront": 0.75}

HIERARCHY = """HIERARCHY
ROOT Hips
{
\tOFFSET 0.00 0.00 0.00
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
\tJOINT Spine
\t{
\t\tOFFSET 0.00 1.00 22.00
\t\tCHANNELS 3 Zrotation Xrotation Yrotation
\t\tJOINT Chest
\t\t{
\t\t\tOFFSET 0.00 0.00 22.00
\t\t\tCHANNELS 3 Zrotation Xrotation Yrotation
\t\t\tJOINT Neck
\t\t\t{
\t\t\t\tOFFSET 0.00 6.00 8.00
\t\t\t\tCHANNELS 3 Zrotation Xrotation Yrotation
\t\t\t\tJOINT Head
\t\t\t\t{
\t\t\t\t\tOFFSET 0.00 16.00 10.00
\t\t\t\t\tCHANNELS 3 Zrotation Xrotation Yrotation
\t\t\t\t\tEnd Site
\t\t\t\t\t{
\t\t\t\t\t\tOFFSET 0.00 -4.00 14.00
\t\t\t\t\t}
\t\t\t\t}
\t\t\t}
{front}
\t\t}
\t}
{hind}
}
"""


def _leg(name: str, side: float, depth: int, top_y: float) -> str:
    tab = "\t" * depth
    return (
        f"{tab}JOINT {name}UpLeg\n{tab}{{\n"
        f"{tab}\tOFFSET {side:.2f} {top_y:.2f} 0.00\n"
        f"{tab}\tCHANNELS 3 Zrotation Xrotation Yrotation\n"
        f"{tab}\tJOINT {name}Leg\n{tab}\t{{\n"
        f"{tab}\t\tOFFSET 0.00 -24.00 0.00\n"
        f"{tab}\t\tCHANNELS 3 Zrotation Xrotation Yrotation\n"
        f"{tab}\t\tJOINT {name}Foot\n{tab}\t\t{{\n"
        f"{tab}\t\t\tOFFSET 0.00 -24.00 0.00\n"
        f"{tab}\t\t\tCHANNELS 3 Zrotation Xrotation Yrotation\n"
        f"{tab}\t\t\tEnd Site\n{tab}\t\t\t{{\n{tab}\t\t\t\tOFFSET 0.00 0.00 4.00\n{tab}\t\t\t}}\n"
        f"{tab}\t\t}}\n{tab}\t}}\n{tab}}}"
    )


def _frame(t: float) -> list[float]:
    """One frame's channels at time ``t`` seconds, in the hierarchy's order."""
    cycle = CYCLES * t / SECONDS
    bob = math.cos(4 * math.pi * cycle)
    values = [0.0, 52.0 + 0.8 * bob, 0.0, 0.0, 0.0, 0.0]  # root: in place, bobbing
    values += [0.0, 0.0, 0.0]  # Spine
    values += [0.0, 0.0, 0.0]  # Chest
    values += [0.0, 4.0 * bob, 0.0]  # Neck: the head nods with the steps
    values += [0.0, 0.0, 0.0]  # Head
    for side in ("Left", "Right"):  # the front legs hang from the chest
        values += _leg_channels(PHASES[f"{side}Front"], cycle)
    for side in ("Left", "Right"):
        values += _leg_channels(PHASES[f"{side}Hind"], cycle)
    return values


def _leg_channels(phase: float, cycle: float) -> list[float]:
    angle = 2 * math.pi * (cycle - phase)
    # Negative X rotation swings the foot forward (+Z); the knee bends while it does.
    swing = -SWING_DEGREES * math.sin(angle)
    forward = max(0.0, math.cos(angle))
    knee = KNEE_DEGREES * forward
    return [0.0, swing, 0.0, 0.0, knee, 0.0, 0.0, -0.5 * knee, 0.0]


def main() -> None:
    front = "\n".join(
        _leg(f"{side}Front", x, 3, -4.0) for side, x in (("Left", 7.0), ("Right", -7.0))
    )
    hind = "\n".join(
        _leg(f"{side}Hind", x, 1, -2.0) for side, x in (("Left", 7.0), ("Right", -7.0))
    )
    text = HIERARCHY.replace("{front}", front).replace("{hind}", hind)
    count = round(SECONDS * FPS)
    lines = [" ".join(f"{v:.4f}" for v in _frame(i / FPS)) for i in range(count)]
    text += f"MOTION\nFrames: {count}\nFrame Time: {1 / FPS:.6f}\n" + "\n".join(lines) + "\n"
    OUT.write_text(text)
    print(f"wrote {OUT} ({count} frames)")


if __name__ == "__main__":
    main()
