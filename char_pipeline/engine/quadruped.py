"""The four-legged rig: a whole animal seen from the side, standing on its legs.

The human skeleton laid over a horse put arms on its neck and ankles under its belly, so a
walk bent the body instead of the legs. No wheel ships animal keypoints, so this rig is
geometric, built on the mask alone (as AnimatedDrawings' quadruped examples are, by hand):

- the **legs** are the mask's pieces under the belly: the rows from the ground up in which
  the silhouette has a wide interior gap (between the front and the hind legs) are the leg
  zone; its connected pieces that reach from the belly to the ground are legs, split into
  the front pair and the hind pair at the widest gap between them;
- the **head end** is the end with more of the silhouette above the back line (a neck and
  head rise above the back; a tail and rump do not);
- the joints map onto the COCO-17 layout every control uses: front legs are the arms
  (shoulder → elbow → wrist = withers → knee → hoof), hind legs are the legs (hip → knee →
  ankle), the head joints sit on the head, so poses, text motions and motion clips drive it
  through the same z vectors. A pair whose two legs overlap into one piece shares it.

Only a subject wholly inside the picture qualifies: a cut-off close-up has no ground line.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from char_pipeline.engine.controls import JOINT_INDEX, NUM_JOINTS, RestPose

# The interior gap between front and hind legs, as a share of the subject's width.
MIN_LEG_GAP = 0.15
# The leg zone's height as a share of the subject's height (a pig's short legs: ~0.2).
MIN_LEG_ZONE = 0.12
MIN_ASPECT = 0.9  # width over height: an animal on four legs is about as wide as tall, or wider


@dataclass(frozen=True)
class FourLegs:
    """Where the rig's parts were found (pixels), shown in rig.json."""

    belly: int  # the row where the legs leave the body
    ground: int  # the lowest row of the subject
    facing: int  # +1 head to the right, -1 to the left
    # Per leg (x under the belly, x at the knee row, x at the foot, the foot's row).
    front_legs: tuple[tuple[float, float, float, float], ...]
    hind_legs: tuple[tuple[float, float, float, float], ...]

    def to_json(self) -> dict:
        return {
            "belly": self.belly,
            "ground": self.ground,
            "facing": "right" if self.facing > 0 else "left",
            "front_legs": [[round(float(v), 1) for v in leg] for leg in self.front_legs],
            "hind_legs": [[round(float(v), 1) for v in leg] for leg in self.hind_legs],
        }


def _interior_gap(row: np.ndarray) -> int:
    """The longest run of background between the row's first and last subject pixel."""
    filled = np.flatnonzero(row)
    if len(filled) < 2:
        return 0
    steps = np.diff(filled)
    return int(steps.max() - 1)


def _feet(zone: np.ndarray) -> list[np.ndarray]:
    """Each leg's lower half: the pieces of the zone's lower half tall enough to be a shin
    (legs that merge under the belly are apart near the ground)."""
    lower = zone[len(zone) // 2 :].astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(lower, connectivity=8)
    pieces = []
    for label in range(1, count):
        if stats[label, cv2.CC_STAT_HEIGHT] >= 0.4 * len(lower):
            piece = np.zeros(zone.shape, bool)
            piece[len(zone) // 2 :] = labels == label
            pieces.append(piece)
    return pieces


def _trace_leg(zone: np.ndarray, piece: np.ndarray) -> tuple[float, float, float, float]:
    """(x under the belly, x at the knee row, x at the foot, foot row) of one leg: followed
    from its foot up, row by row, along the run of the silhouette nearest to it."""
    rows = np.flatnonzero(piece.any(axis=1))
    foot_row = int(rows[-1])
    x = foot_x = float(np.flatnonzero(piece[foot_row]).mean())
    knee_row = len(zone) // 2
    knee_x = x
    span = (np.flatnonzero(piece[foot_row]).min(), np.flatnonzero(piece[foot_row]).max())
    half = max(2.0, (span[1] - span[0] + 1) / 2)
    for row in range(foot_row, -1, -1):
        filled = np.flatnonzero(zone[row])
        if not len(filled):
            break
        runs = np.split(filled, np.flatnonzero(np.diff(filled) > 1) + 1)
        # The run that overlaps the one below: a tail hanging beside a leg is not followed.
        overlaps = [min(run.max(), span[1] + 1) - max(run.min(), span[0] - 1) for run in runs]
        if max(overlaps) < 0:
            break
        nearest = runs[int(np.argmax(overlaps))]
        span = (nearest.min(), nearest.max())
        if span[1] - span[0] < 2 * half + 2:
            x = float(nearest.mean())
        else:  # where legs merge the run is wide: keep to this leg's side of it
            x = float(np.clip(x, span[0] + half, span[1] - half))
        if row == knee_row:
            knee_x = x
    return x, knee_x, foot_x, float(foot_row)


def find_four_legs(binary_mask: np.ndarray, bbox: tuple[int, int, int, int]) -> FourLegs | None:
    """The legs and head end of a four-legged subject, or None when the mask is not one."""
    height, width = binary_mask.shape
    x0, y0, x1, y1 = bbox
    box_w, box_h = x1 - x0, y1 - y0
    if box_w < 16 or box_h < 16 or box_w < MIN_ASPECT * box_h:
        return None
    if x0 <= 0 or y0 <= 0 or x1 >= width or y1 >= height:
        return None  # cut by the picture: no ground line to stand on
    mask = binary_mask[y0:y1, x0:x1].astype(bool)
    gaps = np.array([_interior_gap(row) for row in mask])
    wide = gaps >= MIN_LEG_GAP * box_w
    # The leg zone: from the lowest split row up while the rows (allowing a few stray ones)
    # stay split; the feet may end at different heights, so the lowest rows may not be split.
    ground = int(np.flatnonzero(mask.any(axis=1))[-1])
    split_rows = np.flatnonzero(wide[int(0.8 * ground) :]) + int(0.8 * ground)
    if not len(split_rows):
        return None
    belly = lowest = int(split_rows[-1])
    misses = 0
    for row in range(lowest, -1, -1):
        if wide[row]:
            belly, misses = row, 0
        else:
            misses += 1
            if misses > max(2, box_h // 50):
                break
    if ground - belly < MIN_LEG_ZONE * box_h or belly < 0.25 * box_h:
        return None
    zone = mask[belly : ground + 1]
    legs = [_trace_leg(zone, piece) for piece in _feet(zone)]
    if len(legs) < 2:
        return None
    legs.sort(key=lambda leg: leg[0])
    starts = np.array([leg[0] for leg in legs])
    split = int(np.argmax(np.diff(starts))) + 1
    if starts[split] - starts[split - 1] < MIN_LEG_GAP * box_w:
        return None
    left_pair, right_pair = tuple(legs[:split]), tuple(legs[split:])
    # The head end has more silhouette above the back line (neck, head, ears).
    columns = mask.any(axis=0)
    tops = np.where(columns, mask.argmax(axis=0), box_h)
    middle = tops[box_w // 4 : 3 * box_w // 4]
    back = float(np.median(middle[middle < box_h])) if (middle < box_h).any() else box_h / 2
    quarter = max(1, box_w // 4)
    above = mask[: int(back)]
    facing = 1 if above[:, -quarter:].sum() >= above[:, :quarter].sum() else -1
    front, hind = (right_pair, left_pair) if facing > 0 else (left_pair, right_pair)
    shift = np.array([x0, x0, x0, belly + y0])
    return FourLegs(
        belly=int(belly + y0),
        ground=int(ground + y0),
        facing=facing,
        front_legs=tuple(tuple(np.asarray(leg) + shift) for leg in front),
        hind_legs=tuple(tuple(np.asarray(leg) + shift) for leg in hind),
    )


def four_legged_rest_pose(
    binary_mask: np.ndarray, bbox: tuple[int, int, int, int], legs: FourLegs
) -> RestPose:
    """COCO-17 joints on the animal: front legs as arms, hind legs as legs, head joints on
    the head end; the subject height is the box's."""
    mask = binary_mask.astype(bool)
    x0, y0, x1, y1 = bbox
    joints = np.zeros((NUM_JOINTS, 2))
    j = JOINT_INDEX

    def top_at(x: float) -> float:
        column = mask[y0:y1, int(np.clip(round(x), x0, x1 - 1))]
        return float(y0 + (column.argmax() if column.any() else 0))

    def place(pair: tuple, chain: tuple[str, str, str], side: str) -> None:
        leg = pair[0] if side == "left" or len(pair) == 1 else pair[-1]
        x_top, x_knee, x_foot, foot_row = leg
        root_y = legs.belly - 0.4 * (legs.belly - top_at(x_top))  # inside the body
        joints[j[chain[0]]] = (x_top, root_y)
        joints[j[chain[1]]] = (x_knee, (legs.belly + legs.ground) / 2)
        joints[j[chain[2]]] = (x_foot, foot_row - 0.03 * (legs.ground - legs.belly))

    for side in ("left", "right"):
        place(legs.front_legs, (f"{side}_shoulder", f"{side}_elbow", f"{side}_wrist"), side)
        place(legs.hind_legs, (f"{side}_hip", f"{side}_knee", f"{side}_ankle"), side)
    # The head: the silhouette above the withers, beyond the front legs, in the facing direction.
    withers = (joints[j["left_shoulder"]] + joints[j["right_shoulder"]]) / 2
    ys, xs = np.nonzero(mask[y0 : legs.belly, x0:x1])
    ys, xs = ys + y0, xs + x0
    ahead = (xs - withers[0]) * legs.facing >= 0
    head_region = ahead & (ys <= withers[1])
    if head_region.sum() < 10:
        head_region = ahead
    hx, hy = xs[head_region], ys[head_region]
    reach = (hx - withers[0]) * legs.facing
    tip = reach >= np.percentile(reach, 90)  # the furthest tenth: the head
    centre = np.array([hx[tip].mean(), hy[tip].mean()])
    extreme = int(np.argmax(reach))
    nose = np.array([hx[extreme], hy[extreme]], dtype=np.float64)
    nose = 0.6 * nose + 0.4 * centre  # inside the muzzle, not on its outline
    back = np.array([-legs.facing, 0.0])
    up = np.array([0.0, -1.0])
    size = max(4.0, float(np.linalg.norm(nose - centre)))
    joints[j["nose"]] = nose
    joints[j["left_eye"]] = centre + 0.3 * size * up - 0.1 * size * back
    joints[j["right_eye"]] = joints[j["left_eye"]] + 0.05 * size * back
    joints[j["left_ear"]] = centre + 0.6 * size * back + 0.4 * size * up
    joints[j["right_ear"]] = joints[j["left_ear"]] + 0.05 * size * back
    return RestPose(joints, float(y1 - y0), (mask.shape[1], mask.shape[0]))
