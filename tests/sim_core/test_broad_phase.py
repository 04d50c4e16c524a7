"""The broad phase (occupied column ranges, row-by-row column bounds) and the list gathered
for the next tick change how fast a tick runs, never what it computes: compared with the
plain grid scans on random grids and with sessions that never keep or skip anything."""

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from synthetic_cases import block_model
from test_kernels import cases, random_grids

from sim_core import _kernels
from sim_core.bench_cases import TOP_Z_MM
from sim_core.model import CaseModel, occupied_columns
from sim_core.slots import (
    I_BUTTONS,
    N_OVERLAP,
    N_WORK_ROWS,
    NEXT_VALID,
    Q_TIP,
    T_LENGTH_MM,
    W_NEXT,
)
from sim_core.state import copy_state, make_state, new_work, restore_state, state_hash
from sim_core.step import run
from sim_core.trajectories import Waypoint, rows_from_waypoints

# compiled kernels: mypy sees a numba Dispatcher, whose stub takes fewer arguments
OCCUPIED: Any = _kernels._occupied
OCCUPIED_IN: Any = _kernels._occupied_in


def test_occupied_columns_are_each_columns_first_and_last_occupied_voxel() -> None:
    rng = np.random.default_rng(3)
    _, density0, label = random_grids(rng)
    label[rng.random(label.shape) < 0.8] = 0
    density0[rng.random(label.shape) < 0.8] = 0.0
    label[2, 3, :] = 0
    density0[2, 3, :] = 0.0  # an empty column
    got = occupied_columns(density0, label)
    for i in range(label.shape[0]):
        for j in range(label.shape[1]):
            ks = [k for k in range(label.shape[2]) if label[i, j, k] or density0[i, j, k] > 0]
            want = (ks[0], ks[-1] + 1) if ks else (0, 0)
            assert tuple(got[i, j]) == want
    assert tuple(got[2, 3]) == (0, 0)


def _long(tool: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # some tools far longer than the grid, as a 230 mm guide wire is than the bone
    tool = tool.copy()
    if tool[T_LENGTH_MM] > 0.0 and rng.random() < 0.5:
        tool[T_LENGTH_MM] = rng.uniform(30.0, 250.0)
    return tool


def test_the_broad_phase_lists_what_the_grid_scan_counts() -> None:
    # sparse bone: most of each column is air with no label, which the broad phase skips
    rng = np.random.default_rng(31)
    density, density0, label = random_grids(rng)
    sparse = rng.random(label.shape) < 0.7
    label[sparse] = 0
    density0[sparse] = 0.0
    density[sparse] = 0.0
    columns = occupied_columns(density0, label)
    work = new_work(40000)
    compared = 0
    for _kind, spacing, tool, pose in cases(32):
        tool = _long(tool, rng)
        vox = spacing * spacing * spacing
        o = tuple(float(v) for v in pose[Q_TIP : Q_TIP + 3] + rng.normal(0.0, 1.0, 3))
        step = rng.normal(size=3)
        c = tuple(a + b for a, b in zip(o, step / np.linalg.norm(step) * spacing, strict=True))
        extra = float(rng.uniform(0.0, spacing))
        gather = _kernels._gather_in
        listed = gather(density, label, columns, spacing, tool, pose, o, c, extra, work)
        assert listed[0] >= 0
        for mid in (0.0, 0.5, 1.0):
            t = tuple(a + mid * (b - a) for a, b in zip(o, c, strict=True))
            pose_t = pose.copy()
            pose_t[Q_TIP : Q_TIP + 3] = t
            want = np.zeros(N_OVERLAP)
            got = np.zeros(N_OVERLAP)
            _kernels._overlap(density, label, spacing, tool, pose_t, want)  # the plain scan
            _kernels._overlap_list(work, listed, vox, tool, pose_t, got)
            assert np.array_equal(got, want)
            full = OCCUPIED(density, spacing, tool, pose, *t, math.inf)
            skipped = OCCUPIED_IN(density, columns, spacing, tool, pose, *t, math.inf)
            assert skipped == full
            compared += want[0] > 0
    assert compared > 30


def _session_rows(model: CaseModel, seconds: float, seed: int) -> np.ndarray:
    # a hand that drills into the block, turns about the tip, pulls out and goes in again
    rng = np.random.default_rng(seed)
    points = [Waypoint(0.0, (12.0, 12.0, TOP_Z_MM + 5.0), (0.0, 0.0, -1.0), True)]
    t = 0.0
    while t < seconds:
        t += float(rng.uniform(0.05, 0.4))
        tip = (
            12.0 + rng.normal(0.0, 2.0),
            12.0 + rng.normal(0.0, 2.0),
            TOP_Z_MM - rng.uniform(-3.0, 6.0),
        )
        axis = np.array([0.0, 0.0, -1.0]) + rng.normal(0.0, 0.25, 3)
        axis /= np.linalg.norm(axis)
        points.append(Waypoint(t, tip, tuple(float(a) for a in axis), bool(rng.random() < 0.8)))
    return rows_from_waypoints(points)


@pytest.mark.parametrize("instrument", ["guide_wire_3.2mm", "drill_3.2mm", "burr_sphere_4mm"])
def test_a_session_ends_as_it_does_with_no_list_kept_and_no_column_skipped(
    instrument: str,
) -> None:
    model = block_model(instrument)
    plain = replace(model, columns=np.array(model.columns))  # every column as occupied...
    plain.columns[..., 0] = 0
    plain.columns[..., 1] = model.shape[2]  # ...over its whole height: nothing skipped
    rows = _session_rows(model, 4.0, seed=len(instrument))
    fast = make_state(model)
    run(model, fast, rows)
    # no room for a list: every count scans the grid, nothing is kept for the next tick
    scanned = make_state(model)
    scanned.work = np.zeros((N_WORK_ROWS, 16))
    run(plain, scanned, rows)
    # the list, but gathered afresh each tick (one tick per call, the kept list thrown away)
    fresh = make_state(model)
    for row in rows:
        fresh.work[W_NEXT, NEXT_VALID] = 0.0
        run(plain, fresh, row[None, :])
    assert state_hash(fast) == state_hash(scanned) == state_hash(fresh)
    assert fast.st.tolist() == scanned.st.tolist() == fresh.st.tolist()
    assert state_hash(fast) != state_hash(make_state(model))  # it did cut


def test_a_state_restored_from_another_session_does_not_use_the_kept_list() -> None:
    # two sessions reach the same tick with the tool at the same place, one having cut and
    # one not; restoring the other's state must not let the next tick count from the list
    # the first one kept
    model = block_model("drill_3.2mm")
    rows = _session_rows(model, 1.5, seed=5)
    off = rows.copy()
    off[:, I_BUTTONS] = 0.0  # the power off
    cut = make_state(model)
    run(model, cut, rows)
    idle = make_state(model)
    run(model, idle, off)
    assert state_hash(cut) != state_hash(idle)
    saved = copy_state(idle)
    restore_state(cut, saved)
    more = _session_rows(model, 1.0, seed=6)
    run(model, cut, more)
    run(model, idle, more)
    assert state_hash(cut) == state_hash(idle)
