"""The engine step on a synthetic bone block: determinism, proxy, erosion, plunge, saw, clamps."""

import numpy as np
import pytest
from numba.core.runtime import _nrt_python, rtsys
from synthetic_cases import block_model

from sim_core.model import DeviceLimits
from sim_core.slots import (
    I_SPEED,
    N_TICK,
    O_OCC_MM3,
    P_SPRING_SAT_N,
    R_PROTECTED_MM3,
    R_TARGET_MM3,
    R_TOTAL_MM3,
    S_DISPLAY,
    S_FORCE,
    S_NERVE_EVENTS,
    S_NERVE_TICKS,
    S_OVERLAP,
    S_PEAK_FORCE_N,
    S_PLUNGE_MAX_MM,
    S_PLUNGES,
    S_PROXY_ON,
    S_REMOVED,
    S_TICK,
    S_TOOL,
)
from sim_core.state import copy_state, make_state, restore_state, state_hash
from sim_core.step import as_records, input_rows, run, step
from sim_core.trajectories import Waypoint, rows_from_waypoints

DOWN = (0.0, 0.0, -1.0)
TOP_Z_MM = 27.5  # highest bone voxel centre of the block (k = 55)


def plunge_down(z_end: float, seconds: float, *, power: bool, x: float = 12.0) -> np.ndarray:
    return rows_from_waypoints(
        [
            Waypoint(0.0, (x, 12.0, 34.0), DOWN, power),
            Waypoint(seconds, (x, 12.0, z_end), DOWN, power),
        ]
    )


def test_same_inputs_from_a_saved_state_give_bit_identical_states() -> None:
    model = block_model()
    state = make_state(model)
    run(model, state, plunge_down(22.0, 1.0, power=True)[:400])
    saved = copy_state(state)
    more = plunge_down(20.0, 1.5, power=True)[400:1500]
    run(model, state, more)
    first = copy_state(state)
    restore_state(state, saved)
    for row in more:
        step(model, state, row)
    assert np.array_equal(first.density, state.density)
    assert np.array_equal(first.st, state.st)
    assert state_hash(first) == state_hash(state)


def test_the_tool_cannot_be_pushed_through_intact_bone() -> None:
    model = block_model("burr_sphere_4mm")
    state = make_state(model)
    run(model, state, plunge_down(4.0, 2.0, power=False))  # device ends under the block
    tool_z = state.st[S_TOOL + 2]
    assert state.st[S_PROXY_ON] == 1.0
    assert tool_z > TOP_Z_MM - 2.0  # held at the surface, not inside
    # the spring pulls the hand back up, saturated at the device's force (plus the overlap)
    assert state.st[S_FORCE + 2] > model.params[P_SPRING_SAT_N]
    assert state.st[S_REMOVED + R_TOTAL_MM3] == 0.0  # unpowered: nothing cut


def test_display_force_is_clamped_to_the_device_and_its_stiffness() -> None:
    limits = DeviceLimits(max_force_n=2.5, max_stiffness_n_per_mm=0.5)
    model = block_model("burr_sphere_4mm", device=limits)
    state = make_state(model)
    rows = plunge_down(4.0, 2.0, power=False)
    peak_display = 0.0
    for row in rows:
        step(model, state, row)
        display = state.st[S_DISPLAY : S_DISPLAY + 3]
        physical = state.st[S_FORCE : S_FORCE + 3]
        peak_display = max(peak_display, float(np.linalg.norm(display)))
        if np.linalg.norm(physical) * 0.5 < 2.5:  # within the device's range: scaled only
            np.testing.assert_allclose(display, 0.5 * physical, atol=1e-12)
    assert peak_display == pytest.approx(2.5)
    # the physical force is scored unclamped: its spring saturates at the device's force in
    # physical units (2.5 N / 0.5), the overlap force comes on top
    assert state.st[S_PEAK_FORCE_N] > 2.5 / 0.5


def test_erosion_grows_with_tool_speed() -> None:
    removed = []
    for speed in (0.25, 1.0):
        model = block_model("burr_sphere_4mm")
        state = make_state(model)
        rows = plunge_down(24.0, 2.0, power=True)
        rows[:, I_SPEED] *= speed
        run(model, state, rows)
        removed.append(state.st[S_REMOVED + R_TOTAL_MM3])
    assert 0 < removed[0] < 0.6 * removed[1]


def test_a_powered_burr_removes_bone_and_books_it_by_zone() -> None:
    model = block_model("burr_sphere_4mm")
    state = make_state(model)
    run(model, state, plunge_down(18.0, 8.0, power=True))
    st = state.st
    assert st[S_REMOVED + R_TOTAL_MM3] > 100.0
    assert st[S_REMOVED + R_TARGET_MM3] > 50.0
    assert st[S_REMOVED + R_PROTECTED_MM3] > 0.0  # the protected sphere sits under the target
    # what the accounts say was removed is what left the grid
    lost = (model.density0 - state.density)[model.density0 > 0] / model.density0[model.density0 > 0]
    assert float(lost.sum()) * 0.125 == pytest.approx(st[S_REMOVED + R_TOTAL_MM3], rel=1e-6)
    assert state.dirty.any()


def test_a_drill_pushed_hard_plunges_when_the_far_cortex_gives_way() -> None:
    plunges = {}
    for name, seconds in (("slow", 30.0), ("hard", 12.0)):
        model = block_model("drill_2.5mm")
        state = make_state(model)
        # through the whole block (bone z 8..28 mm) to 3 mm under it, then hold
        rows = rows_from_waypoints(
            [
                Waypoint(0.0, (12.0, 12.0, 32.0), DOWN, True),
                Waypoint(seconds, (12.0, 12.0, 3.0 if name == "hard" else 7.5), DOWN, True),
                Waypoint(seconds + 3.0, (12.0, 12.0, 3.0 if name == "hard" else 7.5), DOWN, True),
            ]
        )
        run(model, state, rows)
        plunges[name] = (state.st[S_PLUNGE_MAX_MM], state.st[S_PLUNGES])
    assert plunges["hard"][0] > 2.0 and plunges["hard"][1] >= 1
    assert plunges["slow"][0] < plunges["hard"][0]


def test_touching_a_nerve_counts_a_contact_event_and_its_duration() -> None:
    model = block_model("burr_sphere_2mm")
    state = make_state(model)
    # beside the block, down onto the nerve that runs under it (y 12, z 5)
    rows = rows_from_waypoints(
        [
            Waypoint(0.0, (0.5, 12.0, 14.0), DOWN),
            Waypoint(1.0, (0.5, 12.0, 6.0), DOWN),
            Waypoint(1.5, (0.5, 12.0, 6.0), DOWN),
            Waypoint(2.0, (0.5, 12.0, 14.0), DOWN),
        ]
    )
    run(model, state, rows)
    assert state.st[S_NERVE_EVENTS] == 1.0
    assert 500 < state.st[S_NERVE_TICKS] < 1500


def test_a_saw_cuts_a_thin_kerf_along_its_blade_plane() -> None:
    model = block_model("saw_oscillating_10mm")
    state = make_state(model)
    normal = (1.0, 0.0, 0.0)  # blade in the y-z plane at x = 12 mm
    rows = rows_from_waypoints(
        [
            Waypoint(0.0, (12.0, 12.0, 32.0), DOWN, True),
            Waypoint(10.0, (12.0, 12.0, 22.0), DOWN, True),
        ],
        normal=normal,
    )
    run(model, state, rows)
    cut = np.argwhere(state.density < model.density0)
    assert len(cut) > 50
    assert np.all(np.abs(cut[:, 0] * 0.5 - 12.0) <= 0.5)  # within a voxel of the plane
    assert np.ptp(cut[:, 1]) * 0.5 >= 8.0  # across the blade's width


def test_pushing_a_saw_sideways_in_its_kerf_meets_resistance() -> None:
    model = block_model("saw_oscillating_10mm")
    state = make_state(model)
    normal = (1.0, 0.0, 0.0)
    rows = rows_from_waypoints(
        [
            Waypoint(0.0, (12.0, 12.0, 32.0), DOWN, True),
            Waypoint(8.0, (12.0, 12.0, 24.0), DOWN, True),
            Waypoint(9.0, (14.0, 12.0, 24.0), DOWN, False),
        ],
        normal=normal,
    )
    run(model, state, rows)
    assert state.st[S_FORCE] < -1.0  # pushed +x, the kerf wall pushes back along -x
    assert state.st[S_TOOL] < 13.0


def test_ticks_allocate_nothing() -> None:
    # the only allocations are the array handles made once per call into compiled code
    model = block_model("burr_sphere_4mm")
    state = make_state(model)
    rows = plunge_down(20.0, 0.5, power=True)
    run(model, state, rows[:1])  # warm
    _nrt_python.memsys_enable_stats()
    counts = []
    for chunk in (rows[1:11], rows[11:]):
        before = rtsys.get_allocation_stats().alloc
        run(model, state, chunk)
        counts.append(rtsys.get_allocation_stats().alloc - before)
    assert counts[0] == counts[1]  # 10 ticks or 490: the same handful
    assert state.st[S_OVERLAP + O_OCC_MM3] > 0  # it did work in contact
    assert state.st[S_TICK] == len(rows)


def test_inputs_round_trip_through_tick_input_records() -> None:
    rows = plunge_down(20.0, 0.1, power=True)
    records = as_records(rows)
    assert records.dtype.names is not None and len(records.dtype.names) == N_TICK
    assert np.array_equal(input_rows(records), rows)
    with pytest.raises(ValueError, match="float64"):
        input_rows(np.zeros((3, 5)))
    bad = rows.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        input_rows(bad)
