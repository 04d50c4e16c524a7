"""Numba kernel of the virtual fluoroscope: one perspective ray per detector pixel.

``sim_core.fluoro`` is the public face; ``sim_core.fluoro.line_integrals_numpy`` is this
kernel's numpy twin (same geometry, same samples, summed in another order).

Each ray runs from the source to a detector pixel. Inside the grid's box it samples the
attenuation grid (1/mm) trilinearly at the midpoints of ``step_mm`` steps and sums
``mu * step_mm``; the instrument parts add their exact chord length times their own
attenuation (a part is a sphere, a finite cylinder or a box; see ``PART_*``).
"""

import math

import numpy as np
import numpy.typing as npt
from numba import njit, prange

# one instrument part per row of the parts array, float64
PART_KIND = 0  # one of KIND_*
PART_TIP = 1  # 3: the tip (sphere: centre), case frame mm
PART_DIR = 4  # 3: unit axis, handle to tip; the part runs from the tip back along -dir
PART_NORMAL = 7  # 3: unit blade normal (boxes)
PART_RADIUS = 10  # sphere / cylinder radius; box: half its thickness along the normal
PART_LENGTH = 11  # cylinder / box length behind the tip
PART_WIDTH = 12  # box width across the axis, in the blade plane
PART_MU = 13  # attenuation, 1/mm
N_PART = 14
KIND_SPHERE, KIND_CYLINDER, KIND_BOX = 1.0, 2.0, 3.0


@njit(cache=True, nogil=True, inline="always")
def _box_span(
    sx: float, sy: float, sz: float, dx: float, dy: float, dz: float, hi: npt.NDArray[np.float64]
) -> tuple[float, float]:
    # the ray's parameter interval inside [0, hi] on every axis (slab method)
    t0, t1 = -1e300, 1e300
    for a in range(3):
        s = sx if a == 0 else (sy if a == 1 else sz)
        d = dx if a == 0 else (dy if a == 1 else dz)
        if abs(d) < 1e-12:
            if s < 0.0 or s > hi[a]:
                return 0.0, -1.0
            continue
        ta = (0.0 - s) / d
        tb = (hi[a] - s) / d
        if ta > tb:
            ta, tb = tb, ta
        t0 = max(t0, ta)
        t1 = min(t1, tb)
    return t0, t1


@njit(cache=True, nogil=True, inline="always")
def _sample(mu: npt.NDArray[np.float32], x: float, y: float, z: float) -> float:
    # trilinear at index coordinates (x, y, z) within [0, n - 1] on every axis
    n0, n1, n2 = mu.shape
    # the ray stays inside the box; the clamps only absorb rounding at its faces
    i = max(min(int(x), n0 - 2), 0)
    j = max(min(int(y), n1 - 2), 0)
    k = max(min(int(z), n2 - 2), 0)
    fx, fy, fz = x - i, y - j, z - k
    c00 = mu[i, j, k] * (1.0 - fx) + mu[i + 1, j, k] * fx
    c01 = mu[i, j, k + 1] * (1.0 - fx) + mu[i + 1, j, k + 1] * fx
    c10 = mu[i, j + 1, k] * (1.0 - fx) + mu[i + 1, j + 1, k] * fx
    c11 = mu[i, j + 1, k + 1] * (1.0 - fx) + mu[i + 1, j + 1, k + 1] * fx
    c0 = c00 * (1.0 - fy) + c10 * fy
    c1 = c01 * (1.0 - fy) + c11 * fy
    return float(c0 * (1.0 - fz) + c1 * fz)


@njit(cache=True, nogil=True)
def part_chord(part: npt.NDArray[np.float64], src: npt.NDArray[np.float64],
               d: npt.NDArray[np.float64], ray_len: float) -> float:  # fmt: skip
    """Length (mm) of the segment src + t·d, t in [0, ray_len], inside one instrument part."""
    kind = part[PART_KIND]
    wx = src[0] - part[PART_TIP]
    wy = src[1] - part[PART_TIP + 1]
    wz = src[2] - part[PART_TIP + 2]
    r = part[PART_RADIUS]
    lo, hi = 0.0, ray_len
    if kind == KIND_SPHERE:
        b = wx * d[0] + wy * d[1] + wz * d[2]
        c = wx * wx + wy * wy + wz * wz - r * r
        disc = b * b - c
        if disc <= 0.0:
            return 0.0
        q = math.sqrt(disc)
        lo, hi = max(lo, -b - q), min(hi, -b + q)
        return float(max(0.0, hi - lo))
    ax, ay, az = part[PART_DIR], part[PART_DIR + 1], part[PART_DIR + 2]
    # position behind the tip along -dir: s(t) = -(w + t d)·a, within [0, length]
    wa = wx * ax + wy * ay + wz * az
    da = d[0] * ax + d[1] * ay + d[2] * az
    length = part[PART_LENGTH]
    if abs(da) < 1e-12:
        if -wa < 0.0 or -wa > length:
            return 0.0
    else:
        t_a = (-wa - 0.0) / da
        t_b = (-wa - length) / da
        if t_a > t_b:
            t_a, t_b = t_b, t_a
        lo, hi = max(lo, t_a), min(hi, t_b)
    if kind == KIND_CYLINDER:
        px, py, pz = wx - wa * ax, wy - wa * ay, wz - wa * az
        qx, qy, qz = d[0] - da * ax, d[1] - da * ay, d[2] - da * az
        a2 = qx * qx + qy * qy + qz * qz
        b2 = px * qx + py * qy + pz * qz
        c2 = px * px + py * py + pz * pz - r * r
        if a2 < 1e-18:
            if c2 > 0.0:
                return 0.0
        else:
            disc = b2 * b2 - a2 * c2
            if disc <= 0.0:
                return 0.0
            q = math.sqrt(disc)
            lo, hi = max(lo, (-b2 - q) / a2), min(hi, (-b2 + q) / a2)
        return max(0.0, hi - lo)
    # box: half thickness r along the normal, half width across the axis in the blade plane
    nx, ny, nz = part[PART_NORMAL], part[PART_NORMAL + 1], part[PART_NORMAL + 2]
    bx, by, bz = ay * nz - az * ny, az * nx - ax * nz, ax * ny - ay * nx
    for axis in range(2):
        ex, ey, ez = (nx, ny, nz) if axis == 0 else (bx, by, bz)
        half = r if axis == 0 else 0.5 * part[PART_WIDTH]
        we = wx * ex + wy * ey + wz * ez
        de = d[0] * ex + d[1] * ey + d[2] * ez
        if abs(de) < 1e-12:
            if abs(we) > half:
                return 0.0
            continue
        t_a = (-half - we) / de
        t_b = (half - we) / de
        if t_a > t_b:
            t_a, t_b = t_b, t_a
        lo, hi = max(lo, t_a), min(hi, t_b)
    return max(0.0, hi - lo)


@njit(cache=True, nogil=True, parallel=True)
def line_integrals(
    mu: npt.NDArray[np.float32],
    spacing_mm: float,
    source: npt.NDArray[np.float64],
    origin: npt.NDArray[np.float64],
    du: npt.NDArray[np.float64],
    dv: npt.NDArray[np.float64],
    step_mm: float,
    parts: npt.NDArray[np.float64],
    out: npt.NDArray[np.float64],
    out_parts: npt.NDArray[np.float64],
) -> None:
    """``out[v, u]``: the attenuation line integral from ``source`` to pixel (u, v);
    ``out_parts[v, u]``: the instrument's share of it.

    Pixel (u, v) sits at ``origin + u·du + v·dv`` (case frame, mm). ``mu`` is float32 1/mm at
    voxel centres ``index · spacing_mm``; outside the grid the ray meets nothing but the parts.
    """
    n_v, n_u = out.shape
    hi = np.empty(3)
    for a in range(3):
        hi[a] = (mu.shape[a] - 1) * spacing_mm
    inv = 1.0 / spacing_mm
    for v in prange(n_v):
        d = np.empty(3)
        for u in range(n_u):
            for a in range(3):
                d[a] = origin[a] + u * du[a] + v * dv[a] - source[a]
            ray_len = math.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
            for a in range(3):
                d[a] /= ray_len
            total = 0.0
            t0, t1 = _box_span(source[0], source[1], source[2], d[0], d[1], d[2], hi)
            t0 = max(t0, 0.0)
            t1 = min(t1, ray_len)
            if t1 > t0:
                n = math.ceil((t1 - t0) / step_mm)
                for s in range(n):
                    t = t0 + (s + 0.5) * step_mm
                    if t > t1:
                        break
                    x = (source[0] + t * d[0]) * inv
                    y = (source[1] + t * d[1]) * inv
                    z = (source[2] + t * d[2]) * inv
                    total += _sample(mu, x, y, z)
                total *= step_mm
            metal = 0.0
            for p in range(parts.shape[0]):
                metal += parts[p, PART_MU] * part_chord(parts[p], source, d, ray_len)
            out[v, u] = total + metal
            out_parts[v, u] = metal
