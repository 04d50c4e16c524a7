"""The 6-DOF proxy's kernels against their numpy twins (tests/sim_core/naive.py): the shaft's
share of the occupied volume, the same counted from the tick's voxel list for a turned tool,
the hole-progress bins, and the turn that brings the tool onto the hand."""

import math
from typing import Any

import naive
import numpy as np
import pytest
from test_kernels import KINDS, cases, random_grids

from sim_core import _kernels
from sim_core.slots import (
    KIND_BLADE,
    KIND_SPHERE,
    N_HOLE_BINS,
    N_PARAMS,
    N_POSE,
    N_STATE,
    N_TOOL,
    P_PLAN_ENTRY,
    P_PLAN_TARGET,
    P_SPACING_MM,
    Q_DIR,
    Q_NORMAL,
    Q_TIP,
    S_DEVICE_DIR,
    S_DEVICE_NORMAL,
    S_DIR,
    S_TOOL_NORMAL,
    T_CUT_MM,
    T_KIND,
    T_LENGTH_MM,
    T_RADIUS_MM,
)
from sim_core.state import new_work

# jitted with explicit signatures: mypy sees a Dispatcher, not the arguments
OCCUPIED_BEYOND: Any = _kernels._occupied_beyond
COUNT_BEYOND: Any = _kernels._count_beyond


def _unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v / np.linalg.norm(v), dtype=np.float64)


def test_shaft_occupancy_matches_its_naive_twin() -> None:
    rng = np.random.default_rng(5)
    density, _, _ = random_grids(rng)
    touched = 0
    for _kind, spacing, tool, pose in cases(6):
        tip = pose[Q_TIP : Q_TIP + 3] + rng.normal(0.0, 0.5, 3)
        from_mm = float(tool[T_CUT_MM])
        got = OCCUPIED_BEYOND(density, spacing, tool, pose, *tip, from_mm)
        want = naive.occupied_beyond(density, spacing, tool, pose, tip, from_mm)
        # the same voxels (the kernel sums their volume one by one, the twin multiplies)
        assert round(got / spacing**3) == round(want / spacing**3)
        assert got == pytest.approx(want, rel=1e-12)
        touched += want > 0
    assert touched > 20


def test_a_turned_tool_is_counted_from_the_list_as_from_the_grid() -> None:
    # the list gathered for a step and a turn of at most a voxel at the tool's far end holds
    # every voxel the turned tool covers: counts equal the grid scan's exactly
    rng = np.random.default_rng(8)
    density, _, label = random_grids(rng)
    work = new_work(40000)
    compared = 0
    for _kind, spacing, tool, pose in cases(9):
        o = tuple(float(v) for v in pose[Q_TIP : Q_TIP + 3])
        step = _unit(rng.normal(size=3)) * spacing * rng.uniform(0.0, 1.0)
        c = tuple(float(a + b) for a, b in zip(o, step, strict=True))
        turn = spacing / float(_kernels._reach_mm(tool))
        listed = _kernels._gather_grown(
            density, label, spacing, tool, pose, o, c, turn * float(_kernels._reach_mm(tool)), work
        )
        assert listed[0] >= 0
        u = _unit(rng.normal(size=3))
        for frac in (0.0, 0.5, 1.0):
            for mid in (0.0, 1.0):
                t = tuple(a + mid * (b - a) for a, b in zip(o, c, strict=True))
                turned = np.zeros(N_POSE)
                _kernels._set_turn(pose, turned, tuple(u), frac * turn)
                from_mm = float(tool[T_CUT_MM])
                grid = OCCUPIED_BEYOND(density, spacing, tool, turned, *t, from_mm)
                count = COUNT_BEYOND(work, listed[0], tool, turned, *t, from_mm)
                assert count == round(grid / spacing**3)
                want = naive.occupied_beyond(density, spacing, tool, turned, np.array(t), from_mm)
                assert count == round(want / spacing**3)
                compared += grid > 0
    assert compared > 30


def test_hole_bins_match_their_naive_twin() -> None:
    rng = np.random.default_rng(11)
    hits = 0
    for kind, spacing, tool, pose in cases(12):
        entry = rng.uniform(0.0, 10.0, 3)
        target = entry + _unit(rng.normal(size=3)) * rng.uniform(5.0, 40.0)
        params = np.zeros(N_PARAMS)
        params[P_SPACING_MM] = spacing
        params[P_PLAN_ENTRY : P_PLAN_ENTRY + 3] = entry
        params[P_PLAN_TARGET : P_PLAN_TARGET + 3] = target
        # tips near the plan line, some on it, some a little off
        depth = rng.uniform(-5.0, np.linalg.norm(target - entry) + 5.0)
        off = _unit(np.cross(target - entry, rng.normal(size=3)))
        scale = 0.0 if rng.random() < 0.5 else rng.uniform(0.0, 2.0 * tool[T_RADIUS_MM])
        pose[Q_TIP : Q_TIP + 3] = entry + depth * _unit(target - entry) + scale * off
        first, last = _kernels._hole_bins(params, tool, pose)
        got = set(range(first, last + 1))
        assert got == naive.hole_bins(entry, target, spacing, tool, pose, N_HOLE_BINS), kind
        hits += bool(got)
    assert hits > 30


def test_the_turn_to_the_hand_brings_the_tool_onto_the_hand() -> None:
    rng = np.random.default_rng(13)
    for kind in KINDS:
        for _ in range(50):
            tool = np.zeros(N_TOOL)
            tool[T_KIND] = kind
            tool[T_LENGTH_MM] = 0.0 if kind == KIND_SPHERE else 20.0
            st = np.zeros(N_STATE)
            for axis_slot, normal_slot in ((S_DIR, S_TOOL_NORMAL), (S_DEVICE_DIR, S_DEVICE_NORMAL)):
                d = _unit(rng.normal(size=3))
                n = _unit(np.cross(d, rng.normal(size=3)))
                st[axis_slot : axis_slot + 3] = d
                st[normal_slot : normal_slot + 3] = n
            u, angle = _kernels._turn_to_hand(tool, st)
            assert 0.0 <= angle <= math.pi + 1e-12
            pose = np.zeros(N_POSE)
            pose[Q_DIR : Q_DIR + 3] = st[S_DIR : S_DIR + 3]
            pose[Q_NORMAL : Q_NORMAL + 3] = st[S_TOOL_NORMAL : S_TOOL_NORMAL + 3]
            turned = np.zeros(N_POSE)
            _kernels._set_turn(pose, turned, u, angle)
            hand = st[S_DEVICE_DIR : S_DEVICE_DIR + 3]
            np.testing.assert_allclose(turned[Q_DIR : Q_DIR + 3], hand, atol=1e-9)
            if kind == KIND_BLADE:  # a blade's plane turns too
                normal = st[S_DEVICE_NORMAL : S_DEVICE_NORMAL + 3]
                np.testing.assert_allclose(turned[Q_NORMAL : Q_NORMAL + 3], normal, atol=1e-9)


def test_a_blocked_proxy_step_matches_its_naive_twin_and_slides_along_the_axis() -> None:
    # a step toward a candidate with more bone in the tool than the proxy allows: as far as
    # it goes straight, then on along the tool's axis (cylinders and blades), from the list
    # and from the grid alike; with the bone the shaft carried at o not counted against the
    # cutting zone, and with none carried
    rng = np.random.default_rng(17)
    density, _, label = random_grids(rng)
    work = new_work(40000)
    compared = slid = carried = 0
    for kind, spacing, tool, pose in cases(18):
        vox = spacing**3
        o = pose[Q_TIP : Q_TIP + 3] + rng.normal(0.0, 0.5, 3)
        c = o + _unit(rng.normal(size=3)) * spacing * rng.uniform(0.3, 1.0)
        at_o = round(naive.occupied(density, spacing, tool, pose, o) / vox)
        at_c = round(naive.occupied(density, spacing, tool, pose, c) / vox)
        if at_c <= at_o:
            continue  # c is free whenever o is: nothing blocks the step
        on_mm3 = (at_o + 0.5) * vox  # o free, c not; half a voxel from any count's volume
        n_on = _kernels._count_limit(vox, on_mm3)
        cut = float(tool[T_CUT_MM])
        shaft_o = round(naive.occupied_beyond(density, spacing, tool, pose, o, cut) / vox)
        listed = _kernels._gather(density, label, spacing, tool, pose, tuple(o), tuple(c), work)
        assert listed[0] >= 0
        steps = {}
        for held in sorted({0, shaft_o}):
            want = naive.blocked_step(
                density, spacing, tool, pose, o, c, on_mm3, _kernels.BISECTIONS, held
            )
            for counts in (listed, (-1, 0)):  # the tick's list; the grid when it overflowed
                got = _kernels._blocked_step(
                    density,
                    work,
                    counts,
                    spacing,
                    tool,
                    pose,
                    tuple(o),
                    tuple(c),
                    on_mm3,
                    n_on,
                    held,
                )
                np.testing.assert_allclose(got, want, atol=1e-9)
            steps[held] = want
        compared += 1
        carried += len(steps) == 2 and not np.allclose(steps[0], steps[shaft_o])
        # off the straight segment o..c: it slid along the axis
        rest = np.asarray(steps[0]) - o
        straight = c - o
        off = rest - (rest @ straight) / (straight @ straight) * straight
        if np.linalg.norm(off) > 1e-6:
            assert kind != KIND_SPHERE
            slid += 1
    assert compared > 25
    assert slid > 10
    assert carried > 3  # the bone the shaft carried changed where some steps went
