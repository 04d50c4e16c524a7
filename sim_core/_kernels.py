"""numba kernels of the engine: tool–voxel overlap, contact force, erosion, one tick.

Every kernel is ``nopython``, ``nogil`` and cached, reads C-contiguous arrays of stated dtypes
and allocates nothing. Array layouts are named in ``sim_core.slots``. Each grid kernel has a
plain numpy twin in ``tests/sim_core/naive.py``; each ``*_list`` kernel must give its grid
kernel's result bit for bit (``tests/sim_core/test_voxel_list.py``).

Tool geometry (case frame, mm). ``d`` is the unit axis from handle to tip, ``n`` the blade
normal, ``w = d × n``; a voxel centre ``x = index * spacing`` relative to the tip is ``r``, and
``behind = -(r·d)`` is how far behind the tip it lies.

- sphere (burrs): inside when ``|r| ≤ radius``; the tip is the sphere's centre.
- cylinder (cylindrical burrs, drills, wires, awls, screws): ``0 ≤ behind ≤ length`` and the
  distance to the axis ``≤ radius``.
- blade (saws): ``0 ≤ behind ≤ length``, ``|r·w| ≤ width/2``, ``|r·n| ≤ radius`` (half
  thickness).

A voxel inside the tool pushes the tool with the vector from the voxel to the tool's core (the
centre for a sphere, the axis segment from one radius behind the tip for a cylinder, the blade's
mid-plane behind its edge for a blade); the density-weighted sum of those vectors is the contact
normal (Morris et al. 2006; Forsslund's ``AHapticDrillForce`` uses the same mean normal).
"""

import math
from typing import Any

import numpy as np
from numba import njit, types
from numba.core.types import float64 as f8
from numba.core.types import void

from sim_core.slots import (
    BUTTON_POWER,
    CHUNK,
    DT_S,
    I_AXIS,
    I_BUTTONS,
    I_POS,
    I_QUAT,
    I_SPEED,
    I_VEL,
    KIND_BLADE,
    KIND_CYLINDER,
    KIND_SPHERE,
    N_HANDOFF,
    N_HOLE_BINS,
    N_NEXT,
    N_OVERLAP,
    N_POSE,
    N_REMOVED,
    N_TOOL,
    N_WORK_MIN,
    N_WORK_ROWS,
    NEXT_BONE,
    NEXT_DIR,
    NEXT_GROWTH_MM,
    NEXT_LABELLED,
    NEXT_NORMAL,
    NEXT_REMOVED,
    NEXT_RNG,
    NEXT_TICK,
    NEXT_TIP,
    NEXT_VALID,
    O_BONE_VOXELS,
    O_NERVE_VOXELS,
    O_OCC_MM3,
    O_PROTECTED_VOXELS,
    O_PUSH,
    O_WEIGHTED_MM3,
    P_DAMPING_N_S_PER_MM,
    P_DISPLAY_SCALE,
    P_ENGAGE_GAP_TICKS,
    P_FORCE_LIMIT_N,
    P_GAIN_N,
    P_GRIP_MM,
    P_LATERAL_LIMIT_N,
    P_MAX_FORCE_N,
    P_MAX_TORQUE_N_MM,
    P_PLAN_ENTRY,
    P_PLAN_TARGET,
    P_PLUNGE_MM,
    P_PROXY_K_N_PER_MM,
    P_PROXY_OFF,
    P_PROXY_ON,
    P_PROXY_RELEASE_MM,
    P_ROT_SLACK_MM3,
    P_SPACING_MM,
    P_SPRING_SAT_N,
    P_TEXTURE_N,
    P_THRUST_REF_N,
    P_TORQUE_LIMIT_N_MM,
    Q_DIR,
    Q_NORMAL,
    Q_TIP,
    Q_VEL,
    R_OUTSIDE_MM3,
    R_PROTECTED_MM3,
    R_TARGET_MM3,
    R_TOTAL_MM3,
    RHO_REF_G_CM3,
    S_ABOVE_LIMIT_TICKS,
    S_ANGLE_GAP_RAD,
    S_BREACH_EVENTS,
    S_BREACH_TICKS,
    S_CAND_POSE,
    S_CONTACT_TICKS,
    S_DEEPEST_DIR,
    S_DEEPEST_TIP,
    S_DEPTH_MAX_MM,
    S_DEVICE,
    S_DEVICE_DIR,
    S_DEVICE_NORMAL,
    S_DIR,
    S_DISPLAY,
    S_DISPLAY_TORQUE,
    S_ENGAGED,
    S_EXIT,
    S_EXIT_SPEED_MM_S,
    S_EXITED,
    S_FORCE,
    S_FORCE_SUM_N,
    S_HOLE,
    S_HOLE_DONE_BINS,
    S_INS_DEEPEST_DIR,
    S_INS_DEEPEST_TIP,
    S_INS_DEPTH_MAX_MM,
    S_INSERTIONS,
    S_LAST_ENGAGED_TICK,
    S_LATERAL_ABOVE_TICKS,
    S_LATERAL_N,
    S_LATERAL_PEAK_N,
    S_NERVE_EVENTS,
    S_NERVE_TICKS,
    S_OVERLAP,
    S_PEAK_FORCE_N,
    S_PLUNGE_MAX_MM,
    S_PLUNGE_NOW_MM,
    S_PLUNGE_SPEED_MAX_MM_S,
    S_PLUNGES,
    S_POSE,
    S_POWER_OFF_PEAK_N,
    S_POWER_OFF_TICKS,
    S_POWERED_TICKS,
    S_PREV_TIP,
    S_PROTECTED_EVENTS,
    S_PROTECTED_TICKS,
    S_PROXY_ON,
    S_PROXY_TICKS,
    S_REMOVED,
    S_RNG,
    S_TICK,
    S_TIP_IN_BONE,
    S_TIP_SPEED_MM_S,
    S_TIP_WAS_IN_BONE,
    S_TOOL,
    S_TOOL_NORMAL,
    S_TORQUE,
    S_TORQUE_ABOVE_TICKS,
    S_TORQUE_PEAK_N_MM,
    SPEED_TAU_S,
    T_CUT_MM,
    T_EROSION,
    T_KIND,
    T_LENGTH_MM,
    T_POWERED,
    T_RADIUS_MM,
    T_REF_RADIUS_MM,
    T_WIDTH_MM,
    TISSUE_MASK,
    W_HANDOFF,
    W_INDEX,
    W_LABEL,
    W_NEXT,
    W_RHO,
    W_TOOL,
    W_X,
    W_Y,
    W_Z,
    ZONE_PROTECTED,
    ZONE_TARGET,
)

TISSUE_CORTEX = 1
TISSUE_CANCELLOUS = 2
TISSUE_NERVE = 4
TISSUE_VESSEL = 5

EPS_MM = 1e-9  # column spans are widened by this (and a voxel) so rounding never drops one
MAX_STEP_VOXELS = 1.0  # the tool moves at most a voxel a tick (0.5 m/s at 0.5 mm, 1 kHz)
BISECTIONS = 4  # proxy search steps: 1/16 of a step
SLIDE_MIN_MM = 1e-9  # a blocked step with less than this across the tool's axis does not slide
BLOCK = 256  # list entries counted between checks for an early stop

# argument types: model arrays are read-only (a writable array is accepted where these are)
F4_GRID = types.Array(types.float32, 3, "C")
F4_GRID_RO = types.Array(types.float32, 3, "C", readonly=True)
U1_GRID = types.Array(types.uint8, 3, "C")
U1_GRID_RO = types.Array(types.uint8, 3, "C", readonly=True)
I4_COLUMNS_RO = types.Array(types.int32, 3, "C", readonly=True)  # CaseModel.columns
F8_ROW = types.Array(types.float64, 1, "C")
F8_ROW_RO = types.Array(types.float64, 1, "C", readonly=True)
F8_ROWS = types.Array(types.float64, 2, "C")
F8_ROWS_RO = types.Array(types.float64, 2, "C", readonly=True)
_UNI_TUPLE: Any = types.UniTuple
F8_X4 = _UNI_TUPLE(f8, 4)  # (fx, fy, fz, occupied_mm3)


@njit(cache=True, nogil=True, inline="always")
def _is_bone(tissue):  # type: ignore[no-untyped-def]
    return tissue in (TISSUE_CORTEX, TISSUE_CANCELLOUS)


@njit(cache=True, nogil=True, inline="always")
def _is_nerve(tissue):  # type: ignore[no-untyped-def]
    # nerves and vessels: the structures a tool must not touch
    return tissue in (TISSUE_NERVE, TISSUE_VESSEL)


@njit(cache=True, nogil=True, inline="always")
def _axes(pose):  # type: ignore[no-untyped-def]
    # (d, n, w): tool axis, blade normal, and the in-plane direction across the blade
    d = (pose[Q_DIR], pose[Q_DIR + 1], pose[Q_DIR + 2])
    n = (pose[Q_NORMAL], pose[Q_NORMAL + 1], pose[Q_NORMAL + 2])
    w = (d[1] * n[2] - d[2] * n[1], d[2] * n[0] - d[0] * n[2], d[0] * n[1] - d[1] * n[0])
    return d, n, w


@njit(cache=True, nogil=True, inline="always")
def _member(tool, d, n, w, rx, ry, rz):  # type: ignore[no-untyped-def]
    # (inside, behind_mm, push vector) of a point at r = (rx, ry, rz) from the tip
    kind = tool[T_KIND]
    radius = tool[T_RADIUS_MM]
    length = tool[T_LENGTH_MM]
    behind = -(rx * d[0] + ry * d[1] + rz * d[2])
    if kind == KIND_SPHERE:
        inside = rx * rx + ry * ry + rz * rz <= radius * radius
        return inside, behind, -rx, -ry, -rz
    if kind == KIND_CYLINDER:
        ux = rx + behind * d[0]
        uy = ry + behind * d[1]
        uz = rz + behind * d[2]
        inside = 0.0 <= behind <= length and ux * ux + uy * uy + uz * uz <= radius * radius
        t = min(max(behind, min(radius, length)), length)
        return inside, behind, -t * d[0] - rx, -t * d[1] - ry, -t * d[2] - rz
    # blade
    b = rx * w[0] + ry * w[1] + rz * w[2]
    c = rx * n[0] + ry * n[1] + rz * n[2]
    half_width = 0.5 * tool[T_WIDTH_MM]
    inside = 0.0 <= behind <= length and abs(b) <= half_width and abs(c) <= radius
    a = min(max(behind, min(radius, length)), length) - behind
    return inside, behind, -a * d[0] - c * n[0], -a * d[1] - c * n[1], -a * d[2] - c * n[2]


@njit(cache=True, nogil=True)
def _index_range(lo, hi, s, size):  # type: ignore[no-untyped-def]
    # voxel indices whose centres may lie in [lo, hi] mm, one voxel of margin, clipped
    i0 = max(math.floor(lo / s) - 1, 0)
    i1 = min(math.ceil(hi / s) + 2, size)
    return i0, max(i1, i0)


@njit(cache=True, nogil=True)
def _bounds(tool, pose, tip, s, shape, length):  # type: ignore[no-untyped-def]
    # (i0, i1, j0, j1, k0, k1): a voxel box holding the tool's first `length` mm behind the tip
    # at `tip`: the segment tip .. tip - length·d widened per axis by the cross-section's
    # extent along that axis (a disc of radius r normal to d reaches r·sqrt(1 - d_a²); a blade
    # reaches |w_a|·half width + |n_a|·thickness/2)
    d, n, w = _axes(pose)
    kind = tool[T_KIND]
    radius = tool[T_RADIUS_MM]
    if kind == KIND_SPHERE:
        length = 0.0
    ex = radius
    ey = radius
    ez = radius
    if kind == KIND_CYLINDER:
        ex = radius * math.sqrt(max(1.0 - d[0] * d[0], 0.0))
        ey = radius * math.sqrt(max(1.0 - d[1] * d[1], 0.0))
        ez = radius * math.sqrt(max(1.0 - d[2] * d[2], 0.0))
    elif kind == KIND_BLADE:
        half_width = 0.5 * tool[T_WIDTH_MM]
        ex = abs(w[0]) * half_width + abs(n[0]) * radius
        ey = abs(w[1]) * half_width + abs(n[1]) * radius
        ez = abs(w[2]) * half_width + abs(n[2]) * radius
    i0, i1 = _axis_range(tip[0], tip[0] - length * d[0], ex, s, shape[0])
    j0, j1 = _axis_range(tip[1], tip[1] - length * d[1], ey, s, shape[1])
    k0, k1 = _axis_range(tip[2], tip[2] - length * d[2], ez, s, shape[2])
    return i0, i1, j0, j1, k0, k1


@njit(cache=True, nogil=True)
def _axis_range(a, b, spread, s, size):  # type: ignore[no-untyped-def]
    # voxel index range along one axis covering the segment a..b widened by `spread` mm
    return _index_range(min(a, b) - spread, max(a, b) + spread, s, size)


@njit(cache=True, nogil=True, inline="always")
def _slab(lo, hi, c, q, z_lo, z_hi):  # type: ignore[no-untyped-def]
    # narrow [z_lo, z_hi] to the z where lo <= q + c*z <= hi (c: the slab normal's z part)
    if abs(c) < 1e-12:
        if q < lo - EPS_MM or q > hi + EPS_MM:
            return 1.0, -1.0
        return z_lo, z_hi
    a = (lo - q) / c
    b = (hi - q) / c
    return max(z_lo, min(a, b)), min(z_hi, max(a, b))


@njit(cache=True, nogil=True, inline="always")
def _k_span(tool, pose, tip, x, y, s, k0, k1, length):  # type: ignore[no-untyped-def]
    # the k range on the voxel column (x, y) that can hold voxels of the tool's first
    # `length` mm behind the tip, a voxel of margin
    kind = tool[T_KIND]
    if kind == KIND_SPHERE:
        # within the radius of the centre
        rx = x - tip[0]
        ry = y - tip[1]
        reach = tool[T_RADIUS_MM]
        h2 = reach * reach - rx * rx - ry * ry
        if h2 < -EPS_MM:
            return k0, k0
        h = math.sqrt(max(h2, 0.0))
        ka = max(k0, math.floor((tip[2] - h) / s) - 1)
        kb = min(k1, math.ceil((tip[2] + h) / s) + 2)
        return ka, max(ka, kb)
    d, n, w = _axes(pose)
    radius = tool[T_RADIUS_MM]
    rx = x - tip[0]
    ry = y - tip[1]
    z_lo, z_hi = -1e300, 1e300
    # along the axis: -length <= r·d <= 0, widened by a voxel
    z_lo, z_hi = _slab(-length, 0.0, d[2], rx * d[0] + ry * d[1], z_lo, z_hi)
    if kind == KIND_CYLINDER:
        # within radius + s of the axis line: a quadratic in z
        q = rx * d[0] + ry * d[1]
        a2 = 1.0 - d[2] * d[2]
        b1 = -2.0 * q * d[2]
        c0 = rx * rx + ry * ry - q * q - radius * radius
        if a2 < 1e-12:
            if c0 > EPS_MM:
                return k0, k0
        else:
            disc = b1 * b1 - 4.0 * a2 * c0
            if disc < -EPS_MM:
                return k0, k0
            root = math.sqrt(max(disc, 0.0))
            z_lo = max(z_lo, (-b1 - root) / (2.0 * a2))
            z_hi = min(z_hi, (-b1 + root) / (2.0 * a2))
    else:
        half_width = 0.5 * tool[T_WIDTH_MM]
        z_lo, z_hi = _slab(-half_width, half_width, w[2], rx * w[0] + ry * w[1], z_lo, z_hi)
        z_lo, z_hi = _slab(-radius, radius, n[2], rx * n[0] + ry * n[1], z_lo, z_hi)
    if z_lo > z_hi:
        return k0, k0
    ka = max(k0, math.floor((tip[2] + z_lo) / s) - 1)
    kb = min(k1, math.ceil((tip[2] + z_hi) / s) + 2)
    return ka, max(ka, kb)


@njit(cache=True, nogil=True)
def _j_range(tool, pose, tip, x, s, j0, j1, length):  # type: ignore[no-untyped-def]
    # the j range of the row of columns at x that can hold voxels of a cylinder's first
    # `length` mm behind the tip: a column _k_span finds empty is skipped without asking it.
    # Any point of the cylinder lies within its radius of the axis segment, so its column lies
    # where the segment's points within radius (+ a voxel) of x lie, widened by that. Other
    # kinds: the whole j0..j1
    if tool[T_KIND] != KIND_CYLINDER:
        return j0, j1
    d = (pose[Q_DIR], pose[Q_DIR + 1], pose[Q_DIR + 2])
    reach = tool[T_RADIUS_MM] + s
    # the axis point at β behind the tip is tip - β·d, β in [0, length]
    b_lo = 0.0
    b_hi = length
    if abs(d[0]) < 1e-12:
        if abs(tip[0] - x) > reach:
            return j0, j0
    else:
        a = (tip[0] - x - reach) / d[0]
        b = (tip[0] - x + reach) / d[0]
        b_lo = max(b_lo, min(a, b))
        b_hi = min(b_hi, max(a, b))
        if b_lo > b_hi:
            return j0, j0
    y_a = tip[1] - b_lo * d[1]
    y_b = tip[1] - b_hi * d[1]
    ja = max(j0, math.floor((min(y_a, y_b) - reach) / s) - 1)
    jb = min(j1, math.ceil((max(y_a, y_b) + reach) / s) + 2)
    return ja, max(ja, jb)


@njit(cache=True, nogil=True, inline="always")
def _overlap_voxel(acc, lab, rho, vox, ux, uy, uz):  # type: ignore[no-untyped-def]
    # one voxel inside the tool added to the overlap sums ``acc`` = (occupied, weighted, push
    # x, y, z, bone, nerve, protected voxels); returns the new sums
    occ, weighted, px, py, pz, bone, nerve, protected = acc
    tissue = lab & TISSUE_MASK
    if _is_bone(tissue):
        bone += 1.0
    if _is_nerve(tissue):
        nerve += 1.0
    if lab & ZONE_PROTECTED:
        protected += 1.0
    if rho > 0.0:
        occ += vox
        f = vox * rho / RHO_REF_G_CM3
        weighted += f
        px += f * ux
        py += f * uy
        pz += f * uz
    return occ, weighted, px, py, pz, bone, nerve, protected


@njit(cache=True, nogil=True, inline="always")
def _store_overlap(out, acc):  # type: ignore[no-untyped-def]
    out[O_OCC_MM3] = acc[0]
    out[O_WEIGHTED_MM3] = acc[1]
    out[O_PUSH] = acc[2]
    out[O_PUSH + 1] = acc[3]
    out[O_PUSH + 2] = acc[4]
    out[O_BONE_VOXELS] = acc[5]
    out[O_NERVE_VOXELS] = acc[6]
    out[O_PROTECTED_VOXELS] = acc[7]


@njit(cache=True, nogil=True, inline="always")
def _erode_voxel(acc, flat, flat0, index, lab, a32, vox):  # type: ignore[no-untyped-def]
    # take a32 g/cm³ off voxel ``index`` of the flat grid (not below 0) and add the intact
    # volume that was to ``acc`` = (total, target, outside, protected) mm³; returns the sums
    total, target, outside, protected = acc
    rho = flat[index]
    new = rho - a32 if rho > a32 else np.float32(0.0)
    flat[index] = new
    v = vox * (np.float64(rho) - np.float64(new)) / np.float64(flat0[index])
    total += v
    if lab & ZONE_TARGET:
        target += v
    else:
        outside += v
    if lab & ZONE_PROTECTED:
        protected += v
    return total, target, outside, protected


@njit(cache=True, nogil=True, inline="always")
def _store_removed(removed, acc):  # type: ignore[no-untyped-def]
    removed[R_TOTAL_MM3] += acc[0]
    removed[R_TARGET_MM3] += acc[1]
    removed[R_OUTSIDE_MM3] += acc[2]
    removed[R_PROTECTED_MM3] += acc[3]
    return acc[0]


@njit(void(F4_GRID_RO, U1_GRID_RO, f8, F8_ROW_RO, F8_ROW_RO, F8_ROW), cache=True, nogil=True)
def _overlap(density, label, spacing_mm, tool, pose, out):  # type: ignore[no-untyped-def]
    """Overlap of the tool at ``pose`` with the voxels; writes ``out`` (``O_*`` slots).

    density: (n0, n1, n2) float32 g/cm³, bone left (0 = none); label: same shape uint8,
    tissue | zone bits; spacing_mm: voxel edge; tool: ``T_*`` row; pose: ``Q_*`` row;
    out: float64[N_OVERLAP], overwritten (volumes in mm³, push in mm·mm³, counts).
    """
    s = spacing_mm
    vox = s * s * s
    tip = (pose[Q_TIP], pose[Q_TIP + 1], pose[Q_TIP + 2])
    d, n, w = _axes(pose)
    i0, i1, j0, j1, k0, k1 = _bounds(tool, pose, tip, s, density.shape, tool[T_LENGTH_MM])
    acc = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    for i in range(i0, i1):
        x = i * s
        for j in range(j0, j1):
            y = j * s
            ka, kb = _k_span(tool, pose, tip, x, y, s, k0, k1, tool[T_LENGTH_MM])
            for k in range(ka, kb):
                # air with no label adds nothing: skip it before the shape test
                lab = label[i, j, k]
                rho = np.float64(density[i, j, k])
                if lab == 0 and rho <= 0.0:
                    continue
                inside, _, ux, uy, uz = _member(
                    tool, d, n, w, x - tip[0], y - tip[1], k * s - tip[2]
                )
                if inside:
                    acc = _overlap_voxel(acc, lab, rho, vox, ux, uy, uz)
    _store_overlap(out, acc)


@njit(cache=True, nogil=True)
def _occupied_in(density, columns, spacing_mm, tool, pose, tx, ty, tz, limit_mm3):  # type: ignore[no-untyped-def]
    # _occupied, skipping what lies outside each column's occupied range (``columns``, the
    # model's broad phase; None: no skipping): the same voxels counted in the same order
    s = spacing_mm
    vox = s * s * s
    tip = (tx, ty, tz)
    d, n, w = _axes(pose)
    i0, i1, j0, j1, k0, k1 = _bounds(tool, pose, tip, s, density.shape, tool[T_LENGTH_MM])
    occ = np.float64(0.0)
    for i in range(i0, i1):
        x = i * s
        ja, jb = _j_range(tool, pose, tip, x, s, j0, j1, tool[T_LENGTH_MM])
        for j in range(ja, jb):
            y = j * s
            lo = k0
            hi = k1
            if columns is not None:
                lo = max(lo, np.int64(columns[i, j, 0]))
                hi = min(hi, np.int64(columns[i, j, 1]))
                if lo >= hi:
                    continue
            ka, kb = _k_span(tool, pose, tip, x, y, s, lo, hi, tool[T_LENGTH_MM])
            for k in range(ka, kb):
                if density[i, j, k] <= 0.0:
                    continue
                inside, _, _, _, _ = _member(tool, d, n, w, x - tx, y - ty, k * s - tz)
                if inside:
                    occ += vox
                    if occ > limit_mm3:
                        return occ
    return occ


@njit(f8(F4_GRID_RO, f8, F8_ROW_RO, F8_ROW_RO, f8, f8, f8, f8), cache=True, nogil=True)
def _occupied(density, spacing_mm, tool, pose, tx, ty, tz, limit_mm3):  # type: ignore[no-untyped-def]
    """Volume (mm³) of voxels with bone left inside the tool with its tip at (tx, ty, tz).

    Orientation comes from ``pose``; its tip is ignored. Used by the proxy search, which only
    asks "above ``limit_mm3``?": the count stops as soon as it passes the limit (pass ``inf``
    for the whole volume).
    """
    return _occupied_in(density, None, spacing_mm, tool, pose, tx, ty, tz, limit_mm3)


@njit(f8(F4_GRID_RO, f8, F8_ROW_RO, F8_ROW_RO, f8, f8, f8, f8), cache=True, nogil=True)
def _occupied_beyond(density, spacing_mm, tool, pose, tx, ty, tz, from_mm):  # type: ignore[no-untyped-def]
    """Volume (mm³) of voxels with bone left inside the tool, tip at (tx, ty, tz), lying more
    than ``from_mm`` behind the tip: the part of the tool that does not cut (the shaft).

    Orientation from ``pose`` (its tip is ignored). The orientation proxy asks it whether a
    turn would push the shaft into bone.
    """
    s = spacing_mm
    vox = s * s * s
    tip = (tx, ty, tz)
    d, n, w = _axes(pose)
    i0, i1, j0, j1, k0, k1 = _bounds(tool, pose, tip, s, density.shape, tool[T_LENGTH_MM])
    occ = np.float64(0.0)
    for i in range(i0, i1):
        x = i * s
        for j in range(j0, j1):
            y = j * s
            ka, kb = _k_span(tool, pose, tip, x, y, s, k0, k1, tool[T_LENGTH_MM])
            for k in range(ka, kb):
                if density[i, j, k] <= 0.0:
                    continue
                inside, behind, _, _, _ = _member(tool, d, n, w, x - tx, y - ty, k * s - tz)
                if inside and behind > from_mm:
                    occ += vox
    return occ


@njit(cache=True, nogil=True)
def _overlap_force(params, tool, weighted_mm3, occ_mm3, push, vel):  # type: ignore[no-untyped-def]
    # Forsslund: F = P·(V/R³)·n̂ − D·v while in contact (n̂ the mean push direction)
    radius = tool[T_REF_RADIUS_MM]
    fx = 0.0
    fy = 0.0
    fz = 0.0
    norm = math.sqrt(push[0] * push[0] + push[1] * push[1] + push[2] * push[2])
    if norm > 0.0:
        g = params[P_GAIN_N] * weighted_mm3 / (radius * radius * radius) / norm
        fx = g * push[0]
        fy = g * push[1]
        fz = g * push[2]
    if occ_mm3 > 0.0:
        damping = params[P_DAMPING_N_S_PER_MM]
        fx -= damping * vel[0]
        fy -= damping * vel[1]
        fz -= damping * vel[2]
    return fx, fy, fz


@njit(F8_X4(F4_GRID_RO, f8, F8_ROW_RO, F8_ROW_RO, F8_ROW_RO), cache=True, nogil=True)
def _contact_force(density, spacing_mm, tool, pose, params):  # type: ignore[no-untyped-def]
    """Forsslund overlap force on a tool at ``pose``; pure (reads only, allocates nothing).

    density: (n0, n1, n2) float32 g/cm³; spacing_mm: voxel edge; tool: ``T_*`` row (float64);
    pose: ``Q_*`` row (tip, axis, blade normal, device velocity mm/s); params: ``P_*`` row.
    Returns (fx, fy, fz, occupied_mm3): the force on the tool in N, case frame, not clamped
    and without the proxy spring, and the volume of bone inside the tool.
    """
    s = spacing_mm
    vox = s * s * s
    tip = (pose[Q_TIP], pose[Q_TIP + 1], pose[Q_TIP + 2])
    d, n, w = _axes(pose)
    i0, i1, j0, j1, k0, k1 = _bounds(tool, pose, tip, s, density.shape, tool[T_LENGTH_MM])
    acc = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    for i in range(i0, i1):
        x = i * s
        for j in range(j0, j1):
            y = j * s
            ka, kb = _k_span(tool, pose, tip, x, y, s, k0, k1, tool[T_LENGTH_MM])
            for k in range(ka, kb):
                rho = np.float64(density[i, j, k])
                if rho <= 0.0:
                    continue
                inside, _, ux, uy, uz = _member(
                    tool, d, n, w, x - tip[0], y - tip[1], k * s - tip[2]
                )
                if inside:
                    # no labels here: only the bone sums move
                    acc = _overlap_voxel(acc, 0, rho, vox, ux, uy, uz)
    occ = acc[0]
    vel = (pose[Q_VEL], pose[Q_VEL + 1], pose[Q_VEL + 2])
    fx, fy, fz = _overlap_force(params, tool, acc[1], occ, (acc[2], acc[3], acc[4]), vel)
    return fx, fy, fz, occ


@njit(
    f8(F4_GRID, F4_GRID_RO, U1_GRID_RO, f8, F8_ROW_RO, F8_ROW_RO, f8, F8_ROW),
    cache=True,
    nogil=True,
)
def _erode(density, density0, label, spacing_mm, tool, pose, amount, removed):  # type: ignore[no-untyped-def]
    """Lower the density of voxels in the tool's cutting zone by ``amount`` g/cm³ (not below 0).

    density: (n0, n1, n2) float32, written in place; density0: the same at the start (> 0 where
    density > 0); label: tissue | zone bits; tool/pose: ``T_*``/``Q_*`` rows; amount: g/cm³ this
    tick; removed: float64[N_REMOVED], intact-bone volume removed (mm³) added per ``R_*`` bucket.
    Returns the volume removed this call (mm³).
    """
    s = spacing_mm
    vox = s * s * s
    tip = (pose[Q_TIP], pose[Q_TIP + 1], pose[Q_TIP + 2])
    d, n, w = _axes(pose)
    cut = tool[T_CUT_MM]
    a32 = np.float32(amount)
    flat = density.reshape(-1)
    flat0 = density0.reshape(-1)
    n1 = density.shape[1]
    n2 = density.shape[2]
    # only the cutting zone (the first `cut` mm behind the tip) is visited
    reach = min(tool[T_LENGTH_MM], cut)
    i0, i1, j0, j1, k0, k1 = _bounds(tool, pose, tip, s, density.shape, reach)
    acc = (0.0, 0.0, 0.0, 0.0)
    for i in range(i0, i1):
        x = i * s
        for j in range(j0, j1):
            y = j * s
            ka, kb = _k_span(tool, pose, tip, x, y, s, k0, k1, reach)
            for k in range(ka, kb):
                if density[i, j, k] <= 0.0:
                    continue
                inside, behind, _, _, _ = _member(
                    tool, d, n, w, x - tip[0], y - tip[1], k * s - tip[2]
                )
                if inside and behind <= cut:
                    index = (i * n1 + j) * n2 + k
                    acc = _erode_voxel(acc, flat, flat0, index, label[i, j, k], a32, vox)
    return _store_removed(removed, acc)


@njit(cache=True, nogil=True)
def _gather(density, label, s, tool, pose, o, c, work):  # type: ignore[no-untyped-def]
    # the voxels the tool may cover with its tip on o..c (see _gather_grown)
    return _gather_grown(density, label, s, tool, pose, o, c, 0.0, work)


@njit(cache=True, nogil=True)
def _gather_grown(density, label, s, tool, pose, o, c, extra, work):  # type: ignore[no-untyped-def]
    # as _gather, the tool grown ``extra`` mm more: room for the proxy's turn this tick (a
    # turn by a about the tip moves no point of the tool more than a times its reach)
    return _gather_in(density, label, None, s, tool, pose, o, c, extra, work)


@njit(cache=True, nogil=True)
def _gather_in(density, label, columns, s, tool, pose, o, c, extra, work):  # type: ignore[no-untyped-def]
    # _gather_grown with the model's broad phase: each column is scanned only over its
    # occupied range (``columns``; None: the whole span). Outside it every voxel is air with
    # no label, which the scan skips anyway, so the list is the same, in the same order
    # List in ``work`` every voxel holding bone or a label that the tool could cover with its
    # tip anywhere on the segment o..c (orientation from ``pose``): the tool grown by
    # g = |c - o| in every direction (radius, width and both ends) holds the tool at any tip
    # within g of c. Voxels with bone go to the front in i, j, k order, label-only ones to the
    # back. Returns (bone, labelled): the two counts, or (-1, 0) when they would not fit (the
    # caller then scans the grid). Callers filter the list with the tool's shape test: the
    # list is a superset visited in the grid scan's order, so sums come out bit for bit the
    # same as the scan's.
    if work.shape[0] < N_WORK_ROWS or work.shape[1] < N_WORK_MIN:
        return -1, 0  # no room even for the grown tool and the handoff
    d, _, _ = _axes(pose)
    g = math.sqrt((c[0] - o[0]) ** 2 + (c[1] - o[1]) ** 2 + (c[2] - o[2]) ** 2) + extra + EPS_MM
    grown = work[W_TOOL, :N_TOOL]
    for a in range(N_TOOL):
        grown[a] = tool[a]
    grown[T_RADIUS_MM] = tool[T_RADIUS_MM] + g
    grown[T_WIDTH_MM] = tool[T_WIDTH_MM] + 2.0 * g
    length = tool[T_LENGTH_MM] + 2.0 * g
    tip = (c[0], c[1], c[2])
    if tool[T_KIND] != KIND_SPHERE:
        tip = (c[0] + g * d[0], c[1] + g * d[1], c[2] + g * d[2])
    i0, i1, j0, j1, k0, k1 = _bounds(grown, pose, tip, s, density.shape, length)
    n1 = density.shape[1]
    n2 = density.shape[2]
    capacity = work.shape[1]
    front = 0
    back = capacity
    for i in range(i0, i1):
        x = i * s
        ja, jb = _j_range(grown, pose, tip, x, s, j0, j1, length)
        for j in range(ja, jb):
            y = j * s
            lo = k0
            hi = k1
            if columns is not None:
                lo = max(lo, np.int64(columns[i, j, 0]))
                hi = min(hi, np.int64(columns[i, j, 1]))
                if lo >= hi:
                    continue  # nothing but air with no label in this column's span
            ka, kb = _k_span(grown, pose, tip, x, y, s, lo, hi, length)
            for k in range(ka, kb):
                lab = label[i, j, k]
                rho = np.float64(density[i, j, k])
                if lab == 0 and rho <= 0.0:
                    continue
                if front == back:
                    return -1, 0
                if rho > 0.0:
                    e = front
                    front += 1
                else:
                    back -= 1
                    e = back
                work[W_X, e] = x
                work[W_Y, e] = y
                work[W_Z, e] = k * s
                work[W_RHO, e] = rho
                work[W_LABEL, e] = lab
                work[W_INDEX, e] = (i * n1 + j) * n2 + k
    return front, capacity - back


@njit(cache=True, nogil=True)
def _count_inside(work, count, tool, pose, tx, ty, tz):  # type: ignore[no-untyped-def]
    # how many of the first ``count`` listed (bone) voxels lie inside the tool at tip t
    return _count_in(work, count, tool, pose, tx, ty, tz, -math.inf, count + 1)


@njit(cache=True, nogil=True)
def _count_in(work, count, tool, pose, tx, ty, tz, beyond, stop_at):  # type: ignore[no-untyped-def]
    # how many of the first ``count`` listed (bone) voxels lie inside the tool at tip t and
    # more than ``beyond`` mm behind the tip; once ``stop_at`` are found the rest of the
    # list is not looked at (what is returned is then >= stop_at). Blocks of BLOCK entries
    # keep the inner loops branch-free (vectorised)
    d, n, w = _axes(pose)
    xs = work[W_X]
    ys = work[W_Y]
    zs = work[W_Z]
    kind = tool[T_KIND]
    radius = tool[T_RADIUS_MM]
    r2 = radius * radius
    length = tool[T_LENGTH_MM]
    half_width = 0.5 * tool[T_WIDTH_MM]
    lo = max(0.0, beyond)
    inside = 0
    for start in range(0, count, BLOCK):
        end = min(start + BLOCK, count)
        if kind == KIND_SPHERE:
            for e in range(start, end):
                rx = xs[e] - tx
                ry = ys[e] - ty
                rz = zs[e] - tz
                behind = -(rx * d[0] + ry * d[1] + rz * d[2])
                inside += (rx * rx + ry * ry + rz * rz <= r2) & (behind > beyond)
        elif kind == KIND_CYLINDER:
            for e in range(start, end):
                rx = xs[e] - tx
                ry = ys[e] - ty
                rz = zs[e] - tz
                behind = -(rx * d[0] + ry * d[1] + rz * d[2])
                ux = rx + behind * d[0]
                uy = ry + behind * d[1]
                uz = rz + behind * d[2]
                inside += (
                    (behind >= 0.0)
                    & (behind > beyond)
                    & (behind <= length)
                    & (ux * ux + uy * uy + uz * uz <= r2)
                )
        else:
            for e in range(start, end):
                rx = xs[e] - tx
                ry = ys[e] - ty
                rz = zs[e] - tz
                behind = -(rx * d[0] + ry * d[1] + rz * d[2])
                b = rx * w[0] + ry * w[1] + rz * w[2]
                c = rx * n[0] + ry * n[1] + rz * n[2]
                inside += (
                    (behind >= lo)
                    & (behind > beyond)
                    & (behind <= length)
                    & (abs(b) <= half_width)
                    & (abs(c) <= radius)
                )
        if inside >= stop_at:
            return inside
    return inside


@njit(cache=True, nogil=True)
def _count_beyond(work, count, tool, pose, tx, ty, tz, from_mm):  # type: ignore[no-untyped-def]
    # _occupied_beyond from the first ``count`` listed (bone) voxels, as a voxel count
    return _count_in(work, count, tool, pose, tx, ty, tz, from_mm, count + 1)


@njit(cache=True, nogil=True)
def _count_limit(vox, limit_mm3):  # type: ignore[no-untyped-def]
    # the fewest voxels whose volume, summed one by one as _occupied sums it, passes the limit:
    # "_occupied(...) <= limit" is then exactly "voxels inside < _count_limit(vox, limit)"
    occ = np.float64(0.0)
    n = 0
    while occ <= limit_mm3:
        occ += vox
        n += 1
    return n


@njit(cache=True, nogil=True)
def _overlap_list(work, listed, vox, tool, pose, out):  # type: ignore[no-untyped-def]
    # ``_overlap`` over the gathered list (bone voxels in grid order, then the label-only
    # ones): the same sums in the same order, the same counts
    bone_n, label_n = listed
    capacity = work.shape[1]
    tip = (pose[Q_TIP], pose[Q_TIP + 1], pose[Q_TIP + 2])
    d, n, w = _axes(pose)
    acc = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    for e in range(bone_n):
        inside, _, ux, uy, uz = _member(
            tool, d, n, w, work[W_X, e] - tip[0], work[W_Y, e] - tip[1], work[W_Z, e] - tip[2]
        )
        if inside:
            lab = np.int64(work[W_LABEL, e])
            acc = _overlap_voxel(acc, lab, work[W_RHO, e], vox, ux, uy, uz)
    # the label-only voxels: counted, no bone to weigh
    for e in range(capacity - label_n, capacity):
        inside, _, _, _, _ = _member(
            tool, d, n, w, work[W_X, e] - tip[0], work[W_Y, e] - tip[1], work[W_Z, e] - tip[2]
        )
        if inside:
            acc = _overlap_voxel(acc, np.int64(work[W_LABEL, e]), 0.0, vox, 0.0, 0.0, 0.0)
    _store_overlap(out, acc)


@njit(cache=True, nogil=True)
def _erode_list(density, density0, work, count, vox, tool, pose, amount, removed):  # type: ignore[no-untyped-def]
    # ``_erode`` over the first ``count`` listed (bone) voxels: same voxels, order and sums
    flat = density.reshape(-1)
    flat0 = density0.reshape(-1)
    tip = (pose[Q_TIP], pose[Q_TIP + 1], pose[Q_TIP + 2])
    d, n, w = _axes(pose)
    cut = tool[T_CUT_MM]
    a32 = np.float32(amount)
    acc = (0.0, 0.0, 0.0, 0.0)
    for e in range(count):
        rx = work[W_X, e] - tip[0]
        ry = work[W_Y, e] - tip[1]
        rz = work[W_Z, e] - tip[2]
        # most of a long tool's list lies behind its cutting zone: skip it before the shape
        # test (the same ``behind`` _member computes, so the same voxels are cut)
        if -(rx * d[0] + ry * d[1] + rz * d[2]) > cut:
            continue
        inside, behind, _, _, _ = _member(tool, d, n, w, rx, ry, rz)
        if inside and behind <= cut:
            index = np.int64(work[W_INDEX, e])
            acc = _erode_voxel(acc, flat, flat0, index, np.int64(work[W_LABEL, e]), a32, vox)
    return _store_removed(removed, acc)


@njit(cache=True, nogil=True)
def _perpendicular(d):  # type: ignore[no-untyped-def]
    # a unit vector normal to d: d × (the coordinate axis least aligned with d)
    ax, ay, az = abs(d[0]), abs(d[1]), abs(d[2])
    if ax <= ay and ax <= az:
        e = (1.0, 0.0, 0.0)
    elif ay <= az:
        e = (0.0, 1.0, 0.0)
    else:
        e = (0.0, 0.0, 1.0)
    cx = d[1] * e[2] - d[2] * e[1]
    cy = d[2] * e[0] - d[0] * e[2]
    cz = d[0] * e[1] - d[1] * e[0]
    m = math.sqrt(cx * cx + cy * cy + cz * cz)
    return cx / m, cy / m, cz / m


@njit(cache=True, nogil=True)
def _xorshift(st):  # type: ignore[no-untyped-def]
    # next uniform in [0, 1) from the xorshift32 state kept in st[S_RNG]
    x = np.int64(st[S_RNG])
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    st[S_RNG] = np.float64(x)
    return np.float64(x) / 4294967296.0


@njit(cache=True, nogil=True)
def _set_pose(st, inp):  # type: ignore[no-untyped-def]
    # the hand's pose from the input: position, normalised axis (the last one when absent),
    # blade normal, velocity; the pose row takes the tool's (proxy's) axis and normal, which
    # _move_proxy turns toward the hand's where bone allows
    pose = st[S_POSE : S_POSE + N_POSE]
    ax, ay, az = inp[I_AXIS], inp[I_AXIS + 1], inp[I_AXIS + 2]
    m = math.sqrt(ax * ax + ay * ay + az * az)
    if m > 1e-09:
        d = (ax / m, ay / m, az / m)
    else:
        d = (st[S_DEVICE_DIR], st[S_DEVICE_DIR + 1], st[S_DEVICE_DIR + 2])
    # blade normal: the tool-frame x axis turned by the orientation, made normal to the axis
    qw, qx, qy, qz = inp[I_QUAT], inp[I_QUAT + 1], inp[I_QUAT + 2], inp[I_QUAT + 3]
    nx = 1.0 - 2.0 * (qy * qy + qz * qz)
    ny = 2.0 * (qx * qy + qw * qz)
    nz = 2.0 * (qx * qz - qw * qy)
    dot = nx * d[0] + ny * d[1] + nz * d[2]
    nx -= dot * d[0]
    ny -= dot * d[1]
    nz -= dot * d[2]
    m = math.sqrt(nx * nx + ny * ny + nz * nz)
    n = (nx / m, ny / m, nz / m) if m > 1e-6 else _perpendicular(d)
    first = st[S_TICK] == 0.0  # the session starts with the tool in the hand
    for a in range(3):
        st[S_DEVICE_DIR + a] = d[a]
        st[S_DEVICE_NORMAL + a] = n[a]
        st[S_DEVICE + a] = inp[I_POS + a]
        pose[Q_VEL + a] = inp[I_VEL + a]
        if first:
            st[S_DIR + a] = d[a]
            st[S_TOOL_NORMAL + a] = n[a]
        pose[Q_DIR + a] = st[S_DIR + a]
        pose[Q_NORMAL + a] = st[S_TOOL_NORMAL + a]


@njit(cache=True, nogil=True, inline="always")
def _turned(v, u, c, sn):  # type: ignore[no-untyped-def]
    # Rodrigues: v turned about unit u by the angle with cosine c and sine sn
    dot = v[0] * u[0] + v[1] * u[1] + v[2] * u[2]
    cx = u[1] * v[2] - u[2] * v[1]
    cy = u[2] * v[0] - u[0] * v[2]
    cz = u[0] * v[1] - u[1] * v[0]
    return (
        v[0] * c + cx * sn + u[0] * dot * (1.0 - c),
        v[1] * c + cy * sn + u[1] * dot * (1.0 - c),
        v[2] * c + cz * sn + u[2] * dot * (1.0 - c),
    )


@njit(cache=True, nogil=True)
def _turn_to_hand(tool, st):  # type: ignore[no-untyped-def]
    # (u, angle): the turn about unit u (case frame, through the tip) that brings the tool's
    # orientation onto the hand's. Round tools: the axis only (their spin does not matter);
    # blades: the whole frame (axis and blade normal)
    d = (st[S_DIR], st[S_DIR + 1], st[S_DIR + 2])
    h = (st[S_DEVICE_DIR], st[S_DEVICE_DIR + 1], st[S_DEVICE_DIR + 2])
    cx = d[1] * h[2] - d[2] * h[1]
    cy = d[2] * h[0] - d[0] * h[2]
    cz = d[0] * h[1] - d[1] * h[0]
    sn = math.sqrt(cx * cx + cy * cy + cz * cz)
    c = d[0] * h[0] + d[1] * h[1] + d[2] * h[2]
    if tool[T_KIND] != KIND_BLADE:
        if sn < 1e-12:
            if c > 0.0:
                return (1.0, 0.0, 0.0), 0.0
            return _perpendicular(d), math.pi
        return (cx / sn, cy / sn, cz / sn), math.atan2(sn, c)
    # blades: R = F_h F_p^T with F = [d n w] (w = d × n), then R's axis and angle
    n = (st[S_TOOL_NORMAL], st[S_TOOL_NORMAL + 1], st[S_TOOL_NORMAL + 2])
    g = (st[S_DEVICE_NORMAL], st[S_DEVICE_NORMAL + 1], st[S_DEVICE_NORMAL + 2])
    w = (d[1] * n[2] - d[2] * n[1], d[2] * n[0] - d[0] * n[2], d[0] * n[1] - d[1] * n[0])
    v = (h[1] * g[2] - h[2] * g[1], h[2] * g[0] - h[0] * g[2], h[0] * g[1] - h[1] * g[0])
    trace = _rij(h, d, g, n, v, w, 0, 0) + _rij(h, d, g, n, v, w, 1, 1)
    trace += _rij(h, d, g, n, v, w, 2, 2)
    angle = math.acos(min(1.0, max(-1.0, 0.5 * (trace - 1.0))))
    ux = _rij(h, d, g, n, v, w, 2, 1) - _rij(h, d, g, n, v, w, 1, 2)
    uy = _rij(h, d, g, n, v, w, 0, 2) - _rij(h, d, g, n, v, w, 2, 0)
    uz = _rij(h, d, g, n, v, w, 1, 0) - _rij(h, d, g, n, v, w, 0, 1)
    m = math.sqrt(ux * ux + uy * uy + uz * uz)
    if m < 1e-12:
        if angle < 1e-6:
            return (1.0, 0.0, 0.0), 0.0
        # a half turn: the axis R keeps (the largest column of R + I)
        best = 0
        for i in range(3):
            if _rij(h, d, g, n, v, w, i, i) > _rij(h, d, g, n, v, w, best, best):
                best = i
        ux = _rij(h, d, g, n, v, w, 0, best) + (1.0 if best == 0 else 0.0)
        uy = _rij(h, d, g, n, v, w, 1, best) + (1.0 if best == 1 else 0.0)
        uz = _rij(h, d, g, n, v, w, 2, best) + (1.0 if best == 2 else 0.0)
        m = math.sqrt(ux * ux + uy * uy + uz * uz)
    return (ux / m, uy / m, uz / m), angle


@njit(cache=True, nogil=True, inline="always")
def _rij(h, d, g, n, v, w, i, j):  # type: ignore[no-untyped-def]
    # element (i, j) of F_h F_p^T, the frames' columns (axis, normal, their cross product)
    return h[i] * d[j] + g[i] * n[j] + v[i] * w[j]


@njit(cache=True, nogil=True)
def _reach_mm(tool):  # type: ignore[no-untyped-def]
    # the farthest a point of the tool lies from its tip (bounds how far a turn moves it)
    return tool[T_LENGTH_MM] + tool[T_RADIUS_MM] + 0.5 * tool[T_WIDTH_MM]


@njit(cache=True, nogil=True)
def _set_turn(pose, cand, u, angle):  # type: ignore[no-untyped-def]
    # cand := pose with its axis and blade normal turned about u by angle
    c = math.cos(angle)
    sn = math.sin(angle)
    d = _turned((pose[Q_DIR], pose[Q_DIR + 1], pose[Q_DIR + 2]), u, c, sn)
    n = _turned((pose[Q_NORMAL], pose[Q_NORMAL + 1], pose[Q_NORMAL + 2]), u, c, sn)
    m = math.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
    d = (d[0] / m, d[1] / m, d[2] / m)
    dot = n[0] * d[0] + n[1] * d[1] + n[2] * d[2]
    n = (n[0] - dot * d[0], n[1] - dot * d[1], n[2] - dot * d[2])
    m = math.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2])
    n = (n[0] / m, n[1] / m, n[2] / m) if m > 1e-9 else _perpendicular(d)
    for a in range(N_POSE):
        cand[a] = pose[a]
    for a in range(3):
        cand[Q_DIR + a] = d[a]
        cand[Q_NORMAL + a] = n[a]


@njit(cache=True, nogil=True)
def _shaft_bone(density, work, listed, s, tool, pose, t, stop_at):  # type: ignore[no-untyped-def]
    # voxels with bone left in the tool's non-cutting part (beyond T_CUT_MM), tip at t; from
    # the list, counting stops once stop_at are found
    if listed[0] < 0:
        occ = _occupied_beyond(density, s, tool, pose, t[0], t[1], t[2], tool[T_CUT_MM])
        return np.int64(occ / (s * s * s) + 0.5)
    cut = tool[T_CUT_MM]
    return np.int64(_count_in(work, listed[0], tool, pose, t[0], t[1], t[2], cut, stop_at))


@njit(cache=True, nogil=True)
def _turn_proxy(density, params, tool, st, work, listed, u, angle, step):  # type: ignore[no-untyped-def]
    # turn the tool about its tip toward the hand's orientation by at most ``step`` rad, as
    # far as it goes without its shaft (the part that does not cut) taking more bone than it
    # holds now or the slack, whichever is more (bisection). Returns the angle still between
    # the tool and the hand after the turn, and whether bone stopped it.
    s = params[P_SPACING_MM]
    pose = st[S_POSE : S_POSE + N_POSE]
    cand = st[S_CAND_POSE : S_CAND_POSE + N_POSE]
    t = (pose[Q_TIP], pose[Q_TIP + 1], pose[Q_TIP + 2])
    want = min(angle, step)
    slack = np.int64(params[P_ROT_SLACK_MM3] / (s * s * s))
    everything = listed[0] + 1
    allowed = max(_shaft_bone(density, work, listed, s, tool, pose, t, everything), slack)
    _set_turn(pose, cand, u, want)
    turned = want
    if _shaft_bone(density, work, listed, s, tool, cand, t, allowed + 1) > allowed:
        lo = 0.0
        hi = want
        for _ in range(BISECTIONS + 2):
            mid = 0.5 * (lo + hi)
            _set_turn(pose, cand, u, mid)
            if _shaft_bone(density, work, listed, s, tool, cand, t, allowed + 1) <= allowed:
                lo = mid
            else:
                hi = mid
        turned = lo
        _set_turn(pose, cand, u, turned)
    for a in range(3):
        pose[Q_DIR + a] = cand[Q_DIR + a]
        pose[Q_NORMAL + a] = cand[Q_NORMAL + a]
        st[S_DIR + a] = cand[Q_DIR + a]
        st[S_TOOL_NORMAL + a] = cand[Q_NORMAL + a]
    return angle - turned, turned < want


@njit(cache=True, nogil=True)
def _set_torque(params, st, u, gap, blocked):  # type: ignore[no-untyped-def]
    # torque on the hand about the tip when bone stops the tool turning: a rotational spring
    # k·grip² (the translational spring acting at the grip) on the angle left between the
    # hand and the tool, saturating (tanh) at the spring's force limit times the grip; the
    # device gets it scaled like the force and clamped to its torque limit
    grip = params[P_GRIP_MM]
    magnitude = 0.0
    if blocked and gap > 0.0:
        stiffness = params[P_PROXY_K_N_PER_MM] * grip * grip
        magnitude = _saturate(stiffness * gap, params[P_SPRING_SAT_N] * grip)
    st[S_ANGLE_GAP_RAD] = gap
    shown = magnitude * params[P_DISPLAY_SCALE]
    shown = min(shown, params[P_MAX_TORQUE_N_MM])
    for a in range(3):
        # u turns the tool toward the hand: the hand is turned back, about -u
        st[S_TORQUE + a] = -magnitude * u[a]
        st[S_DISPLAY_TORQUE + a] = -shown * u[a]


@njit(cache=True, nogil=True, inline="always")
def _saturate(f, limit):  # type: ignore[no-untyped-def]
    # smooth saturation: f for small f, never above limit (limit <= 0: linear)
    if limit <= 0.0:
        return f
    return limit * math.tanh(f / limit)


@njit(cache=True, nogil=True)
def _bisect_step(density, work, listed, s, tool, pose, o, c, on_mm3, n_on, held):  # type: ignore[no-untyped-def]
    # the farthest point of o..c found free (_free_held) by BISECTIONS halvings (o free, c not)
    lo = 0.0
    hi = 1.0
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        m = (o[0] + mid * (c[0] - o[0]), o[1] + mid * (c[1] - o[1]), o[2] + mid * (c[2] - o[2]))
        if _free_held(density, work, listed, s, tool, pose, m, on_mm3, n_on, held):
            lo = mid
        else:
            hi = mid
    return o[0] + lo * (c[0] - o[0]), o[1] + lo * (c[1] - o[1]), o[2] + lo * (c[2] - o[2])


@njit(cache=True, nogil=True)
def _blocked_step(density, work, listed, s, tool, pose, o, c, on_mm3, n_on, held):  # type: ignore[no-untyped-def]
    # the tip's step from o toward c when c itself is not free (_free_held, the shaft holding
    # ``held`` voxels of bone at o): as far as it goes straight (bisection), then the rest of
    # the step's component along the tool's axis, as far as that goes. A god object slides
    # along what holds it: a drill or wire in its own bore (or a blade in its kerf) is held
    # across its axis, not along it, so a hand pushing a little sideways still drives it on
    # (or back) along the axis; without the slide a shaft held in its hole stopped the whole
    # step, and the tool did not travel on past the far cortex.
    # Spheres have no axis to slide along. Every point tried lies within |c - o| of c, inside
    # the tick's list (gathered about o..c grown by |c - o|).
    t = _bisect_step(density, work, listed, s, tool, pose, o, c, on_mm3, n_on, held)
    if tool[T_KIND] == KIND_SPHERE:
        return t
    dx, dy, dz = pose[Q_DIR], pose[Q_DIR + 1], pose[Q_DIR + 2]
    rx, ry, rz = c[0] - t[0], c[1] - t[1], c[2] - t[2]
    along = rx * dx + ry * dy + rz * dz
    lx, ly, lz = rx - along * dx, ry - along * dy, rz - along * dz
    if lx * lx + ly * ly + lz * lz <= SLIDE_MIN_MM * SLIDE_MIN_MM:
        return t  # the step was along the axis already: what stopped it stops the slide
    a = (t[0] + along * dx, t[1] + along * dy, t[2] + along * dz)
    if _free_held(density, work, listed, s, tool, pose, a, on_mm3, n_on, held):
        return a
    return _bisect_step(density, work, listed, s, tool, pose, t, a, on_mm3, n_on, held)


@njit(cache=True, nogil=True)
def _move_proxy(density, label, columns, params, tool, st, work):  # type: ignore[no-untyped-def]
    # god object, 6 DOF: the tool chases the device, at most MAX_STEP_VOXELS voxels a tick so
    # it cannot tunnel through bone, and stops where going on would bury it in intact bone
    # (bisection), then slides on along its own axis as far as that goes (_blocked_step);
    # from then on (proxy on) a spring pulls the hand back to it. Forsslund's
    # hysteresis releases the proxy once the device is out of the bone and close to it. Then
    # the tool turns about its tip toward the hand's orientation, at most a voxel of travel
    # at its far end per tick, and only as far as its shaft stays out of intact bone
    # (_turn_proxy); what bone holds back becomes a torque (_set_torque).
    # Returns (fresh, listed): fresh when the overlap slots already hold the overlap at the
    # final pose; listed = the counts of the voxel list gathered in ``work`` for this tick's
    # path (``_gather_grown``), (-1, 0) when it would not fit (the tick then scans the grid).
    s = params[P_SPACING_MM]
    vox = s * s * s
    pose = st[S_POSE : S_POSE + N_POSE]
    radius = tool[T_REF_RADIUS_MM]
    ref_mm3 = 4.0 / 3.0 * math.pi * radius * radius * radius
    on_mm3 = params[P_PROXY_ON] * ref_mm3
    off_mm3 = params[P_PROXY_OFF] * ref_mm3
    dx, dy, dz = st[S_DEVICE], st[S_DEVICE + 1], st[S_DEVICE + 2]
    if st[S_TICK] == 0.0:
        # the session starts with the tool in the hand
        st[S_TOOL] = dx
        st[S_TOOL + 1] = dy
        st[S_TOOL + 2] = dz
    ox, oy, oz = st[S_TOOL], st[S_TOOL + 1], st[S_TOOL + 2]
    gap = math.sqrt((dx - ox) ** 2 + (dy - oy) ** 2 + (dz - oz) ** 2)
    reach = MAX_STEP_VOXELS * s
    f = 1.0 if gap <= reach else reach / gap
    cx, cy, cz = ox + f * (dx - ox), oy + f * (dy - oy), oz + f * (dz - oz)
    # the turn wanted: a sphere has no orientation to hold, it takes the hand's at once
    u, angle = _turn_to_hand(tool, st)
    turn_step = 0.0
    if tool[T_KIND] == KIND_SPHERE:
        for a in range(3):
            st[S_DIR + a] = st[S_DEVICE_DIR + a]
            st[S_TOOL_NORMAL + a] = st[S_DEVICE_NORMAL + a]
            pose[Q_DIR + a] = st[S_DIR + a]
            pose[Q_NORMAL + a] = st[S_TOOL_NORMAL + a]
        angle = 0.0
    elif angle > 0.0:
        turn_step = min(angle, MAX_STEP_VOXELS * s / _reach_mm(tool))
    # the bone along the step (and the turn) is listed once (or was, by the last tick's
    # second half: _next_list); the candidate, every bisection point and the final overlap
    # and erosion are then counted from that list, not from the grid. Out of the proxy the
    # candidate is usually free: its whole overlap is measured at once (the same voxels,
    # order and sum as _occupied), which _tick then need not repeat; in the proxy, where it
    # usually is not, _occupied stops counting early instead
    listed = _tick_list(density, label, columns, tool, st, work, (cx, cy, cz), turn_step, s)
    n_on = 0  # _count_limit(vox, on_mm3), once needed
    fresh = False
    if st[S_PROXY_ON] == 0.0:
        ov = st[S_OVERLAP : S_OVERLAP + N_OVERLAP]
        pose[Q_TIP] = cx
        pose[Q_TIP + 1] = cy
        pose[Q_TIP + 2] = cz
        _overlap_at(density, label, work, listed, s, tool, pose, ov)
        fresh = ov[O_OCC_MM3] <= on_mm3
        free = fresh
    else:
        n_on = _count_limit(vox, on_mm3)
        free = _free_at(density, work, listed, s, tool, pose, (cx, cy, cz), on_mm3, n_on)
    held = 0  # bone the shaft holds at the tick's start (voxels), once needed
    if not free:
        if n_on == 0:
            n_on = _count_limit(vox, on_mm3)
        if tool[T_KIND] != KIND_SPHERE:
            held = _shaft_bone(density, work, listed, s, tool, pose, (ox, oy, oz), listed[0] + 1)
        c = (cx, cy, cz)
        if held > 0 and _free_held(density, work, listed, s, tool, pose, c, on_mm3, n_on, held):
            free = True
            fresh = st[S_PROXY_ON] == 0.0  # the overlap was measured at c
    if free:
        tx, ty, tz = cx, cy, cz
    else:
        st[S_PROXY_ON] = 1.0
        tx, ty, tz = _blocked_step(
            density, work, listed, s, tool, pose, (ox, oy, oz), (cx, cy, cz), on_mm3, n_on, held
        )
    if st[S_PROXY_ON] == 1.0:
        gap = math.sqrt((dx - tx) ** 2 + (dy - ty) ** 2 + (dz - tz) ** 2)
        near = gap < params[P_PROXY_RELEASE_MM]
        hand = (dx, dy, dz)
        if near and _released(density, columns, work, listed, s, tool, pose, hand, off_mm3):
            st[S_PROXY_ON] = 0.0
    st[S_TOOL] = tx
    st[S_TOOL + 1] = ty
    st[S_TOOL + 2] = tz
    pose[Q_TIP] = tx
    pose[Q_TIP + 1] = ty
    pose[Q_TIP + 2] = tz
    left = angle
    blocked = False
    if turn_step > 0.0:
        left, blocked = _turn_proxy(density, params, tool, st, work, listed, u, angle, turn_step)
        fresh = False  # the overlap was measured before the turn
    _set_torque(params, st, u, left, blocked)
    return fresh, listed


@njit(cache=True, nogil=True)
def _growth_needed(tool, step_mm, turn_rad):  # type: ignore[no-untyped-def]
    # how far from the pose a list was gathered about (tip t, axis d) the tool may be, tip
    # moved by up to step_mm and axis turned by up to turn_rad, and still lie inside the tool
    # grown by that much about t, d. A point at β behind the tip across the axis by v (|v| <=
    # r) moves by at most |Δt| + β·|Δd| along the axis line, and the axis turn tilts v out of
    # the grown tool's cross-section by at most r·|Δd|, with |Δd| <= the angle: so
    # |Δt| + (L + r)·angle. A sphere has no axis. Blades (whose frame turns about the axis
    # too) are not prefetched: -1
    kind = tool[T_KIND]
    if kind == KIND_SPHERE:
        return step_mm
    if kind == KIND_CYLINDER:
        return step_mm + (tool[T_LENGTH_MM] + tool[T_RADIUS_MM]) * turn_rad
    return -1.0


@njit(cache=True, nogil=True)
def _tick_list(density, label, columns, tool, st, work, c, turn_step, s):  # type: ignore[no-untyped-def]
    # the tick's voxel list: the one the last tick's second half gathered for this tick when
    # the state is still the one it was gathered from and this tick's candidate poses (tip on
    # the tool..c, axis turned by up to turn_step) lie within it; else gathered now
    pose = st[S_POSE : S_POSE + N_POSE]
    o = (st[S_TOOL], st[S_TOOL + 1], st[S_TOOL + 2])
    nxt = work[W_NEXT, :N_NEXT]
    if nxt[NEXT_VALID] == 1.0 and _next_holds(st, nxt):
        step_mm = math.sqrt((c[0] - o[0]) ** 2 + (c[1] - o[1]) ** 2 + (c[2] - o[2]) ** 2)
        need = _growth_needed(tool, step_mm, turn_step)
        # a margin far above rounding, far below a voxel
        if need >= 0.0 and need + 1e-6 <= nxt[NEXT_GROWTH_MM]:
            nxt[NEXT_VALID] = 0.0  # used once: the tick's erosion makes it stale
            return np.int64(nxt[NEXT_BONE]), np.int64(nxt[NEXT_LABELLED])
    nxt[NEXT_VALID] = 0.0
    extra = turn_step * _reach_mm(tool)
    return _gather_in(density, label, columns, s, tool, pose, o, c, extra, work)


@njit(cache=True, nogil=True)
def _next_holds(st, nxt):  # type: ignore[no-untyped-def]
    # the state is the one the next tick's list was gathered from: the same tick, tool pose,
    # bone removed and RNG (a state restored from elsewhere differs in one of these)
    same = nxt[NEXT_TICK] == st[S_TICK]
    same &= nxt[NEXT_REMOVED] == st[S_REMOVED + R_TOTAL_MM3]
    same &= nxt[NEXT_RNG] == st[S_RNG]
    for a in range(3):
        same &= nxt[NEXT_TIP + a] == st[S_TOOL + a]
        same &= nxt[NEXT_DIR + a] == st[S_DIR + a]
        same &= nxt[NEXT_NORMAL + a] == st[S_TOOL_NORMAL + a]
    return same


@njit(cache=True, nogil=True)
def _next_list(density, label, columns, params, tool, st, work):  # type: ignore[no-untyped-def]
    # at the end of a tick (after its erosion): gather the list the next tick will need, so
    # that its first half (the force the device waits for) need not. Grown enough for the
    # next tick's step (at most MAX_STEP_VOXELS) and, when the hand is turned away from the
    # tool now, for a turn (at most a voxel at the far end); a next tick that needs more
    # gathers its own (_tick_list). Either way the tick counts from a superset of the voxels
    # its poses cover, in grid order: the same results bit for bit
    nxt = work[W_NEXT, :N_NEXT]
    nxt[NEXT_VALID] = 0.0
    s = params[P_SPACING_MM]
    turn = 0.0
    if st[S_ANGLE_GAP_RAD] > 0.0:
        turn = MAX_STEP_VOXELS * s / _reach_mm(tool)
    # 1 % over: a full step is |c - o| = s up to rounding, which must fit with _tick_list's margin
    growth = 1.01 * _growth_needed(tool, MAX_STEP_VOXELS * s, turn)
    if growth < 0.0:
        return
    pose = st[S_POSE : S_POSE + N_POSE]
    t = (st[S_TOOL], st[S_TOOL + 1], st[S_TOOL + 2])
    bone, labelled = _gather_in(density, label, columns, s, tool, pose, t, t, growth, work)
    if bone < 0:
        return
    nxt[NEXT_TICK] = st[S_TICK]
    nxt[NEXT_REMOVED] = st[S_REMOVED + R_TOTAL_MM3]
    nxt[NEXT_RNG] = st[S_RNG]
    for a in range(3):
        nxt[NEXT_TIP + a] = st[S_TOOL + a]
        nxt[NEXT_DIR + a] = st[S_DIR + a]
        nxt[NEXT_NORMAL + a] = st[S_TOOL_NORMAL + a]
    nxt[NEXT_GROWTH_MM] = growth
    nxt[NEXT_BONE] = bone
    nxt[NEXT_LABELLED] = labelled
    nxt[NEXT_VALID] = 1.0


@njit(cache=True, nogil=True)
def _released(density, columns, work, listed, s, tool, pose, t, off_mm3):  # type: ignore[no-untyped-def]
    # "_occupied(tool at the hand's tip t) < off": the tick's list (a subset of the grid's
    # bone) already holding enough voxels there settles "no" without scanning the grid
    if listed[0] >= 0:
        n_off = _count_limit(s * s * s, off_mm3)
        if _count_in(work, listed[0], tool, pose, t[0], t[1], t[2], -math.inf, n_off) >= n_off:
            return False
    return _occupied_in(density, columns, s, tool, pose, t[0], t[1], t[2], off_mm3) < off_mm3


@njit(cache=True, nogil=True)
def _free_at(density, work, listed, s, tool, pose, t, limit_mm3, n_limit):  # type: ignore[no-untyped-def]
    # "_occupied(tool at tip t) <= limit", counted from the tick's voxel list when there is
    # one (n_limit = _count_limit(s³, limit)), from the grid when it overflowed
    if listed[0] < 0:
        return _occupied(density, s, tool, pose, t[0], t[1], t[2], limit_mm3) <= limit_mm3
    inside = _count_in(work, listed[0], tool, pose, t[0], t[1], t[2], -math.inf, n_limit)
    return inside < n_limit


@njit(cache=True, nogil=True)
def _free_held(density, work, listed, s, tool, pose, t, limit_mm3, n_limit, held):  # type: ignore[no-untyped-def]
    # the proxy's test of a tip t: free when the tool there holds at most the limit of bone
    # (_free_at), or when its cutting zone does and its shaft (beyond T_CUT_MM) holds no more
    # than the ``held`` voxels it held at the tick's start. Bone the shaft already carries
    # (rings of cortex the cutting zone passed before cutting them through, as the limit lets
    # it) does not count against the cutting zone: with it counted, a guide wire that carried
    # a limit's worth through the femoral head stalled in the joint space, its cutting zone
    # neither able to reach the acetabulum nor holding anything to cut. The shaft still may not
    # take more bone (sideways into a wall), so the bone in the tool stays within the limit
    # plus what it carried. held = 0: _free_at alone
    if held <= 0:
        return _free_at(density, work, listed, s, tool, pose, t, limit_mm3, n_limit)
    cut = tool[T_CUT_MM]
    if listed[0] < 0:
        vox = s * s * s
        total = np.int64(_occupied(density, s, tool, pose, t[0], t[1], t[2], math.inf) / vox + 0.5)
        beyond = _occupied_beyond(density, s, tool, pose, t[0], t[1], t[2], cut)
        shaft = np.int64(beyond / vox + 0.5)
    else:
        total, shaft = _count_split(work, listed[0], tool, pose, t, cut, n_limit, held)
    # free: the cutting zone within the limit, and either the whole tool or the shaft as
    # before (total < n_limit implies the first)
    return total - shaft < n_limit and (total < n_limit or shaft <= held)


@njit(cache=True, nogil=True)
def _count_split(work, count, tool, pose, t, cut, n_limit, held):  # type: ignore[no-untyped-def]
    # (inside, shaft): how many of the first ``count`` listed (bone) voxels lie inside the
    # tool at tip t, and how many of those more than ``cut`` behind the tip, in one pass
    # (_count_in's shape test). Stops once _free_held's answer is "no" either way: the cutting
    # zone at the limit, or the shaft past ``held`` with the whole at the limit
    d, n, w = _axes(pose)
    xs = work[W_X]
    ys = work[W_Y]
    zs = work[W_Z]
    kind = tool[T_KIND]
    radius = tool[T_RADIUS_MM]
    r2 = radius * radius
    length = tool[T_LENGTH_MM]
    half_width = 0.5 * tool[T_WIDTH_MM]
    tx, ty, tz = t[0], t[1], t[2]
    inside = 0
    shaft = 0
    for start in range(0, count, BLOCK):
        end = min(start + BLOCK, count)
        if kind == KIND_CYLINDER:
            for e in range(start, end):
                rx = xs[e] - tx
                ry = ys[e] - ty
                rz = zs[e] - tz
                behind = -(rx * d[0] + ry * d[1] + rz * d[2])
                ux = rx + behind * d[0]
                uy = ry + behind * d[1]
                uz = rz + behind * d[2]
                hit = (behind >= 0.0) & (behind <= length) & (ux * ux + uy * uy + uz * uz <= r2)
                inside += hit
                shaft += hit & (behind > cut)
        elif kind == KIND_BLADE:
            for e in range(start, end):
                rx = xs[e] - tx
                ry = ys[e] - ty
                rz = zs[e] - tz
                behind = -(rx * d[0] + ry * d[1] + rz * d[2])
                b = rx * w[0] + ry * w[1] + rz * w[2]
                c = rx * n[0] + ry * n[1] + rz * n[2]
                hit = (
                    (behind >= 0.0)
                    & (behind <= length)
                    & (abs(b) <= half_width)
                    & (abs(c) <= radius)
                )
                inside += hit
                shaft += hit & (behind > cut)
        else:
            for e in range(start, end):
                rx = xs[e] - tx
                ry = ys[e] - ty
                rz = zs[e] - tz
                behind = -(rx * d[0] + ry * d[1] + rz * d[2])
                hit = rx * rx + ry * ry + rz * rz <= r2
                inside += hit
                shaft += hit & (behind > cut)
        if inside - shaft >= n_limit or (shaft > held and inside >= n_limit):
            return inside, shaft
    return inside, shaft


@njit(cache=True, nogil=True)
def _erode_at(density, density0, label, work, listed, s, tool, pose, amount, removed):  # type: ignore[no-untyped-def]
    # _erode from the tick's voxel list when there is one, from the grid when it overflowed
    if listed[0] < 0:
        return _erode(density, density0, label, s, tool, pose, amount, removed)
    return _erode_list(density, density0, work, listed[0], s * s * s, tool, pose, amount, removed)


@njit(cache=True, nogil=True)
def _overlap_at(density, label, work, listed, s, tool, pose, out):  # type: ignore[no-untyped-def]
    # _overlap from the tick's voxel list when there is one, from the grid when it overflowed
    if listed[0] < 0:
        _overlap(density, label, s, tool, pose, out)
    else:
        _overlap_list(work, listed, s * s * s, tool, pose, out)


@njit(cache=True, nogil=True)
def _forces(params, tool, st):  # type: ignore[no-untyped-def]
    # physical force (overlap + damping + proxy spring) and the display force; returns |F|
    ov = st[S_OVERLAP : S_OVERLAP + N_OVERLAP]
    pose = st[S_POSE : S_POSE + N_POSE]
    push = (ov[O_PUSH], ov[O_PUSH + 1], ov[O_PUSH + 2])
    vel = (pose[Q_VEL], pose[Q_VEL + 1], pose[Q_VEL + 2])
    fx, fy, fz = _overlap_force(params, tool, ov[O_WEIGHTED_MM3], ov[O_OCC_MM3], push, vel)
    if st[S_PROXY_ON] == 1.0:
        # the hand–proxy spring k·gap, saturating (tanh) at P_SPRING_SAT_N: past the force
        # the device can push back with, the hand simply moves it, and how far says nothing
        # about how hard the user means to push
        gx = st[S_TOOL] - st[S_DEVICE]
        gy = st[S_TOOL + 1] - st[S_DEVICE + 1]
        gz = st[S_TOOL + 2] - st[S_DEVICE + 2]
        gap = math.sqrt(gx * gx + gy * gy + gz * gz)
        if gap > 0.0:
            spring = params[P_PROXY_K_N_PER_MM] * gap
            g = _saturate(spring, params[P_SPRING_SAT_N]) / gap
            fx += g * gx
            fy += g * gy
            fz += g * gz
    st[S_FORCE] = fx
    st[S_FORCE + 1] = fy
    st[S_FORCE + 2] = fz
    # across the tool's axis: what levers the shaft sideways
    along = fx * pose[Q_DIR] + fy * pose[Q_DIR + 1] + fz * pose[Q_DIR + 2]
    lx = fx - along * pose[Q_DIR]
    ly = fy - along * pose[Q_DIR + 1]
    lz = fz - along * pose[Q_DIR + 2]
    st[S_LATERAL_N] = math.sqrt(lx * lx + ly * ly + lz * lz)
    magnitude = math.sqrt(fx * fx + fy * fy + fz * fz)
    return magnitude


@njit(cache=True, nogil=True)
def _display(params, st, cutting):  # type: ignore[no-untyped-def]
    # what the hand feels: scaled to the device's stiffness, cutting vibration, clamped
    scale = params[P_DISPLAY_SCALE]
    gx = st[S_FORCE] * scale
    gy = st[S_FORCE + 1] * scale
    gz = st[S_FORCE + 2] * scale
    if cutting:
        amp = params[P_TEXTURE_N]
        gx += amp * (2.0 * _xorshift(st) - 1.0)
        gy += amp * (2.0 * _xorshift(st) - 1.0)
        gz += amp * (2.0 * _xorshift(st) - 1.0)
    m = math.sqrt(gx * gx + gy * gy + gz * gz)
    limit = params[P_MAX_FORCE_N]
    if m > limit:
        gx *= limit / m
        gy *= limit / m
        gz *= limit / m
    st[S_DISPLAY] = gx
    st[S_DISPLAY + 1] = gy
    st[S_DISPLAY + 2] = gz


@njit(cache=True, nogil=True)
def _mark_dirty(dirty, tool, pose, s, shape):  # type: ignore[no-untyped-def]
    # flag the remeshing chunks the box of the tool's cutting zone touches (where _erode works)
    tip = (pose[Q_TIP], pose[Q_TIP + 1], pose[Q_TIP + 2])
    reach = min(tool[T_LENGTH_MM], tool[T_CUT_MM])
    i0, i1, j0, j1, k0, k1 = _bounds(tool, pose, tip, s, shape, reach)
    if i1 <= i0 or j1 <= j0 or k1 <= k0:
        return
    for a in range(i0 // CHUNK, (i1 - 1) // CHUNK + 1):
        for b in range(j0 // CHUNK, (j1 - 1) // CHUNK + 1):
            for c in range(k0 // CHUNK, (k1 - 1) // CHUNK + 1):
                dirty[a, b, c] = 1


@njit(cache=True, nogil=True)
def _contacts(params, st, prev_nerve, prev_protected):  # type: ignore[no-untyped-def]
    # nerve/vessel and protected-zone contacts: ticks, and events on each new touch
    ov = st[S_OVERLAP : S_OVERLAP + N_OVERLAP]
    if ov[O_NERVE_VOXELS] > 0.0:
        st[S_NERVE_TICKS] += 1.0
        if not prev_nerve:
            st[S_NERVE_EVENTS] += 1.0
    if ov[O_PROTECTED_VOXELS] > 0.0:
        st[S_PROTECTED_TICKS] += 1.0
        if not prev_protected:
            st[S_PROTECTED_EVENTS] += 1.0
    # insertions: entering bone again after a real withdrawal counts as a new one
    tick = st[S_TICK]
    engaged = ov[O_BONE_VOXELS] > 0.0
    gap = tick - st[S_LAST_ENGAGED_TICK]
    first = st[S_INSERTIONS] == 0.0
    if engaged and st[S_ENGAGED] == 0.0 and (first or gap > params[P_ENGAGE_GAP_TICKS]):
        st[S_INSERTIONS] += 1.0
        # the insertion's own deepest point starts again; the session's (S_DEPTH_MAX_MM) not
        st[S_INS_DEPTH_MAX_MM] = -1e300
    st[S_ENGAGED] = 1.0 if engaged else 0.0
    if engaged:
        st[S_LAST_ENGAGED_TICK] = tick


@njit(cache=True, nogil=True)
def _levering(params, st):  # type: ignore[no-untyped-def]
    # force across the shaft and the torque bone holds the tool against, while in bone:
    # peaks and ticks above their limits
    if st[S_ENGAGED] == 0.0:
        st[S_LATERAL_N] = 0.0
        return
    lateral = st[S_LATERAL_N]
    st[S_LATERAL_PEAK_N] = max(st[S_LATERAL_PEAK_N], lateral)
    if lateral > params[P_LATERAL_LIMIT_N]:
        st[S_LATERAL_ABOVE_TICKS] += 1.0
    tx, ty, tz = st[S_TORQUE], st[S_TORQUE + 1], st[S_TORQUE + 2]
    torque = math.sqrt(tx * tx + ty * ty + tz * tz)
    st[S_TORQUE_PEAK_N_MM] = max(st[S_TORQUE_PEAK_N_MM], torque)
    if torque > params[P_TORQUE_LIMIT_N_MM]:
        st[S_TORQUE_ABOVE_TICKS] += 1.0


@njit(cache=True, nogil=True)
def _hole_bins(params, tool, pose):  # type: ignore[no-untyped-def]
    # (first, last) hole-progress bins of the planned path that the tool's cutting zone at
    # ``pose`` spans, when its tip lies within its radius (or a voxel) of the plan line;
    # (0, -1) when none
    e = (params[P_PLAN_ENTRY], params[P_PLAN_ENTRY + 1], params[P_PLAN_ENTRY + 2])
    ux = params[P_PLAN_TARGET] - e[0]
    uy = params[P_PLAN_TARGET + 1] - e[1]
    uz = params[P_PLAN_TARGET + 2] - e[2]
    length = math.sqrt(ux * ux + uy * uy + uz * uz)
    if length <= 0.0:
        return 0, -1
    ux /= length
    uy /= length
    uz /= length
    rx = pose[Q_TIP] - e[0]
    ry = pose[Q_TIP + 1] - e[1]
    rz = pose[Q_TIP + 2] - e[2]
    depth = rx * ux + ry * uy + rz * uz
    ox = rx - depth * ux
    oy = ry - depth * uy
    oz = rz - depth * uz
    off = math.sqrt(ox * ox + oy * oy + oz * oz)
    if off > max(tool[T_RADIUS_MM], params[P_SPACING_MM]):
        return 0, -1
    if tool[T_KIND] == KIND_SPHERE:
        lo = depth - tool[T_RADIUS_MM]
        hi = depth + tool[T_RADIUS_MM]
    else:
        lo = depth - min(tool[T_CUT_MM], tool[T_LENGTH_MM])
        hi = depth
    if hi < 0.0 or lo > length:
        return 0, -1
    first = math.floor(max(lo, 0.0) / length * N_HOLE_BINS)
    last = math.floor(min(hi, length) / length * N_HOLE_BINS)
    return max(first, 0), min(last, N_HOLE_BINS - 1)


@njit(cache=True, nogil=True)
def _mark_hole(params, tool, st):  # type: ignore[no-untyped-def]
    # bone was removed this tick: the plan's bins the cutting zone spans are drilled
    pose = st[S_POSE : S_POSE + N_POSE]
    first, last = _hole_bins(params, tool, pose)
    for b in range(first, last + 1):
        if st[S_HOLE + b] == 0.0:
            st[S_HOLE + b] = 1.0
            st[S_HOLE_DONE_BINS] += 1.0


@njit(cache=True, nogil=True)
def _track_tip(params, tool, label, st):  # type: ignore[no-untyped-def]
    # plunge: the tip leaves bone forwards while the shaft is still in it (the far cortex gave
    # way); how far it then runs on is the plunge. Also the deepest tip along the plan.
    s = params[P_SPACING_MM]
    pose = st[S_POSE : S_POSE + N_POSE]
    tip = (pose[Q_TIP], pose[Q_TIP + 1], pose[Q_TIP + 2])
    d = (pose[Q_DIR], pose[Q_DIR + 1], pose[Q_DIR + 2])
    i = math.floor(tip[0] / s + 0.5)
    j = math.floor(tip[1] / s + 0.5)
    k = math.floor(tip[2] / s + 0.5)
    in_bone = False
    if 0 <= i < label.shape[0] and 0 <= j < label.shape[1] and 0 <= k < label.shape[2]:
        tissue = label[i, j, k] & TISSUE_MASK
        in_bone = _is_bone(tissue)
    engaged = st[S_ENGAGED] == 1.0
    # the tip's travel along the tool axis this tick (forward positive), and its speed
    moved = (
        (tip[0] - st[S_PREV_TIP]) * d[0]
        + (tip[1] - st[S_PREV_TIP + 1]) * d[1]
        + (tip[2] - st[S_PREV_TIP + 2]) * d[2]
    )
    if st[S_TICK] == 0.0:
        moved = 0.0  # the tool starts in the hand, wherever that is: no jump from home
    speed = moved / DT_S
    speed = st[S_TIP_SPEED_MM_S] + (speed - st[S_TIP_SPEED_MM_S]) * (DT_S / SPEED_TAU_S)
    st[S_TIP_SPEED_MM_S] = speed
    for a in range(3):
        st[S_PREV_TIP + a] = tip[a]
    st[S_TIP_IN_BONE] = 1.0 if in_bone else 0.0
    if in_bone:
        st[S_TIP_WAS_IN_BONE] = 1.0
        st[S_EXITED] = 0.0
    elif st[S_TIP_WAS_IN_BONE] == 1.0 and engaged and st[S_EXITED] == 0.0:
        if moved < 0.0:
            # backing out of bone the way it came (withdrawing through a breach, or out of
            # the entry): not a breach; the tip must be in bone again before its next exit
            st[S_TIP_WAS_IN_BONE] = 0.0
        else:
            # a breakthrough: the tip left bone while the tool was still in it. Leaving again
            # within a radius (or a voxel) of the last exit (the tip flickering across the
            # cortex's voxel staircase, or pushed on through the same hole) is the same
            # breach: not counted again, and its plunge still runs from the first exit
            ex = tip[0] - st[S_EXIT]
            ey = tip[1] - st[S_EXIT + 1]
            ez = tip[2] - st[S_EXIT + 2]
            near = max(tool[T_RADIUS_MM], s)
            st[S_EXITED] = 1.0
            if st[S_BREACH_EVENTS] == 0.0 or ex * ex + ey * ey + ez * ez > near * near:
                st[S_BREACH_EVENTS] += 1.0
                st[S_EXIT_SPEED_MM_S] = max(speed, 0.0)
                for a in range(3):
                    st[S_EXIT + a] = tip[a]
    if not engaged:
        st[S_TIP_WAS_IN_BONE] = 0.0
    before = st[S_PLUNGE_NOW_MM]
    now = 0.0
    if st[S_EXITED] == 1.0:
        # the run past the exit lasts until the tip comes back behind the exit point (or
        # into bone), however far it goes and whether or not the tool still touches bone
        past = _past_exit(tip, st, d)
        if past < 0.0:
            st[S_EXITED] = 0.0
        else:
            now = past
            st[S_BREACH_TICKS] += 1.0
            st[S_PLUNGE_SPEED_MAX_MM_S] = max(st[S_PLUNGE_SPEED_MAX_MM_S], speed)
    st[S_PLUNGE_NOW_MM] = now
    st[S_PLUNGE_MAX_MM] = max(st[S_PLUNGE_MAX_MM], now)
    if now > params[P_PLUNGE_MM] >= before:
        st[S_PLUNGES] += 1.0
    # deepest tip along the planned axis: over the whole session, and this insertion
    e = (params[P_PLAN_ENTRY], params[P_PLAN_ENTRY + 1], params[P_PLAN_ENTRY + 2])
    ux = params[P_PLAN_TARGET] - e[0]
    uy = params[P_PLAN_TARGET + 1] - e[1]
    uz = params[P_PLAN_TARGET + 2] - e[2]
    m = math.sqrt(ux * ux + uy * uy + uz * uz)
    if m > 0.0 and engaged:
        depth = ((tip[0] - e[0]) * ux + (tip[1] - e[1]) * uy + (tip[2] - e[2]) * uz) / m
        for slot, at, axis in (
            (S_DEPTH_MAX_MM, S_DEEPEST_TIP, S_DEEPEST_DIR),
            (S_INS_DEPTH_MAX_MM, S_INS_DEEPEST_TIP, S_INS_DEEPEST_DIR),
        ):
            if depth > st[slot]:
                st[slot] = depth
                for a in range(3):
                    st[at + a] = tip[a]
                    st[axis + a] = d[a]


@njit(cache=True, nogil=True)
def _past_exit(tip, st, d):  # type: ignore[no-untyped-def]
    # how far the tip has gone past the exit point, along the axis
    return (
        (tip[0] - st[S_EXIT]) * d[0]
        + (tip[1] - st[S_EXIT + 1]) * d[1]
        + (tip[2] - st[S_EXIT + 2]) * d[2]
    )


# the model's arrays (density0, label, columns, params, tool), then the state's (density, st,
# dirty, work)
_MODEL_STATE = (
    F4_GRID_RO,
    U1_GRID_RO,
    I4_COLUMNS_RO,
    F8_ROW_RO,
    F8_ROW_RO,
    F4_GRID,
    F8_ROW,
    U1_GRID,
    F8_ROWS,
)


@njit(cache=True, nogil=True)
def _power(tool, inp):  # type: ignore[no-untyped-def]
    # (cutting power on, speed 0..1): powered tools need the power button and a speed; an awl
    # cuts when pushed
    if tool[T_POWERED] == 0.0:
        return True, 1.0
    if (int(inp[I_BUTTONS]) & BUTTON_POWER) and inp[I_SPEED] > 0.0:
        return True, min(inp[I_SPEED], 1.0)
    return False, 1.0


@njit(void(*_MODEL_STATE, F8_ROW_RO), cache=True, nogil=True)
def _tick_force(density0, label, columns, params, tool, density, st, dirty, work, inp):  # type: ignore[no-untyped-def]
    """The tick's first half: pose, proxy, overlap, force and the display force the device is
    sent (``st[S_DISPLAY:S_DISPLAY + 3]``). Arguments as ``_tick``."""
    if work.shape[0] < N_WORK_ROWS or work.shape[1] < N_WORK_MIN:
        raise ValueError("work array too small")
    s = params[P_SPACING_MM]
    ov = st[S_OVERLAP : S_OVERLAP + N_OVERLAP]
    pose = st[S_POSE : S_POSE + N_POSE]
    handoff = work[W_TOOL, W_HANDOFF : W_HANDOFF + N_HANDOFF]
    handoff[2] = 1.0 if ov[O_NERVE_VOXELS] > 0.0 else 0.0
    handoff[3] = 1.0 if ov[O_PROTECTED_VOXELS] > 0.0 else 0.0
    _set_pose(st, inp)
    fresh, listed = _move_proxy(density, label, columns, params, tool, st, work)
    handoff[0] = listed[0]
    handoff[1] = listed[1]
    if not fresh:
        _overlap_at(density, label, work, listed, s, tool, pose, ov)
    _forces(params, tool, st)
    powered, _ = _power(tool, inp)
    _display(params, st, powered and ov[O_OCC_MM3] > 0.0)


@njit(void(*_MODEL_STATE, F8_ROW_RO), cache=True, nogil=True)
def _tick_finish(density0, label, columns, params, tool, density, st, dirty, work, inp):  # type: ignore[no-untyped-def]
    """The tick's second half, after ``_tick_force`` on the same row: erosion, changed chunks,
    metrics, contacts, the tick count. Arguments as ``_tick``."""
    s = params[P_SPACING_MM]
    ov = st[S_OVERLAP : S_OVERLAP + N_OVERLAP]
    pose = st[S_POSE : S_POSE + N_POSE]
    handoff = work[W_TOOL, W_HANDOFF : W_HANDOFF + N_HANDOFF]
    listed = (np.int64(handoff[0]), np.int64(handoff[1]))
    fx, fy, fz = st[S_FORCE], st[S_FORCE + 1], st[S_FORCE + 2]
    magnitude = math.sqrt(fx * fx + fy * fy + fz * fz)  # as _forces computed it
    in_contact = ov[O_OCC_MM3] > 0.0 or st[S_PROXY_ON] == 1.0
    powered, spin = _power(tool, inp)
    if powered and ov[O_OCC_MM3] > 0.0:
        thrust = min(max(magnitude / params[P_THRUST_REF_N], 0.1), 3.0)
        amount = tool[T_EROSION] * spin * DT_S * thrust
        removed = st[S_REMOVED : S_REMOVED + N_REMOVED]
        if _erode_at(density, density0, label, work, listed, s, tool, pose, amount, removed) > 0:
            _mark_dirty(dirty, tool, pose, s, density.shape)
            _mark_hole(params, tool, st)
    # metrics
    if powered:
        st[S_POWERED_TICKS] += 1.0
    elif tool[T_POWERED] == 1.0 and in_contact:
        # a powered tool pushed against bone with its power off
        st[S_POWER_OFF_TICKS] += 1.0
        st[S_POWER_OFF_PEAK_N] = max(st[S_POWER_OFF_PEAK_N], magnitude)
    if st[S_PROXY_ON] == 1.0:
        st[S_PROXY_TICKS] += 1.0
    if in_contact:
        st[S_CONTACT_TICKS] += 1.0
        st[S_FORCE_SUM_N] += magnitude
    st[S_PEAK_FORCE_N] = max(st[S_PEAK_FORCE_N], magnitude)
    if magnitude > params[P_FORCE_LIMIT_N]:
        st[S_ABOVE_LIMIT_TICKS] += 1.0
    _contacts(params, st, handoff[2] == 1.0, handoff[3] == 1.0)
    _levering(params, st)
    _track_tip(params, tool, label, st)
    st[S_TICK] += 1.0
    # after the force is sent: the next tick's list (its first half then only counts)
    _next_list(density, label, columns, params, tool, st, work)


@njit(void(*_MODEL_STATE, F8_ROW_RO), cache=True, nogil=True)
def _tick(density0, label, columns, params, tool, density, st, dirty, work, inp):  # type: ignore[no-untyped-def]
    """Advance the simulation one tick (``DT_S``) from one input row; writes only state.

    density0, label: model grids (float32 g/cm³, uint8 tissue | zone bits), read only;
    columns: the model's broad phase (``CaseModel.columns``, int32 (n0, n1, 2)); params:
    ``P_*`` row; tool: ``T_*`` row; density: float32 grid of bone left, eroded in place;
    st: float64[N_STATE] state scalars; dirty: uint8 chunk flags (set where bone was removed);
    work: float64[N_WORK_ROWS, capacity >= N_WORK_MIN] scratch (``W_*`` rows): the tick's voxel
    list, and the one gathered for the next tick, which that tick uses only when the state is
    still the one it was gathered from (``_next_holds``); inp: float64[N_TICK] input row (case
    frame).

    The tick is its two halves, ``_tick_force`` then ``_tick_finish``: a servo loop may send
    the force between them.
    """
    _tick_force(density0, label, columns, params, tool, density, st, dirty, work, inp)
    _tick_finish(density0, label, columns, params, tool, density, st, dirty, work, inp)


@njit(void(*_MODEL_STATE, F8_ROWS_RO), cache=True, nogil=True)
def _run(density0, label, columns, params, tool, density, st, dirty, work, inputs):  # type: ignore[no-untyped-def]
    """``_tick`` over each row of ``inputs`` (float64[n, N_TICK]), in order."""
    for r in range(inputs.shape[0]):
        _tick(density0, label, columns, params, tool, density, st, dirty, work, inputs[r])
