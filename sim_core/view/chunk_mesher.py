"""Bone surface from the live density grid, meshed per 32-voxel chunk so a cut remeshes little.

The surface is the 0.5 level of a bone occupancy field, ``min(density / floor, 1)`` lightly
smoothed (a binary field meshes as voxel stairs). Chunks are the engine's: chunk ``c`` along
an axis holds voxels ``32 c .. 32 c + 31`` (``SimState.dirty`` flags them), and owns the
marching-cubes cells between samples ``32 c`` and ``32 c + 32``: it reads one sample more
than it holds (the 1-voxel overlap) plus a 3-voxel halo for the smoothing. Neighbouring
chunks therefore compute identical samples on their shared face and their vertices there
coincide: the chunks stitch without cracks. Outside the grid the field is empty (the first
chunk also owns the cells before sample 0), so bone touching the grid's edge still closes.

Vertices are in voxel index coordinates of the density grid (multiply by ``spacing_mm`` for
the case frame); normals point out of the bone.
"""

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from numba import njit
from skimage.measure import marching_cubes

from sim_core.view.snapshot import ChunkIndex

CHUNK_VOXELS = 32
# the case builder floors bone density at 0.05 g/cm^3, so anything under it is not bone
BONE_FLOOR_G_CM3 = 0.05
# enough to round off voxel stairs; a plate must be 2 voxels thick to survive (its peak is
# ~0.7), which at CT spacing (0.5-0.8 mm) keeps every cortex worth showing
_SMOOTHING_VOXELS = 0.9
_HALO = 3  # gaussian reach used: sigma truncated at 3 voxels
# the gaussian's taps, as scipy.ndimage.gaussian_filter(sigma, truncate=_HALO / sigma) has them
_TAPS = np.exp(-0.5 * (np.arange(-_HALO, _HALO + 1) / _SMOOTHING_VOXELS) ** 2)
_TAPS = np.ascontiguousarray(_TAPS / _TAPS.sum())


@njit("f4[:, :, ::1](f4[:, :, ::1], f8[::1])", cache=True, nogil=True)
def _smooth_core(field, taps):  # type: ignore[no-untyped-def]
    """Separable correlation of ``field`` with ``taps`` (2 h + 1 of them), one axis after the
    other, each pass rounded to float32 (as scipy's gaussian_filter), computed only where the
    core (``field`` less h on every side) needs it. Returns the core, shape ``n - 2 h``.

    Each output is summed in float64 over the taps in order, as scipy does; the loops run the
    taps outside and the contiguous axis inside, so a whole row of sums advances together
    (vectorised) with the very same additions in the very same order."""
    h = (taps.shape[0] - 1) // 2
    n0, n1, n2 = field.shape
    c0, c1, c2 = n0 - 2 * h, n1 - 2 * h, n2 - 2 * h
    row = np.empty(n2, dtype=np.float64)
    a = np.empty((c0, n1, n2), dtype=np.float32)
    for i in range(c0):
        for j in range(n1):
            row[:] = 0.0
            for t in range(2 * h + 1):
                w = taps[t]
                for k in range(n2):
                    row[k] += w * field[i + t, j, k]
            for k in range(n2):
                a[i, j, k] = row[k]
    b = np.empty((c0, c1, n2), dtype=np.float32)
    for i in range(c0):
        for j in range(c1):
            row[:] = 0.0
            for t in range(2 * h + 1):
                w = taps[t]
                for k in range(n2):
                    row[k] += w * a[i, j + t, k]
            for k in range(n2):
                b[i, j, k] = row[k]
    c = np.empty((c0, c1, c2), dtype=np.float32)
    for i in range(c0):
        for j in range(c1):
            row[:c2] = 0.0
            for t in range(2 * h + 1):
                w = taps[t]
                for k in range(c2):
                    row[k] += w * b[i, j, k + t]
            for k in range(c2):
                c[i, j, k] = row[k]
    return c


class ChunkMesh(NamedTuple):
    vertices: npt.NDArray[np.float32]  # N x 3, voxel index coordinates
    faces: npt.NDArray[np.int32]  # M x 3, counter-clockwise seen from outside the bone
    normals: npt.NDArray[np.float32]  # N x 3, unit, out of the bone


EMPTY_CHUNK = ChunkMesh(
    np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32), np.zeros((0, 3), np.float32)
)


def chunk_counts(shape: tuple[int, ...], chunk: int = CHUNK_VOXELS) -> tuple[int, int, int]:
    """Chunks along each axis of a grid of ``shape`` (the engine's ``dirty`` flag grid)."""
    n0, n1, n2 = shape
    return math.ceil(n0 / chunk), math.ceil(n1 / chunk), math.ceil(n2 / chunk)


def _sample_range(c: int, chunk: int) -> tuple[int, int]:
    # first and last field sample a chunk meshes (inclusive), in voxel indices
    return (c * chunk - 1 if c == 0 else c * chunk), c * chunk + chunk


def chunks_touching(
    lo_index: npt.ArrayLike,
    hi_index: npt.ArrayLike,
    shape: tuple[int, ...],
    chunk: int = CHUNK_VOXELS,
) -> list[ChunkIndex]:
    """Chunks whose surface can change when voxels in the box ``lo..hi`` (inclusive) change."""
    counts = chunk_counts(shape, chunk)
    # a voxel moves the smoothed field up to the halo away; a chunk meshes samples
    # 32 c .. 32 c + 32, so the box reaches the chunks whose range it overlaps
    lo = np.asarray(lo_index, dtype=np.int64) - _HALO
    hi = np.asarray(hi_index, dtype=np.int64) + _HALO
    ranges = [
        range(
            max(-(-(int(lo[a]) - chunk) // chunk), 0),
            min(int(hi[a]) // chunk, counts[a] - 1) + 1,
        )
        for a in range(3)
    ]
    return [(i, j, k) for i in ranges[0] for j in ranges[1] for k in ranges[2]]


def _window(
    density: npt.NDArray[np.float32], start: tuple[int, int, int], size: tuple[int, int, int]
) -> npt.NDArray[np.float32]:
    # the grid between indices start .. start + size - 1 on each axis, zero outside it
    out = np.zeros(size, dtype=np.float32)
    src, dst = [], []
    for a in range(3):
        lo = max(start[a], 0)
        hi = min(start[a] + size[a], density.shape[a])
        if hi <= lo:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - start[a], hi - start[a]))
    out[dst[0], dst[1], dst[2]] = density[src[0], src[1], src[2]]
    return out


def mesh_chunk(
    density: npt.NDArray[np.float32],
    index: ChunkIndex,
    chunk: int = CHUNK_VOXELS,
    *,
    bone_floor_g_cm3: float = BONE_FLOOR_G_CM3,
) -> ChunkMesh:
    """The bone surface inside one chunk (``EMPTY_CHUNK`` where it has none)."""
    # the chunk's samples and the halo around them
    ranges = [_sample_range(c, chunk) for c in index]
    start = (ranges[0][0] - _HALO, ranges[1][0] - _HALO, ranges[2][0] - _HALO)
    size = (
        ranges[0][1] - ranges[0][0] + 1 + 2 * _HALO,
        ranges[1][1] - ranges[1][0] + 1 + 2 * _HALO,
        ranges[2][1] - ranges[2][0] + 1 + 2 * _HALO,
    )
    raw = _window(density, start, size)
    if not raw.any():
        return EMPTY_CHUNK
    occupancy = np.minimum(raw / np.float32(bone_floor_g_cm3), np.float32(1.0))
    # the smoothed field where the chunk's cells need it (a compiled twin of scipy's
    # gaussian_filter, which spent as long as marching cubes smoothing the discarded halo)
    core = _smooth_core(np.ascontiguousarray(occupancy, dtype=np.float32), _TAPS)
    if core.max() <= 0.5 or core.min() >= 0.5:
        return EMPTY_CHUNK
    # "ascent" winds the faces counter-clockwise seen from outside a bone whose values are high
    vertices, faces, normals, _ = marching_cubes(  # type: ignore[no-untyped-call]
        core, 0.5, gradient_direction="ascent"
    )
    vertices += np.asarray([s + _HALO for s in start], dtype=np.float32)
    return ChunkMesh(
        vertices.astype(np.float32), faces.astype(np.int32), normals.astype(np.float32)
    )


def remesh_chunks(
    density: npt.NDArray[np.float32],
    chunk_indices: list[ChunkIndex] | tuple[ChunkIndex, ...],
    chunk: int = CHUNK_VOXELS,
    *,
    bone_floor_g_cm3: float = BONE_FLOOR_G_CM3,
) -> dict[ChunkIndex, ChunkMesh]:
    """Mesh each listed chunk of ``density`` (float32, g/cm^3, C-contiguous).

    Chunks outside the grid raise ``ValueError``; chunks without surface map to an empty mesh,
    so a caller replacing old chunk meshes also drops the ones a cut emptied.
    """
    if density.ndim != 3 or density.dtype != np.float32:
        raise ValueError(f"density must be a 3-D float32 grid, got {density.dtype} {density.shape}")
    counts = chunk_counts(density.shape, chunk)
    meshes = {}
    for index in chunk_indices:
        if len(index) != 3 or any(not 0 <= c < n for c, n in zip(index, counts, strict=True)):
            raise ValueError(f"chunk {index} is outside the grid's {counts} chunks")
        meshes[index] = mesh_chunk(density, index, chunk, bone_floor_g_cm3=bone_floor_g_cm3)
    return meshes


def all_chunks(shape: tuple[int, ...], chunk: int = CHUNK_VOXELS) -> list[ChunkIndex]:
    """Every chunk index of a grid, in array order."""
    n0, n1, n2 = chunk_counts(shape, chunk)
    return [(i, j, k) for i in range(n0) for j in range(n1) for k in range(n2)]
