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
    S_BREACH_EVENTS,
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


def _drifting_plunge(feed_mm_s: float) -> Any:
    # the same path for both speeds: drilled slowly to inside the far cortex (bone ends at
    # z 8, its last voxels span z 7.75..8.25), then on to 20 mm past z 8 at feed_mm_s, the
    # hand drifting 1 mm sideways on the way (2.9°, its axis still straight down): the
    # shaft, held across its axis by its own hole, must still run on along it
    model = block_model("drill_2.5mm")
    state = make_state(model)
    at, end = (12.0, 16.0), 8.0 - 20.0
    rows = rows_from_waypoints(
        [
            Waypoint(0.0, (*at, 31.0), DOWN, True),
            Waypoint(22.0, (*at, 9.2), DOWN, True),
            Waypoint(22.0 + 20.0 / feed_mm_s, (at[0] + 1.0, at[1], end), DOWN, True),
            Waypoint(23.0 + 20.0 / feed_mm_s, (at[0] + 1.0, at[1], end), DOWN, True),
        ]
    )
    run(model, state, rows)
    return state.st, end


@pytest.mark.parametrize("feed_mm_s", [10.0, 2.0])
def test_after_breakthrough_the_drill_plunges_as_far_as_the_hand_pushes(feed_mm_s: float) -> None:
    st, end = _drifting_plunge(feed_mm_s)
    tip = st[S_TOOL : S_TOOL + 3]
    # the tip followed the hand down the axis to its end, staying in its hole across it
    assert tip[2] == pytest.approx(end, abs=0.01)
    assert abs(tip[0] - 12.0) <= 0.5
    # the exit is where the tip's nearest voxel first was air: past the cortex's last voxel
    # (z 7.75) by less than a tick's step (at most a voxel, 0.5 mm)
    exit_z = st[S_EXIT + 2]
    assert 7.25 < exit_z < 7.75
    # so the plunge is the tip's whole travel past that exit: the 19.75 mm the hand went past
    # the bone less that step (engine 2 stopped the whole step when the shaft could not follow
    # the drift: 3.6 mm at 10 mm/s)
    assert st[S_PLUNGE_MAX_MM] == pytest.approx(exit_z - end, abs=0.01)
    assert st[S_PLUNGE_MAX_MM] > 19.25
    assert st[S_BREACH_EVENTS] == 1


def test_a_drifting_plunge_at_another_speed_has_the_same_travel_and_another_speed() -> None:
    fast, _ = _drifting_plunge(10.0)
    slow, _ = _drifting_plunge(2.0)
    # the same whole travel past the exit (not the same stop short of it) ...
    assert slow[S_PLUNGE_MAX_MM] > 19.25
    assert fast[S_PLUNGE_MAX_MM] == pytest.approx(slow[S_PLUNGE_MAX_MM], abs=0.05)
    # ... at the speed the hand pushed
    assert fast[S_PLUNGE_SPEED_MAX_MM_S] > 2.0 * slow[S_PLUNGE_SPEED_MAX_MM_S]
    assert fast[S_PLUNGE_SPEED_MAX_MM_S] >= 9.0


def _through_the_bottom(y: float, t0: float) -> list[Waypoint]:
    # a hole tilted 20° through the whole block and 4 mm out of its far (bottom) face at
    # 1 mm/s, a dwell, and back out along the same line
    tilt = np.radians(20.0)
    d = np.array([np.sin(tilt), 0.3 * np.sin(tilt), -np.cos(tilt)])
    d /= np.linalg.norm(d)
    top = np.array([12.0, y, 28.0])
    start, end = top - 4.0 * d, top + (20.0 / -d[2] + 4.0) * d
    ax = tuple(d)
    feed_s = float(np.linalg.norm(end - top))
    return [
        Waypoint(t0, tuple(start), ax, True),
        Waypoint(t0 + 1.0, tuple(top - 0.5 * d), ax, True),
        Waypoint(t0 + 1.0 + feed_s, tuple(end), ax, True),
        Waypoint(t0 + 2.0 + feed_s, tuple(end), ax, True),
        Waypoint(t0 + 7.0 + feed_s, tuple(start), ax, True),
        Waypoint(t0 + 8.0 + feed_s, tuple(start), ax, True),
    ]


def test_withdrawing_through_a_breach_is_not_a_new_breach() -> None:
    model = block_model("drill_2.5mm")
    state = make_state(model)
    first = _through_the_bottom(16.0, 0.0)
    second = _through_the_bottom(6.0, first[-1].t_s + 1.0)  # 10 mm beside the first
    rows = rows_from_waypoints(first + second)
    out_at = int(first[3].t_s * 1000)  # the first hole drilled, the tip 4 mm out of the bone
    back_at = int(first[-1].t_s * 1000)  # and pulled back out of the block
    run(model, state, rows[:out_at])
    assert state.st[S_BREACH_EVENTS] == 1  # through the far cortex: one breach
    run(model, state, rows[out_at:back_at])
    # back through the far cortex and out of the entry the same way: no new breach
    # (engine 2 counted 16 more: every other tick while the tip, backing out, was past the
    # exit point and the tilted tool still touched bone)
    np.testing.assert_allclose(state.st[S_TOOL : S_TOOL + 3], first[-1].pos_mm, atol=0.01)
    assert state.st[S_BREACH_EVENTS] == 1
    run(model, state, rows[back_at:])
    # a second hole elsewhere through the far cortex is a second breach, and only that
    assert state.st[S_BREACH_EVENTS] == 2


def test_a_guide_wire_pushed_through_the_femoral_head_drills_on_into_the_acetabulum(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # the catalog's plunge on the hip phantom: along the plan to 20 mm past the target at
    # 10 mm/s. Past the head's far cortex lie 2 mm of joint space, then the acetabulum: the
    # powered wire crosses the gap and drills on into it as far as the hand pushes. Engine 2
    # stalled in the gap for good (its cutting zone short of the acetabulum, the shaft
    # carrying a proxy limit's worth of partly cut cortex from the head, so any more bone
    # stopped the step and there was nothing left to cut)
    from sim_core.trajectories import bad_technique_rows

    case = phantom_case("hip", tmp_path_factory.mktemp("hip"))
    model = model_from_bundle(load_bundle(case), "femoral_neck_guide_wire")
    plan = model.plan
    entry, axis = np.asarray(plan.entry_mm), plan.axis
    rows = bad_technique_rows(model, "plunge")
    hand_depth = rows[:, 1:4] @ axis - entry @ axis
    pushed = int(np.argmax(hand_depth)) + 1  # to where the hand is deepest, before the dwell
    state = make_state(model)
    run(model, state, rows[: pushed + 1000])
    st = state.st
    tip_depth = float((st[S_TOOL : S_TOOL + 3] - entry) @ axis)
    assert hand_depth.max() == pytest.approx(plan.length_mm + 20.0)
    assert tip_depth == pytest.approx(hand_depth.max(), abs=0.1)
    # the bone at that depth is the acetabulum's (beyond the head and the gap)
    exit_depth = float((st[S_EXIT : S_EXIT + 3] - entry) @ axis)
    assert tip_depth > exit_depth + 10.0
    assert 0.5 < st[S_PLUNGE_MAX_MM] < 3.0  # the run across the joint space
    assert st[S_BREACH_EVENTS] == 1


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
