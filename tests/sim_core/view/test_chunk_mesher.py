"""Chunked bone surface: chunks stitch into one closed surface and follow cuts."""

import numpy as np
import pytest

from sim_core.view.chunk_mesher import (
    ChunkMesh,
    all_chunks,
    chunk_counts,
    chunks_touching,
    remesh_chunks,
)
from sim_core.view.mesh_nodes import signed_volume_mm3
from sim_core.view.snapshot import ChunkIndex


def _ball(
    shape: tuple[int, int, int], centre: tuple[float, float, float], radius: float
) -> np.ndarray:
    i, j, k = np.indices(shape)
    inside = (i - centre[0]) ** 2 + (j - centre[1]) ** 2 + (k - centre[2]) ** 2 < radius**2
    return np.where(inside, np.float32(0.4), np.float32(0.0)).astype(np.float32)


def _weld(meshes: dict[ChunkIndex, ChunkMesh]) -> tuple[np.ndarray, np.ndarray]:
    # merge all chunk meshes, joining vertices at identical positions
    vertices = np.concatenate([m.vertices for m in meshes.values()])
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes.values()])[:-1]
    faces = np.concatenate([m.faces + o for m, o in zip(meshes.values(), offsets, strict=True)])
    unique, inverse = np.unique(vertices, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)[faces]


def test_chunks_stitch_into_one_closed_outward_surface() -> None:
    # a ball across eight chunks, cut off by the grid's last layer (closed by the padding)
    density = _ball((70, 66, 34), (30.0, 33.0, 22.0), 15.0)
    meshes = remesh_chunks(density, all_chunks(density.shape))

    assert len([m for m in meshes.values() if len(m.faces)]) == 8
    vertices, faces = _weld(meshes)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    _, uses = np.unique(edges, axis=0, return_counts=True)
    assert set(uses.tolist()) == {2}  # every edge joins exactly two faces: no cracks
    volume = signed_volume_mm3(vertices, faces)
    assert volume == pytest.approx(np.count_nonzero(density), rel=0.05)


def test_a_cut_changes_only_the_chunks_it_touches() -> None:
    density = _ball((64, 64, 64), (32.0, 32.0, 32.0), 20.0)
    before = remesh_chunks(density, all_chunks(density.shape))
    # burr a 4 mm hole (voxels = mm here) into the ball's top
    cut = _ball(density.shape, (32.0, 32.0, 52.0), 4.0) > 0
    density[cut] = 0.0
    box = np.argwhere(cut)
    touched = chunks_touching(box.min(axis=0), box.max(axis=0), density.shape)
    after = remesh_chunks(density, all_chunks(density.shape))

    changed = {c for c in before if not np.array_equal(before[c].vertices, after[c].vertices)}
    assert changed and changed <= set(touched)
    volume_before = sum(
        signed_volume_mm3(*_weld({c: m})) for c, m in before.items() if len(m.faces)
    )
    volume_after = sum(signed_volume_mm3(*_weld({c: m})) for c, m in after.items() if len(m.faces))
    assert volume_after != volume_before


def test_it_returns_empty_meshes_for_empty_chunks_and_rejects_outside_ones() -> None:
    density = np.zeros((40, 40, 40), np.float32)
    assert chunk_counts(density.shape) == (2, 2, 2)
    empty = remesh_chunks(density, [(0, 0, 0)])[(0, 0, 0)]
    assert empty.vertices.shape == (0, 3) and empty.faces.shape == (0, 3)
    with pytest.raises(ValueError, match="outside"):
        remesh_chunks(density, [(2, 0, 0)])
    with pytest.raises(ValueError, match="float32"):
        remesh_chunks(density.astype(np.float64), [(0, 0, 0)])


def test_the_compiled_smoothing_matches_scipys_gaussian_on_the_core() -> None:
    from scipy import ndimage

    from sim_core.view.chunk_mesher import _HALO, _SMOOTHING_VOXELS, _TAPS, _smooth_core

    rng = np.random.default_rng(3)
    for shape in [(39, 39, 39), (13, 20, 9)]:
        field = np.minimum(rng.random(shape, dtype=np.float32) * 2, 1).astype(np.float32)
        field[:, :, : shape[2] // 2] = 0.0  # an empty half and a hard edge
        want = ndimage.gaussian_filter(field, _SMOOTHING_VOXELS, truncate=_HALO / _SMOOTHING_VOXELS)
        got = _smooth_core(field, _TAPS)
        core = want[_HALO:-_HALO, _HALO:-_HALO, _HALO:-_HALO]
        assert got.shape == core.shape
        np.testing.assert_allclose(got, core, rtol=0, atol=1e-6)
