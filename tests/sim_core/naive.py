"""Slow, obvious numpy twins of the engine kernels in ``sim_core._kernels``.

Each works on the whole grid at once (no bounding boxes, no column spans), so a kernel that
skips a voxel it should have visited differs from its twin. Same arithmetic per voxel, so
memberships and per-voxel values compare exactly; sums compare within a tolerance.
"""

import numpy as np
import numpy.typing as npt

from sim_core.slots import (
    KIND_BLADE,
    KIND_CYLINDER,
    KIND_SPHERE,
    N_OVERLAP,
    N_REMOVED,
    O_BONE_VOXELS,
    O_NERVE_VOXELS,
    O_OCC_MM3,
    O_PROTECTED_VOXELS,
    O_PUSH,
    O_WEIGHTED_MM3,
    P_DAMPING_N_S_PER_MM,
    P_GAIN_N,
    Q_DIR,
    Q_NORMAL,
    Q_TIP,
    Q_VEL,
    R_OUTSIDE_MM3,
    R_PROTECTED_MM3,
    R_TARGET_MM3,
    R_TOTAL_MM3,
    RHO_REF_G_CM3,
    T_CUT_MM,
    T_KIND,
    T_LENGTH_MM,
    T_RADIUS_MM,
    T_REF_RADIUS_MM,
    T_WIDTH_MM,
    TISSUE_MASK,
    ZONE_PROTECTED,
    ZONE_TARGET,
)

Grid = npt.NDArray[np.float64]


def member(
    tool: Grid, pose: Grid, shape: tuple[int, ...], spacing_mm: float, tip: Grid | None = None
) -> tuple[npt.NDArray[np.bool_], Grid, Grid, Grid, Grid]:
    """(inside, behind_mm, push x, y, z) for every voxel centre of a grid."""
    t = pose[Q_TIP : Q_TIP + 3] if tip is None else tip
    d = pose[Q_DIR : Q_DIR + 3]
    n = pose[Q_NORMAL : Q_NORMAL + 3]
    w = (d[1] * n[2] - d[2] * n[1], d[2] * n[0] - d[0] * n[2], d[0] * n[1] - d[1] * n[0])
    i, j, k = np.meshgrid(*(np.arange(m) for m in shape), indexing="ij")
    rx = i * spacing_mm - t[0]
    ry = j * spacing_mm - t[1]
    rz = k * spacing_mm - t[2]
    radius = tool[T_RADIUS_MM]
    length = tool[T_LENGTH_MM]
    behind = -(rx * d[0] + ry * d[1] + rz * d[2])
    if tool[T_KIND] == KIND_SPHERE:
        inside = rx * rx + ry * ry + rz * rz <= radius * radius
        return inside, behind, -rx, -ry, -rz
    if tool[T_KIND] == KIND_CYLINDER:
        ux = rx + behind * d[0]
        uy = ry + behind * d[1]
        uz = rz + behind * d[2]
        inside = (behind >= 0) & (behind <= length) & (ux * ux + uy * uy + uz * uz <= radius**2)
        tt = np.clip(behind, min(radius, length), length)
        return inside, behind, -tt * d[0] - rx, -tt * d[1] - ry, -tt * d[2] - rz
    assert tool[T_KIND] == KIND_BLADE
    b = rx * w[0] + ry * w[1] + rz * w[2]
    c = rx * n[0] + ry * n[1] + rz * n[2]
    half_width = 0.5 * tool[T_WIDTH_MM]
    inside = (behind >= 0) & (behind <= length) & (np.abs(b) <= half_width) & (np.abs(c) <= radius)
    a = np.clip(behind, min(radius, length), length) - behind
    return inside, behind, -a * d[0] - c * n[0], -a * d[1] - c * n[1], -a * d[2] - c * n[2]


def overlap(
    density: npt.NDArray[np.float32],
    label: npt.NDArray[np.uint8],
    spacing_mm: float,
    tool: Grid,
    pose: Grid,
) -> Grid:
    """The ``O_*`` row ``_overlap`` writes."""
    inside, _, px, py, pz = member(tool, pose, density.shape, spacing_mm)
    vox = spacing_mm**3
    rho = density.astype(np.float64)
    bone_left = inside & (rho > 0)
    f = np.where(bone_left, vox * rho / RHO_REF_G_CM3, 0.0)
    tissue = label & TISSUE_MASK
    out = np.zeros(N_OVERLAP)
    out[O_OCC_MM3] = vox * np.count_nonzero(bone_left)
    out[O_WEIGHTED_MM3] = f.sum()
    out[O_PUSH] = (f * px).sum()
    out[O_PUSH + 1] = (f * py).sum()
    out[O_PUSH + 2] = (f * pz).sum()
    out[O_BONE_VOXELS] = np.count_nonzero(inside & ((tissue == 1) | (tissue == 2)))
    out[O_NERVE_VOXELS] = np.count_nonzero(inside & ((tissue == 4) | (tissue == 5)))
    out[O_PROTECTED_VOXELS] = np.count_nonzero(inside & ((label & ZONE_PROTECTED) > 0))
    return out


def occupied(
    density: npt.NDArray[np.float32], spacing_mm: float, tool: Grid, pose: Grid, tip: Grid
) -> float:
    """Volume of voxels with bone left inside the tool with its tip at ``tip`` (no early stop)."""
    inside = member(tool, pose, density.shape, spacing_mm, tip)[0]
    return float(spacing_mm**3 * np.count_nonzero(inside & (density > 0)))


def contact_force(
    density: npt.NDArray[np.float32], spacing_mm: float, tool: Grid, pose: Grid, params: Grid
) -> tuple[float, float, float, float]:
    """Forsslund F = P·(V/R³)·n̂ − D·v, and the occupied volume."""
    label = np.zeros(density.shape, dtype=np.uint8)
    o = overlap(density, label, spacing_mm, tool, pose)
    push = o[O_PUSH : O_PUSH + 3]
    force = np.zeros(3)
    if np.linalg.norm(push) > 0:
        force = params[P_GAIN_N] * o[O_WEIGHTED_MM3] / tool[T_REF_RADIUS_MM] ** 3 * push
        force = force / np.linalg.norm(push)
    if o[O_OCC_MM3] > 0:
        force = force - params[P_DAMPING_N_S_PER_MM] * pose[Q_VEL : Q_VEL + 3]
    return float(force[0]), float(force[1]), float(force[2]), float(o[O_OCC_MM3])


def erode(
    density: npt.NDArray[np.float32],
    density0: npt.NDArray[np.float32],
    label: npt.NDArray[np.uint8],
    spacing_mm: float,
    tool: Grid,
    pose: Grid,
    amount: float,
    removed: Grid,
) -> float:
    """Lower density in the cutting zone by ``amount`` (not below 0); add removed volumes."""
    inside, behind, *_ = member(tool, pose, density.shape, spacing_mm)
    cut = inside & (behind <= tool[T_CUT_MM]) & (density > 0)
    a32 = np.float32(amount)
    new = np.where(density > a32, density - a32, np.float32(0.0)).astype(np.float32)
    old = density.copy()
    density[cut] = new[cut]
    v = np.zeros(density.shape)
    v[cut] = spacing_mm**3 * (old[cut].astype(np.float64) - new[cut]) / density0[cut]
    in_target = (label & ZONE_TARGET) > 0
    delta = np.zeros(N_REMOVED)
    delta[R_TOTAL_MM3] = v.sum()
    delta[R_TARGET_MM3] = v[in_target].sum()
    delta[R_OUTSIDE_MM3] = v[~in_target].sum()
    delta[R_PROTECTED_MM3] = v[(label & ZONE_PROTECTED) > 0].sum()
    removed += delta
    return float(delta[R_TOTAL_MM3])


def occupied_beyond(
    density: npt.NDArray[np.float32],
    spacing_mm: float,
    tool: Grid,
    pose: Grid,
    tip: Grid,
    from_mm: float,
) -> float:
    """Volume of voxels with bone left inside the tool (tip at ``tip``) more than ``from_mm``
    behind the tip: the shaft's share of ``occupied``."""
    inside, behind, *_ = member(tool, pose, density.shape, spacing_mm, tip)
    return float(spacing_mm**3 * np.count_nonzero(inside & (behind > from_mm) & (density > 0)))


def hole_bins(
    entry: Grid, target: Grid, spacing_mm: float, tool: Grid, pose: Grid, n_bins: int
) -> set[int]:
    """The hole-progress bins the cutting zone at ``pose`` spans: sample the zone's depth
    range along the plan finely and bin each sample (the kernel computes the end bins)."""
    axis = target - entry
    length = float(np.linalg.norm(axis))
    axis = axis / length
    r = pose[Q_TIP : Q_TIP + 3] - entry
    depth = float(r @ axis)
    if np.linalg.norm(r - depth * axis) > max(tool[T_RADIUS_MM], spacing_mm):
        return set()
    if tool[T_KIND] == KIND_SPHERE:
        lo, hi = depth - tool[T_RADIUS_MM], depth + tool[T_RADIUS_MM]
    else:
        lo, hi = depth - min(tool[T_CUT_MM], tool[T_LENGTH_MM]), depth
    samples = np.linspace(max(lo, 0.0), min(hi, length), 2001)
    if hi < 0.0 or lo > length:
        return set()
    return {min(int(x / length * n_bins), n_bins - 1) for x in samples}


def blocked_step(
    density: npt.NDArray[np.float32],
    spacing_mm: float,
    tool: Grid,
    pose: Grid,
    o: Grid,
    c: Grid,
    on_mm3: float,
    bisections: int,
    held: int = 0,
) -> Grid:
    """Where the proxy's tip goes from ``o`` toward a candidate ``c`` that is not free: halve
    the straight step ``bisections`` times, then, for tools with an axis, slide the rest of
    the step's component along the axis and halve that the same way. A tip is free when the
    tool there holds at most ``on_mm3`` of bone, or when its cutting zone does and its shaft
    holds no more than ``held`` voxels of bone (``held`` > 0: what it held at ``o``)."""
    vox = spacing_mm**3

    def free(t: Grid) -> bool:
        inside, behind, *_ = member(tool, pose, density.shape, spacing_mm, t)
        bone = inside & (density > 0)
        shaft = int(np.count_nonzero(bone & (behind > tool[T_CUT_MM])))
        total = int(np.count_nonzero(bone))
        # (the kernel sums voxel volumes one by one and compares the sum with the limit)
        if total * vox <= on_mm3:
            return True
        return held > 0 and shaft <= held and (total - shaft) * vox <= on_mm3

    def bisect(a: Grid, b: Grid) -> Grid:
        lo, hi = 0.0, 1.0
        for _ in range(bisections):
            mid = 0.5 * (lo + hi)
            if free(a + mid * (b - a)):
                lo = mid
            else:
                hi = mid
        return a + lo * (b - a)

    t = bisect(o, c)
    if tool[T_KIND] == KIND_SPHERE:
        return t
    d = pose[Q_DIR : Q_DIR + 3]
    rest = c - t
    along = float(rest @ d)
    if np.linalg.norm(rest - along * d) <= 1e-9:
        return t
    a = t + along * d
    return a if free(a) else bisect(t, a)
