"""The tick's voxel list gives the grid scan's results bit for bit, and overflows safely."""

import math

import numpy as np
import pytest
from synthetic_cases import block_model
from test_kernels import cases, random_grids

from sim_core import _kernels
from sim_core.bench_cases import contact_rows
from sim_core.slots import N_OVERLAP, N_REMOVED, N_WORK_MIN, N_WORK_ROWS, Q_TIP
from sim_core.state import make_state, new_work, state_hash
from sim_core.step import run


def _step_segment(rng: np.random.Generator, pose: np.ndarray, spacing: float) -> tuple:
    # a proxy step: from o to a candidate at most a voxel away, as _move_proxy takes it
    o = pose[Q_TIP : Q_TIP + 3] + rng.normal(0.0, 1.0, 3)
    step = rng.normal(size=3)
    c = o + step / np.linalg.norm(step) * spacing * rng.uniform(0.0, 1.0)
    return tuple(float(v) for v in o), tuple(float(v) for v in c)


def test_list_counts_and_sums_equal_the_grid_scan() -> None:
    rng = np.random.default_rng(21)
    density, density0, label = random_grids(rng)
    density0 = np.maximum(density0, density)
    work = new_work(20000)
    compared = 0
    for _kind, spacing, tool, pose in cases(22):
        vox = spacing * spacing * spacing  # as the tick computes it (spacing**3 may differ)
        o, c = _step_segment(rng, pose, spacing)
        listed = _kernels._gather(density, label, spacing, tool, pose, o, c, work)
        assert listed[0] >= 0
        for mid in (0.0, 0.25, 0.5, 0.8125, 1.0):
            t = tuple(a + mid * (b - a) for a, b in zip(o, c, strict=True))
            pose_t = pose.copy()
            pose_t[Q_TIP : Q_TIP + 3] = t
            # occupancy against a limit: the proxy's question
            full = _kernels._occupied(density, spacing, tool, pose, *t, math.inf)
            for limit in (0.0, 0.5 * full, full, 1.5 * full + 0.01):
                n_limit = _kernels._count_limit(vox, limit)
                free = _kernels._free_at(
                    density, work, listed, spacing, tool, pose, t, limit, n_limit
                )
                assert free == (full <= limit)
            # overlap: every slot identical, not merely close
            want = np.zeros(N_OVERLAP)
            got = np.zeros(N_OVERLAP)
            _kernels._overlap(density, label, spacing, tool, pose_t, want)
            _kernels._overlap_list(work, listed, vox, tool, pose_t, got)
            assert np.array_equal(got, want)
            compared += want[0] > 0
        # erosion at the candidate: the same voxels lowered by the same amount, same totals
        pose_c = pose.copy()
        pose_c[Q_TIP : Q_TIP + 3] = c
        amount = float(rng.uniform(0.001, 0.5))
        grid_a, grid_b = density.copy(), density.copy()
        removed_a, removed_b = np.zeros(N_REMOVED), np.zeros(N_REMOVED)
        erode = _kernels._erode
        want_total = erode(grid_a, density0, label, spacing, tool, pose_c, amount, removed_a)
        erode_list = _kernels._erode_list
        got_total = erode_list(
            grid_b, density0, work, listed[0], vox, tool, pose_c, amount, removed_b
        )
        assert got_total == want_total
        assert np.array_equal(grid_a, grid_b)
        assert np.array_equal(removed_a, removed_b)
    assert compared > 100  # the random steps do reach the voxels


def test_a_list_that_would_overflow_is_refused() -> None:
    rng = np.random.default_rng(23)
    density, _, label = random_grids(rng)
    density[:] = 1.0
    _kind, spacing, tool, pose = cases(24)[0]  # a sphere
    pose[Q_TIP : Q_TIP + 3] = np.array(density.shape) * spacing / 2
    tip = tuple(float(v) for v in pose[Q_TIP : Q_TIP + 3])
    for capacity in (N_WORK_MIN, 2):  # room for a few voxels; for none, not even the handoff
        work = np.zeros((N_WORK_ROWS, capacity))
        assert _kernels._gather(density, label, spacing, tool, pose, tip, tip, work) == (-1, 0)


@pytest.mark.parametrize("instrument", ["burr_sphere_6mm", "saw_oscillating_10mm", "drill_3.2mm"])
def test_a_run_with_no_room_for_the_list_ends_in_the_same_state(instrument: str) -> None:
    # with a list too small for any tick every step scans the grid: the state must not differ
    model = block_model(instrument)
    rows = contact_rows(model, 1500)
    listed = make_state(model)
    scanned = make_state(model)
    scanned.work = np.zeros((N_WORK_ROWS, 16))
    run(model, listed, rows)
    run(model, scanned, rows)
    assert state_hash(listed) == state_hash(scanned)
    assert listed.st.tolist() == scanned.st.tolist()
    assert state_hash(listed) != state_hash(make_state(model))  # the tool did cut


def test_a_work_array_too_small_for_the_tick_is_refused() -> None:
    model = block_model("burr_sphere_4mm")
    state = make_state(model)
    with pytest.raises(ValueError, match="at least"):
        new_work(N_WORK_MIN - 1)
    state.work = np.zeros((N_WORK_ROWS, N_WORK_MIN - 1))
    with pytest.raises(ValueError, match="work array too small"):
        run(model, state, contact_rows(model, 5))
