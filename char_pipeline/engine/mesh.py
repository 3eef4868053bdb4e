"""A triangle mesh of the subject's silhouette, and a vectorised rasteriser for it.

The mesh (outline + interior samples, Delaunay, triangles inside the outline kept) is what
the rigged renderer deforms; the rasteriser turns the deformed mesh into a backward map —
for every covered output pixel, where it comes from in the rest image — so one
``cv2.remap`` moves all the pixels. No Python loop runs per triangle or per pixel.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from char_pipeline.engine.errors import EmptySubjectError

# Vertex spacing: the subject's height over this many samples (~500–900 vertices).
MESH_ROWS = 28
# The mesh reaches this far past the mask's soft edge (pixels), so the remapped alpha — not
# the triangle edges — draws the anti-aliased outline.
EDGE_MARGIN = 2
# Below this area / longest-edge² a triangle is degenerate (see Mesh.without_degenerate).
DEGENERATE_RATIO = 1e-4


def triangle_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Signed area of every triangle (positive counter-clockwise in image coordinates)."""
    a, b, c = (points[triangles[:, i]] for i in range(3))
    return 0.5 * ((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])


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

    def without_degenerate(self) -> Mesh:
        """The mesh without zero-area and sliver triangles (and the vertices only they used).

        Delaunay over collinear outline samples makes triangles of area ~1e-14; ARAP's
        linear solve is singular on them and answers NaN for almost every vertex (coffee.png:
        774 of 788), so they never reach the solver. A triangle counts as degenerate when its
        area is below ``DEGENERATE_RATIO`` × its longest edge² (an equilateral one has 0.43).
        """
        area = np.abs(triangle_areas(self.vertices, self.triangles))
        a, b, c = (self.vertices[self.triangles[:, i]] for i in range(3))
        longest = np.max(
            [np.sum((b - a) ** 2, 1), np.sum((c - b) ** 2, 1), np.sum((a - c) ** 2, 1)], axis=0
        )
        keep = area > DEGENERATE_RATIO * np.maximum(longest, 1e-12)
        if keep.all():
            return self
        triangles = self.triangles[keep]
        used = np.unique(triangles)
        remap = np.full(len(self.vertices), -1, np.int32)
        remap[used] = np.arange(len(used), dtype=np.int32)
        return Mesh(self.vertices[used], remap[triangles])

    def transformed(self, matrix: np.ndarray) -> Mesh:
        """The mesh under a 2×3 affine map (e.g. its placement in the frame)."""
        return Mesh(self.vertices @ matrix[:, :2].T + matrix[:, 2], self.triangles)


# The mesh's outline follows the mask to within this many pixels: corners and thin strokes
# are kept (an outline resampled every `spacing` pixels cut triangular notches into them).
OUTLINE_TOLERANCE = 0.6


def _outline_vertices(contour: np.ndarray, spacing: float) -> np.ndarray:
    """The closed outline as a polygon within OUTLINE_TOLERANCE of the contour, its long
    straight runs subdivided so no outline edge is longer than ``spacing``."""
    polygon = cv2.approxPolyDP(contour, OUTLINE_TOLERANCE, closed=True)[:, 0, :].astype(np.float64)
    following = np.roll(polygon, -1, axis=0)
    pieces = np.maximum(1, np.ceil(np.linalg.norm(following - polygon, axis=1) / spacing))
    pieces = pieces.astype(int)
    share = np.concatenate([np.arange(n) / n for n in pieces])
    start = np.repeat(polygon, pieces, axis=0)
    return start + share[:, None] * (np.repeat(following, pieces, axis=0) - start)


def build_mesh(soft_mask: np.ndarray, rows: int = MESH_ROWS) -> Mesh:
    """Triangulate the subject: outline vertices within OUTLINE_TOLERANCE of the mask (at most
    ``spacing`` apart), interior samples on a staggered grid, Delaunay, the triangles that lie
    on the subject — refined until the mask's solid part is covered."""
    covered = (soft_mask > 8).astype(np.uint8)
    if covered.sum() < 16:
        raise EmptySubjectError("The subject mask is empty; there is nothing to rig.")
    covered = cv2.dilate(covered, np.ones((2 * EDGE_MARGIN + 1,) * 2, np.uint8))
    ys, xs = np.nonzero(covered)
    height = ys.max() - ys.min() + 1
    spacing = max(4.0, height / rows)
    # Outer outlines and the outlines of holes (the paper seen through a drawn arm's loop):
    # without the holes' vertices the triangles around a hole cut into the subject beside it.
    contours, _ = cv2.findContours(covered, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    outline = [
        _outline_vertices(contour, spacing)
        for contour in contours
        if cv2.contourArea(contour) >= spacing**2
    ]
    if not outline:
        raise EmptySubjectError("The subject is too small to rig.")
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
    # The subject's core (the soft mask's solid part) must be covered by triangles. Delaunay
    # is not constrained to the outline: where thin parts run close together (a raised arm
    # beside the head) it joins vertices across the gap, those triangles are dropped, and
    # the subject loses pieces. Points are added inside what is left uncovered, outline
    # edges next to it are split, and the subject is triangulated again until it is whole.
    core = (soft_mask > 127).astype(np.uint8)
    for _ in range(REFINE_ROUNDS):
        vertices, triangles = _triangulate(np.vstack([*outline, candidates]), covered)
        missed = (core > 0) & (_painted(vertices, triangles, core.shape) == 0)
        if missed.sum() <= REFINE_TOLERANCE:
            break
        near = cv2.distanceTransform((~missed).astype(np.uint8), cv2.DIST_L2, 3)
        outline = [_split_edges_near(polygon, near) for polygon in outline]
        candidates = np.vstack([candidates, _points_inside(missed, max(2.0, spacing / 4))])
    used = np.unique(triangles)
    remap = np.full(len(vertices), -1, np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    # Rounded as rig.json stores it, so a mesh used in memory and one read back from storage
    # are the same mesh, and the engine's functions and a Dagster run give the same frames.
    return Mesh(np.round(vertices[used], 2), remap[triangles]).without_degenerate()


REFINE_ROUNDS = 5
REFINE_TOLERANCE = 4  # core pixels that may stay uncovered (single pixels at a sharp tip)
SPLIT_REACH = 3.0  # outline edges within this many pixels of an uncovered pixel are split


def _painted(vertices: np.ndarray, triangles: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels the triangles cover (each filled on its own: fillPoly's even-odd rule would
    cancel shared edges)."""
    painted = np.zeros(shape, np.uint8)
    for corners in np.round(vertices[triangles]).astype(np.int32):
        cv2.fillConvexPoly(painted, corners, 1)
    return painted


def _points_inside(region: np.ndarray, step: float) -> np.ndarray:
    """Sample points of a region: a grid of ``step`` over it, and each piece's most inward
    pixel (pieces narrower than the grid still get one)."""
    ys, xs = np.nonzero(region)
    on_grid = (np.round(xs / step) * step == xs) & (np.round(ys / step) * step == ys)
    points = [np.stack([xs[on_grid], ys[on_grid]], 1).astype(np.float64)]
    count, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    depth = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 3)
    for label in range(1, count):
        piece_y, piece_x = np.nonzero(labels == label)
        deepest = int(depth[piece_y, piece_x].argmax())
        points.append(np.array([[piece_x[deepest], piece_y[deepest]]], np.float64))
    return np.vstack(points)


def _split_edges_near(polygon: np.ndarray, near: np.ndarray) -> np.ndarray:
    """The closed polygon with a midpoint added to every edge near an uncovered pixel."""
    following = np.roll(polygon, -1, axis=0)
    middle = (polygon + following) / 2
    height, width = near.shape
    probes = np.stack([polygon, middle, following])
    px = np.clip(np.round(probes[..., 0]).astype(int), 0, width - 1)
    py = np.clip(np.round(probes[..., 1]).astype(int), 0, height - 1)
    split = (near[py, px] <= SPLIT_REACH).any(axis=0)
    split &= np.linalg.norm(following - polygon, axis=1) > 1.0
    pieces = np.stack([polygon, np.where(split[:, None], middle, np.nan)], axis=1).reshape(-1, 2)
    return pieces[~np.isnan(pieces[:, 0])]


def _triangulate(vertices: np.ndarray, covered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Delaunay triangles of ``vertices`` whose centroid and edge midpoints lie on the subject."""
    from scipy.spatial import Delaunay  # here: render runs load stored meshes (0.2 s import)

    triangles = Delaunay(vertices).simplices.astype(np.int32)
    # Outline vertices sit on the mask's boundary pixels: an edge between two of them may
    # round one pixel outside it, so the probes get a pixel of slack.
    covered = cv2.dilate(covered, np.ones((3, 3), np.uint8))
    a, b, c = (vertices[triangles[:, i]] for i in range(3))
    probes = np.stack([(a + b + c) / 3, (a + b) / 2, (b + c) / 2, (c + a) / 2], 0)
    px = np.clip(np.round(probes[..., 0]).astype(int), 0, covered.shape[1] - 1)
    py = np.clip(np.round(probes[..., 1]).astype(int), 0, covered.shape[0] - 1)
    return vertices, triangles[covered[py, px].all(axis=0)]


SUBPIXEL_BITS = 4  # fixed-point fraction of the corners handed to cv2.fillConvexPoly


@functools.lru_cache(maxsize=8)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel's x and y as flat float32 arrays (read-only, shared between frames)."""
    grid_y, grid_x = np.divmod(np.arange(height * width, dtype=np.int64), width)
    grid_x, grid_y = grid_x.astype(np.float32), grid_y.astype(np.float32)
    grid_x.flags.writeable = grid_y.flags.writeable = False
    return grid_x, grid_y


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
    where they sample from, ``depth`` per vertex (larger = nearer). Each triangle is filled
    into an owner image (OpenCV's polygon fill, sub-pixel corners), far to near, so where
    triangles overlap the nearer one wins (limbs in front of the body). Each triangle maps
    output to source pixels by one affine map, so the backward map is exact inside every
    triangle; the fill's edge pixels (at most one past an outer edge) extend its map.
    """
    # Far-to-near rank: where triangles overlap the highest rank wins.
    order = np.argsort(depth[triangles].mean(axis=1), kind="stable")
    triangles = triangles[order]
    corners = positions[triangles]  # (F, 3, 2)
    # Affine output → source per triangle: S · P⁻¹ with P the corners as homogeneous columns.
    homogeneous = np.concatenate([corners, np.ones((len(triangles), 3, 1))], axis=2)
    determinant = np.linalg.det(homogeneous)
    drawable = np.abs(determinant) > 1e-6
    homogeneous[~drawable] = np.eye(3)
    affine = np.einsum("fki,fjk->fij", sources[triangles], np.linalg.inv(homogeneous))
    affine = affine.astype(np.float32)  # (F, 2, 3): source x, y from (x, y, 1)

    # Which triangle owns each pixel: OpenCV fills each triangle (sub-pixel corners, 4 bits
    # of fraction) with its rank, far to near, so the nearest one is drawn last and wins.
    # One C call per triangle (~3 µs) replaced numpy spans expanded to every covered pixel
    # and a scatter-max over them (~25 ms for a subject that fills a 1280x720 frame).
    winner = np.full((height, width), -1, np.int32)
    fixed = np.round(corners * (1 << SUBPIXEL_BITS)).astype(np.int32)
    for rank in np.flatnonzero(drawable):
        cv2.fillConvexPoly(winner, fixed[rank], int(rank), cv2.LINE_8, SUBPIXEL_BITS)
    winner = winner.reshape(-1)
    # One gather per pixel from a small table of affine maps; uncovered pixels (winner -1)
    # take its last row, a sentinel that maps them to -1. Over the whole frame when the
    # subject fills most of it (compacting first cost 30 ms a frame at 720x720 then), over
    # the covered pixels only when it does not.
    table = np.concatenate(
        [affine.reshape(len(triangles), 6), np.array([[0, 0, -1, 0, 0, -1]], np.float32)]
    )
    columns = np.ascontiguousarray(table.T)  # six 1-D tables: takes from them are ~4× faster
    grid_x, grid_y = _pixel_grid(height, width)
    covered = np.flatnonzero(winner >= 0)
    full = covered.size > winner.size // 2
    if full:
        owners, fx, fy = winner.astype(np.intp), grid_x, grid_y
    else:
        owners, fx, fy = winner[covered].astype(np.intp), grid_x[covered], grid_y[covered]
    maps = []
    for axis in (0, 1):
        values = columns[3 * axis].take(owners)
        values *= fx
        term = columns[3 * axis + 1].take(owners)
        term *= fy
        values += term
        values += columns[3 * axis + 2].take(owners)
        if not full:
            scattered = np.full(height * width, -1.0, np.float32)
            scattered[covered] = values
            values = scattered
        maps.append(values)
    map_x, map_y = maps
    return map_x.reshape(height, width), map_y.reshape(height, width)
