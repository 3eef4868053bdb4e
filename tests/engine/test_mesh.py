import numpy as np
import pytest

from char_pipeline.engine.errors import EmptySubjectError
from char_pipeline.engine.mesh import Mesh, build_mesh, rasterise
from char_pipeline.engine.metrics import silhouette_holes


def test_mesh_covers_the_subject_and_maps_to_itself(present):
    _, mask = present
    mesh = build_mesh(mask.soft)
    assert 300 < len(mesh.vertices) < 2000
    height, width = mask.soft.shape
    map_x, map_y = rasterise(
        mesh.vertices, mesh.vertices, mesh.triangles, np.zeros(len(mesh.vertices)), width, height
    )
    covered = map_x >= 0
    subject = mask.soft > 128
    assert covered[subject].mean() > 0.999  # the whole subject, soft edge included
    assert silhouette_holes(covered.astype(np.float32)) == 0.0  # no cracks between triangles
    ys, xs = np.nonzero(covered)
    assert np.abs(map_x[ys, xs] - xs).max() < 1e-2 and np.abs(map_y[ys, xs] - ys).max() < 1e-2
    again = Mesh.from_json(mesh.to_json())
    assert np.allclose(again.vertices, mesh.vertices, atol=0.01)
    assert np.array_equal(again.triangles, mesh.triangles)


def test_nearer_triangles_win_where_they_overlap():
    square = np.array([[10, 10], [40, 10], [40, 40], [10, 40]], dtype=np.float64)
    vertices = np.vstack([square, square + 15])
    triangles = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]], dtype=np.int32)
    sources = np.vstack([np.full((4, 2), 1.0), np.full((4, 2), 2.0)])
    for depth_of_second, expected in ((1.0, 2.0), (-1.0, 1.0)):
        depth = np.r_[np.zeros(4), np.full(4, depth_of_second)]
        map_x, _ = rasterise(vertices, sources, triangles, depth, 64, 64)
        assert map_x[30, 30] == pytest.approx(expected)  # inside both squares
    assert map_x[12, 12] == pytest.approx(1.0) and map_x[50, 50] == pytest.approx(2.0)
    assert map_x[5, 5] == -1.0


def test_empty_masks_are_typed_errors():
    with pytest.raises(EmptySubjectError):
        build_mesh(np.zeros((64, 64), np.uint8))


def test_degenerate_triangles_are_removed_before_any_solver_sees_them():
    # Three collinear outline points make a zero-area triangle, as Delaunay did on coffee.png.
    vertices = np.array([[0, 0], [10, 0], [20, 0], [10, 10], [30, 10]], dtype=np.float64)
    triangles = np.array([[0, 1, 2], [0, 1, 3], [1, 2, 3], [2, 4, 3]], dtype=np.int32)
    repaired = Mesh(vertices, triangles).without_degenerate()
    assert len(repaired.triangles) == 3
    assert np.array_equal(repaired.vertices, vertices)  # every vertex still has a triangle
    a, b, c = (repaired.vertices[repaired.triangles[:, i]] for i in range(3))
    areas = 0.5 * np.abs((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])
    assert areas.min() > 1.0
    sliver_only = Mesh(vertices[:3], np.array([[0, 1, 2]], dtype=np.int32)).without_degenerate()
    assert len(sliver_only.triangles) == 0 and len(sliver_only.vertices) == 0
