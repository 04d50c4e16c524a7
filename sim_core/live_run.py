"""A live session in a window: a device drives the engine's 1 kHz loop, the view follows it.

``osteon sim run CASE --scenario NAME --device mouse|openhaptics|openvr`` lands here where
there is a display. The engine runs in `haptics.servo.EngineServoLoop` (compiled, its own
thread, no GIL); the Panda3D view runs in the main thread and, once per frame, reads the
engine's state (tool pose, force, the chunks it cut) and redraws. It never writes the state.
The session ends when the window closes, escape is pressed, ``max_seconds`` pass or the
loop's log is full; its inputs replay bit for bit (`sim_core.replay.play`).

Limitation: the window shares this process. Mouse and OpenVR input only need a pose per
frame, but an OpenHaptics arm's scheduler callback is Python that needs the GIL every 1 ms,
which the view's drawing and remeshing hold for milliseconds: that arm will feel jittery
until the view moves to its own process (as `sim_core.view.live_offscreen` does offscreen).

Device frame to case frame: the device's rest tool axis (-z) turns onto the plan's axis and
the device origin sits ``STANDOFF_MM`` before the plan's entry, so a device at rest holds the
tool just outside the bone, pointing along the plan.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sim_core.model import CaseModel
from sim_core.slots import DT_S, S_DIR, S_FORCE, S_TICK, S_TOOL
from sim_core.state import SimState, make_state, state_hash

STANDOFF_MM = 5.0
SESSION_CAPACITY_TICKS = 1_800_000  # 30 min at 1 kHz (29 MB of inputs)


class LiveRunError(Exception):
    """A live session could not start or did not replay; the message is one sentence."""


@dataclass(frozen=True)
class LiveRun:
    state: SimState
    inputs: npt.NDArray[np.float64]  # TickInput rows, case frame, one per tick run
    loop_stats: dict[str, Any]
    frames: int


def device_mapping(model: CaseModel) -> Any:
    """`WorldFromDevice` putting the device's rest pose just before the plan's entry."""
    from haptics.orientation import matrix_from_quaternion, quaternion_from_axis
    from haptics.servo import WorldFromDevice

    axis = np.asarray(model.plan.axis, dtype=np.float64)
    rotation = matrix_from_quaternion(quaternion_from_axis(axis))
    origin = np.asarray(model.plan.entry_mm, dtype=np.float64) - STANDOFF_MM * axis
    r = [(float(row[0]), float(row[1]), float(row[2])) for row in rotation]
    return WorldFromDevice(
        rotation=(r[0], r[1], r[2]),
        translation_mm=(float(origin[0]), float(origin[1]), float(origin[2])),
    )


def run_live(
    case_dir: Path,
    model: CaseModel,
    device: Any,
    *,
    max_seconds: float | None = None,
    size: tuple[int, int] = (1280, 800),
    before_run: Callable[[Any], None] | None = None,
) -> LiveRun:
    """Open ``device`` (a `HapticDevice`, not yet open), a window, and run until it ends.

    before_run: called with the view just before its main loop starts (tests inject
    input events through it).
    """
    from haptics.device import DeviceUnavailableError
    from haptics.mouse import MouseKeyboardDevice
    from haptics.servo import EngineServoLoop
    from sim_core.case.bundle import load_bundle
    from sim_core.view.scene_view import SceneView
    from sim_core.view.snapshot import ViewSnapshot

    try:
        device.open()
    except DeviceUnavailableError as exc:
        raise LiveRunError(str(exc)) from exc
    state = make_state(model)
    loop = EngineServoLoop(
        device,
        model,
        state,
        world_from_device=device_mapping(model),
        capacity_ticks=SESSION_CAPACITY_TICKS,
    )
    view = SceneView(offscreen=False, size=size)
    frames = 0
    try:
        view.setup_case(
            load_bundle(case_dir),
            density=state.density,
            trajectory=(model.plan.entry_mm, model.plan.target_mm),
        )
        if isinstance(device, MouseKeyboardDevice):
            device.attach(view)
        loop.start()
        started = time.monotonic()
        st = state.st

        def follow(task: Any) -> Any:
            # once per frame: show the engine as it stands; end when the session does
            nonlocal frames
            flagged = [tuple(int(c) for c in idx) for idx in np.argwhere(state.dirty > 0)]
            for idx in flagged:
                state.dirty[idx] = 0  # first: a cut made meanwhile flags its chunk again
            view.show_snapshot(
                ViewSnapshot(
                    tick=int(st[S_TICK]),
                    tool_tip_mm=(float(st[S_TOOL]), float(st[S_TOOL + 1]), float(st[S_TOOL + 2])),
                    tool_axis=(float(st[S_DIR]), float(st[S_DIR + 1]), float(st[S_DIR + 2])),
                    tool_radius_mm=max(model.instrument.radius_mm, 0.1),
                    tool_kind=model.instrument.kind,
                    force_n=(float(st[S_FORCE]), float(st[S_FORCE + 1]), float(st[S_FORCE + 2])),
                    force_limit_n=model.scenario.force_limit_n,
                    elapsed_s=float(st[S_TICK]) * DT_S,
                    removed_chunks=tuple(flagged),  # type: ignore[arg-type]
                )
            )
            frames += 1
            over = max_seconds is not None and time.monotonic() - started >= max_seconds
            if over or not loop.running:
                view.task_mgr.stop()
            return task.cont

        view.task_mgr.add(follow, "osteon-live-follow", sort=10)
        if before_run is not None:
            before_run(view)
        view.run()
    finally:
        # flag, join, zero force, close the device; then the window
        try:
            stats = loop.stop()
        finally:
            view.destroy()
    return LiveRun(state, loop.recorded_inputs(), stats.as_dict(), frames)


def replayed_result(model: CaseModel, live: LiveRun) -> Any:
    """Replay the live session's inputs headless; `LiveRunError` unless it matches bit for bit."""
    from sim_core.replay import play

    _, result = play(model, live.inputs)
    if result.state_hash != state_hash(live.state):
        raise LiveRunError(
            "实时会话重放不一致 / the live session did not replay bit for bit "
            f"({result.state_hash} != {state_hash(live.state)})"
        )
    return result
