"""A triangle mesh of the subject's silhouette, and a vectorised rasteriser for it.

The mesh (outline + interior samples, Delaunay, triangles inside the outline kept) is what
the rigged renderer deforms; the rasteriser turns the deformed mesh into a backward map —
for every covered output pixel, where it comes from in the rest image — so one
``cv2.remap`` moves all the pixels. No Python loop runs per triangle or per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from char_pipeline.engine.errors import EmptySubjectError

# Vertex spacing: the subject's height over this many samples (~500–900 vertices).
MESH_ROWS = 28
# The mesh reaches this far past the mask's soft edge (pixels), so the remapped alpha — not
# the triangle edges — draws the anti-aliased outline.
EDGE_MARGIN = 2


@dataclass(frozen=True)
class Mesh:
    vertices: np.ndarray  # (V, 2) float64, pixels of the image the mesh was built on
    triangles: np.ndarray  # (F, 3) int32

    def to_json(self) -> dict:
        return {
            "vertices": np.round(self.vertices, 2).tolist(),
            "triangles": self.triangles.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict) -> Mesh:
        return cls(
            np.asarray(data["vertices"], dtype=np.float64),
            np.asarray(data["triangles"], dtype=np.int32),
        )

    def transformed(self, matrix: np.ndarray) -> Mesh:
        """The mesh under a 2×3 affine map (e.g. its placement in the frame)."""
        return Mesh(self.vertices @ matrix[:, :2].T + matrix[:, 2], self.triangles)


def build_mesh(soft_mask: np.ndarray, rows: int = MESH_ROWS) -> Mesh:
    """Triangulate the subject: outline vertices every ``spacing`` pixels, interior samples
    on a staggered grid, Delaunay, and only the triangles that lie on the subject."""
    covered = (soft_mask > 8).astype(np.uint8)
    if covered.sum() < 16:
        raise EmptySubjectError("The subject mask is empty; there is nothing to rig.")
    covered = cv2.dilate(covered, np.ones((2 * EDGE_MARGIN + 1,) * 2, np.uint8))
    ys, xs = np.nonzero(covered)
    height = ys.max() - ys.min() + 1
    spacing = max(4.0, height / rows)
    contours, _ = cv2.findContours(covered, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = []
    for contour in contours:
        if cv2.contourArea(contour) < spacing**2:
            continue
        points = contour[:, 0, :].astype(np.float64)
        # Resample the closed outline evenly along its length.
        closed = np.vstack([points, points[:1]])
        lengths = np.r_[0, np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))]
        count = max(8, int(lengths[-1] / spacing))
        at = np.linspace(0, lengths[-1], count, endpoint=False)
        outline.append(
            np.stack([np.interp(at, lengths, closed[:, 0]), np.interp(at, lengths, closed[:, 1])], 1)
        )
    if not outline:
        raise EmptySubjectError("The subject is too small to rig.")
    boundary = np.vstack(outline)
    # Interior: a staggered grid, kept at least half a spacing inside the outline.
    inside = cv2.distanceTransform(covered, cv2.DIST_L2, 3)
    grid_y = np.arange(ys.min() + spacing / 2, ys.max(), spacing * 0.866)
    interior = []
    for row, y in enumerate(grid_y):
        shift = spacing / 2 if row % 2 else 0.0
        grid_x = np.arange(xs.min() + shift, xs.max() + 1, spacing)
        interior.append(np.stack([grid_x, np.full_like(grid_x, y)], 1))
    candidates = np.vstack(interior) if interior else np.empty((0, 2))
    cols = np.clip(candidates[:, 0].astype(int), 0, covered.shape[1] - 1)
    rows_ = np.clip(candidates[:, 1].astype(int), 0, covered.shape[0] - 1)
    candidates = candidates[inside[rows_, cols] > spacing * 0.5]
    vertices = np.vstack([boundary, candidates])
    triangles = Delaunay(vertices).simplices.astype(np.int32)
    # Keep triangles whose centroid and edge midpoints lie on the subject.
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    probes = np.stack([(a + b + c) / 3, (a + b) / 2, (b + c) / 2, (c + a) / 2], 0)
    px = np.clip(np.round(probes[..., 0]).astype(int), 0, covered.shape[1] - 1)
    py = np.clip(np.round(probes[..., 1]).astype(int), 0, covered.shape[0] - 1)
    keep = covered[py, px].all(axis=0)
    triangles = triangles[keep]
    used = np.unique(triangles)
    remap = np.full(len(vertices), -1, np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    return Mesh(vertices[used], remap[triangles])


def rasterise(
    positions: np.ndarray,
    sources: np.ndarray,
    triangles: np.ndarray,
    depth: np.ndarray,
    width: int,
    height: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Backward map of a deformed mesh: (map_x, map_y) float32 H×W, −1 where uncovered.

    ``positions`` are the deformed vertices in output pixels, ``sources`` the same vertices
    where they sample from, ``depth`` per vertex (larger = nearer); where triangles overlap
    the nearest wins (limbs in front of the body). All triangles are scanned at once: every
    pixel of every triangle's bounding box is a candidate, kept if its barycentric
    coordinates are inside.
    """
    a, b, c = (positions[triangles[:, i]] for i in range(3))
    # Pixel centres at integer coordinates (cv2.remap's convention).
    low = np.floor(np.minimum(np.minimum(a, b), c)).astype(np.int64)
    high = np.ceil(np.maximum(np.maximum(a, b), c)).astype(np.int64)
    np.clip(low, 0, [width - 1, height - 1], out=low)
    np.clip(high, 0, [width - 1, height - 1], out=high)
    span = high - low + 1
    counts = span[:, 0] * span[:, 1]
    visible = (high[:, 0] >= low[:, 0]) & (high[:, 1] >= low[:, 1])
    counts = np.where(visible, counts, 0)
    # Barycentric coordinates from the edge functions; degenerate triangles are dropped.
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    counts = np.where(np.abs(area) > 1e-9, counts, 0)
    total = int(counts.sum())
    map_x = np.full((height, width), -1.0, np.float32)
    map_y = np.full((height, width), -1.0, np.float32)
    if total == 0:
        return map_x, map_y
    owner = np.repeat(np.arange(len(triangles)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    local = np.arange(total) - starts
    row_width = span[owner, 0]
    px = low[owner, 0] + local % row_width
    py = low[owner, 1] + local // row_width
    ax, ay = a[owner, 0], a[owner, 1]
    inv_area = 1.0 / area[owner]
    w1 = ((px - ax) * (c[owner, 1] - ay) - (py - ay) * (c[owner, 0] - ax)) * inv_area
    w2 = ((b[owner, 0] - ax) * (py - ay) - (b[owner, 1] - ay) * (px - ax)) * inv_area
    w0 = 1.0 - w1 - w2
    eps = -1e-6  # shared edges belong to both neighbours: no cracks
    inside = (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
    owner, px, py, w0, w1, w2 = (v[inside] for v in (owner, px, py, w0, w1, w2))
    tri = triangles[owner]
    pixel_depth = w0 * depth[tri[:, 0]] + w1 * depth[tri[:, 1]] + w2 * depth[tri[:, 2]]
    pixel = py * width + px
    # Nearest first per pixel: sort by pixel, then by depth descending; keep the first.
    order = np.lexsort((-pixel_depth, pixel))
    pixel = pixel[order]
    first = np.r_[True, pixel[1:] != pixel[:-1]]
    chosen = order[first]
    tri = tri[chosen]
    w0, w1, w2 = w0[chosen], w1[chosen], w2[chosen]
    source = (
        w0[:, None] * sources[tri[:, 0]]
        + w1[:, None] * sources[tri[:, 1]]
        + w2[:, None] * sources[tri[:, 2]]
    )
    flat_x, flat_y = map_x.reshape(-1), map_y.reshape(-1)
    flat_x[pixel[first]] = source[:, 0]
    flat_y[pixel[first]] = source[:, 1]
    return map_x, map_y
