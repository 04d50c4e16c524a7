"""Whole-instrument physics, one cause at a time: a drill turned about its tip in a pedicle is
stopped by bone (the 6-DOF proxy), the session's deepest point survives withdrawal and
re-entry, a plunge is the real travel past the far cortex and its speed is recorded, and a
drill pushed with its power off makes no hole and is recorded as such."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from synthetic_cases import block_model, phantom_case

from sim_core.case.bundle import load_bundle
from sim_core.model import CaseModel, DeviceLimits, model_from_bundle
from sim_core.slots import (
    O_OCC_MM3,
    P_TORQUE_LIMIT_N_MM,
    R_TOTAL_MM3,
    S_ANGLE_GAP_RAD,
    S_DEEPEST_TIP,
    S_DEPTH_MAX_MM,
    S_DISPLAY_TORQUE,
    S_EXIT,
    S_HOLE_BONE_BINS,
    S_HOLE_DONE_BINS,
    S_INS_DEPTH_MAX_MM,
    S_INSERTIONS,
    S_OVERLAP,
    S_PLUNGE_MAX_MM,
    S_PLUNGE_SPEED_MAX_MM_S,
    S_POWER_OFF_PEAK_N,
    S_POWER_OFF_TICKS,
    S_REMOVED,
    S_TOOL,
    S_TORQUE,
    S_TORQUE_ABOVE_TICKS,
    S_TORQUE_PEAK_N_MM,
)
from sim_core.state import copy_state, make_state, state_hash
from sim_core.step import run, step
from sim_core.trajectories import Waypoint, rows_from_waypoints

DOWN = (0.0, 0.0, -1.0)


def _turned(v: np.ndarray, about: np.ndarray, deg: float) -> tuple[float, ...]:
    k = about / np.linalg.norm(about)
    a = np.radians(deg)
    out = v * np.cos(a) + np.cross(k, v) * np.sin(a) + k * np.dot(k, v) * (1 - np.cos(a))
    return tuple(float(x) for x in out)


@pytest.fixture(scope="module")
def pedicle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The lumbar phantom's pedicle scenario drilled along its plan to the target, power on."""
    case = phantom_case("lumbar", tmp_path_factory.mktemp("physics"))
    bundle = load_bundle(case)
    model = model_from_bundle(bundle, "pedicle_pilot_hole")
    entry, target = np.array(model.plan.entry_mm), np.array(model.plan.target_mm)
    axis = (target - entry) / np.linalg.norm(target - entry)
    feed_s = float(np.linalg.norm(target - entry)) / 2.0  # 2 mm/s
    ax = tuple(axis)
    rows = rows_from_waypoints(
        [
            Waypoint(0.0, tuple(entry - 10.0 * axis), ax, True),
            Waypoint(1.0, tuple(entry - 2.0 * axis), ax, True),
            Waypoint(1.0 + feed_s, tuple(target), ax, True),
            Waypoint(2.0 + feed_s, tuple(target), ax, True),
        ]
    )
    state = make_state(model)
    run(model, state, rows)
    return {"bundle": bundle, "model": model, "state": state, "axis": axis, "target": target}


def _pivot(model: CaseModel, drilled: Any, axis: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    # ±15° about the tip at the target, 1 s per swing, power on; worst overlap and torque
    side = np.cross(axis, [0.0, 0.0, 1.0])
    points = [Waypoint(0.0, tuple(target), tuple(axis), True)]
    for k, deg in enumerate((15.0, -15.0, 15.0, -15.0, 0.0)):
        points.append(Waypoint(1.0 + k, tuple(target), _turned(axis, side, deg), True))
    state = copy_state(drilled)
    removed_before = state.st[S_REMOVED + R_TOTAL_MM3]
    out: dict[str, Any] = {
        "occupied_max": 0.0,
        "torque_max": 0.0,
        "display_torque_max": 0.0,
        "gap_max": 0.0,
    }
    for row in rows_from_waypoints(points):
        step(model, state, row)
        out["occupied_max"] = max(out["occupied_max"], state.st[S_OVERLAP + O_OCC_MM3])
        torque = float(np.linalg.norm(state.st[S_TORQUE : S_TORQUE + 3]))
        shown = float(np.linalg.norm(state.st[S_DISPLAY_TORQUE : S_DISPLAY_TORQUE + 3]))
        out["torque_max"] = max(out["torque_max"], torque)
        out["display_torque_max"] = max(out["display_torque_max"], shown)
        out["gap_max"] = max(out["gap_max"], state.st[S_ANGLE_GAP_RAD])
    out["removed"] = state.st[S_REMOVED + R_TOTAL_MM3] - removed_before
    out["state"] = state
    return out


def test_a_drill_pivoted_about_its_tip_in_the_pedicle_is_stopped_by_bone(
    pedicle: dict[str, Any],
) -> None:
    model, drilled = pedicle["model"], pedicle["state"]
    np.testing.assert_allclose(drilled.st[S_TOOL : S_TOOL + 3], pedicle["target"], atol=0.1)
    out = _pivot(model, drilled, pedicle["axis"], pedicle["target"])
    # the 45 mm drill's shaft holds: it overlaps almost no intact bone (an 8 mm stub let the
    # turned shaft sweep through ~25 mm³ of it) and cuts none on the way
    assert out["occupied_max"] < 2.0
    assert out["removed"] < 1.0
    # the hand turned 15° away from the tool: the bone holds a torque, counted as levering
    assert out["gap_max"] > np.radians(14.0)
    assert out["torque_max"] > model.params[P_TORQUE_LIMIT_N_MM]
    st = out["state"].st
    assert st[S_TORQUE_PEAK_N_MM] == pytest.approx(out["torque_max"])
    assert st[S_TORQUE_ABOVE_TICKS] > 1000
    # a Touch-class device renders no torque: it is shown (S_TORQUE), not sent
    assert out["display_torque_max"] == 0.0


def test_a_torque_capable_device_gets_the_torque_clamped_to_its_limit(
    pedicle: dict[str, Any],
) -> None:
    limits = DeviceLimits(max_torque_n_mm=25.0)
    model = model_from_bundle(pedicle["bundle"], "pedicle_pilot_hole", device=limits)
    out = _pivot(model, pedicle["state"], pedicle["axis"], pedicle["target"])
    assert out["torque_max"] > 25.0
    assert out["display_torque_max"] == pytest.approx(25.0)


def _drill(x: float, depth_mm: float, t0: float, *, power: bool = True) -> list[Waypoint]:
    # down into the block's top (z 27.5) at (x, 12) to depth_mm, 2 mm/s, and back out
    top = 28.0
    feed = depth_mm / 2.0
    return [
        Waypoint(t0, (x, 12.0, top + 4.0), DOWN, power),
        Waypoint(t0 + 1.0, (x, 12.0, top + 0.5), DOWN, power),
        Waypoint(t0 + 1.0 + feed, (x, 12.0, top - depth_mm), DOWN, power),
        Waypoint(t0 + 1.5 + feed, (x, 12.0, top - depth_mm), DOWN, power),
        Waypoint(t0 + 2.5 + 2.0 * feed, (x, 12.0, top + 4.0), DOWN, power),
    ]


def test_withdrawing_and_entering_again_keeps_the_sessions_deepest_point() -> None:
    model = block_model("drill_2.5mm")
    state = make_state(model)
    first = _drill(12.0, 12.0, 0.0)
    second = _drill(18.0, 5.0, first[-1].t_s + 1.0)
    run(model, state, rows_from_waypoints(first + second))
    st = state.st
    assert st[S_INSERTIONS] == 2
    # the plan runs straight down from z 28 at (12, 12): the first hole is the deepest
    assert st[S_DEPTH_MAX_MM] == pytest.approx(12.0, abs=0.6)
    np.testing.assert_allclose(st[S_DEEPEST_TIP : S_DEEPEST_TIP + 3], (12.0, 12.0, 16.0), atol=0.6)
    assert st[S_INS_DEPTH_MAX_MM] == pytest.approx(5.0, abs=0.6)  # the last insertion's own


def _plunge(feed_mm_s: float) -> Any:
    # the same path for both speeds: drilled slowly to inside the far cortex (bone ends at
    # z 8), then 20 mm on at feed_mm_s, to the same final depth
    model = block_model("drill_2.5mm")
    state = make_state(model)
    at, end = (12.0, 16.0), 9.2 - 20.0
    rows = rows_from_waypoints(
        [
            Waypoint(0.0, (*at, 31.0), DOWN, True),
            Waypoint(22.0, (*at, 9.2), DOWN, True),
            Waypoint(22.0 + 20.0 / feed_mm_s, (*at, end), DOWN, True),
            Waypoint(23.0 + 20.0 / feed_mm_s, (*at, end), DOWN, True),
        ]
    )
    run(model, state, rows)
    return state.st, end


def test_a_plunge_is_the_real_travel_past_the_far_cortex_and_its_speed_is_recorded() -> None:
    fast, end = _plunge(10.0)
    slow, _ = _plunge(2.0)
    for st in (fast, slow):
        travel = st[S_EXIT + 2] - end  # from where the tip left bone to where it stopped
        assert travel > 15.0  # past the 8 mm the contact model used to end at
        assert st[S_PLUNGE_MAX_MM] == pytest.approx(travel, abs=0.1)
    assert fast[S_PLUNGE_MAX_MM] == pytest.approx(slow[S_PLUNGE_MAX_MM], abs=0.1)
    assert fast[S_PLUNGE_SPEED_MAX_MM_S] > 2.0 * slow[S_PLUNGE_SPEED_MAX_MM_S]
    assert fast[S_PLUNGE_SPEED_MAX_MM_S] >= 10.0


def test_a_drill_pushed_with_its_power_off_makes_no_hole_and_is_recorded() -> None:
    result = {}
    for power in (True, False):
        model = block_model("drill_2.5mm")
        state = make_state(model)
        run(model, state, rows_from_waypoints(_drill(12.0, 10.0, 0.0, power=power)))
        result[power] = state.st
    on, off = result[True], result[False]
    assert on[S_HOLE_DONE_BINS] / on[S_HOLE_BONE_BINS] > 0.6  # 10 of the plan's 14 mm
    assert on[S_POWER_OFF_TICKS] == 0
    assert off[S_REMOVED + R_TOTAL_MM3] == 0.0
    assert off[S_HOLE_DONE_BINS] == 0.0
    assert off[S_POWER_OFF_TICKS] > 1000  # pushed against the bone for seconds
    assert off[S_POWER_OFF_PEAK_N] > 3.0


def test_a_session_that_turns_the_tool_in_bone_replays_bit_for_bit(
    pedicle: dict[str, Any], tmp_path: Path
) -> None:
    model = pedicle["model"]
    first = _pivot(model, pedicle["state"], pedicle["axis"], pedicle["target"])["state"]
    again = _pivot(model, pedicle["state"], pedicle["axis"], pedicle["target"])["state"]
    assert state_hash(first) == state_hash(again)


def test_the_engine_loop_sends_the_torque_to_a_device_that_renders_torque(
    pedicle: dict[str, Any],
) -> None:
    from haptics.scripted import ScriptedDevice
    from haptics.servo import EngineServoLoop

    limits = DeviceLimits(max_torque_n_mm=25.0)
    model = model_from_bundle(pedicle["bundle"], "pedicle_pilot_hole", device=limits)
    axis, target = pedicle["axis"], pedicle["target"]
    side = np.cross(axis, [0.0, 0.0, 1.0])
    rows = rows_from_waypoints(
        [
            Waypoint(0.0, tuple(target), tuple(axis), True),
            Waypoint(0.5, tuple(target), _turned(axis, side, 10.0), True),
            Waypoint(0.6, tuple(target), _turned(axis, side, 10.0), True),
        ]
    )
    sent = {}
    for torque_limit in (0.0, 20.0):
        device = ScriptedDevice(rows, max_force_n=3.3, max_torque_n_mm=torque_limit)
        device.open()
        loop = EngineServoLoop(
            device, model, copy_state(pedicle["state"]), capacity_ticks=700, realtime=False
        )
        loop.start()
        assert loop.wait(20.0)
        # the last tick's torque, before stop() zeroes the device
        sent[torque_limit] = float(np.linalg.norm(device.channel.latest_torque()))
        loop.stop()
    # the engine's 25 N·mm is clamped again to what this device can render; a 3-DOF device
    # gets none
    assert sent[20.0] == pytest.approx(20.0)
    assert sent[0.0] == 0.0


def test_a_session_on_a_torque_device_replays_from_its_recording(
    pedicle: dict[str, Any], tmp_path: Path
) -> None:
    from sim_core.replay import play, replay_recording, write_recording

    limits = DeviceLimits(max_torque_n_mm=25.0)
    model = model_from_bundle(pedicle["bundle"], "pedicle_pilot_hole", device=limits)
    axis, target = pedicle["axis"], pedicle["target"]
    side = np.cross(axis, [0.0, 0.0, 1.0])
    rows = rows_from_waypoints(
        [
            Waypoint(0.0, tuple(target - 50.0 * axis), tuple(axis), True),
            Waypoint(2.0, tuple(target - 20.0 * axis), tuple(axis), True),
            Waypoint(3.0, tuple(target - 20.0 * axis), _turned(axis, side, 10.0), True),
        ]
    )
    _, result = play(model, rows)
    path = tmp_path / "torque.npz"
    case = Path(str(pedicle["bundle"].path))
    write_recording(path, model=model, rows=rows, result=result, case_path=case, device_name="t")
    out = replay_recording(path)
    # the device's torque limit is part of the model: recorded, so the replay rebuilds it
    assert out["reproduced"]
