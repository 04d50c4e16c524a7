"""A live session in a window: a device drives the engine's 1 kHz loop, the view follows it.

``osteon sim run CASE --scenario NAME --device mouse|openhaptics|openvr`` lands here where
there is a display. The engine runs in `haptics.servo.EngineServoLoop` (compiled, its own
thread, no GIL). The Panda3D window follows it, reading the engine's state (tool pose,
force, peak force, the chunks it cut) about 60 times a second; it never writes the state.
The session ends when the window closes, escape is pressed, ``max_seconds`` pass or the
loop's log is full; its inputs replay bit for bit (`sim_core.replay.play`).

Where the window runs: an OpenHaptics arm's scheduler callback is Python that needs the GIL
every 1 ms, which drawing and remeshing would hold for milliseconds. So for OpenHaptics and
OpenVR the window runs in its own process (`sim_core.view.live_offscreen`, windowed), with
the density grid in shared memory; this process keeps only the device, the compiled loop
and a main thread that, once per frame, copies the flagged chunks into shared memory and
sends a small snapshot down a pipe. The mouse device reads the window's own key and pointer
events, so its window stays in this process (its pose needs no GIL-bound callback).

Device frame to case frame: the device's rest tool axis (-z) turns onto the plan's axis and
the device origin sits ``STANDOFF_MM`` before the plan's entry, so a device at rest holds the
tool just outside the bone, pointing along the plan.
"""

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sim_core.model import CaseModel
from sim_core.slots import DT_S, S_DIR, S_FORCE, S_PEAK_FORCE_N, S_TICK, S_TOOL, S_TORQUE
from sim_core.state import SimState, make_state, state_hash
from sim_core.view.snapshot import ChunkIndex

STANDOFF_MM = 5.0
SESSION_CAPACITY_TICKS = 1_800_000  # 30 min at 1 kHz (29 MB of inputs)
VIEW_FPS = 60.0


class LiveRunError(Exception):
    """A live session could not start or did not replay; the message is one sentence."""


@dataclass(frozen=True)
class LiveRun:
    state: SimState
    inputs: npt.NDArray[np.float64]  # TickInput rows, case frame, one per tick run
    loop_stats: dict[str, Any]
    frames: int  # frames the window drew
    view_pid: int = 0  # the process that drew them (this one when the window was local)
    view_stats: dict[str, float] = field(default_factory=dict)  # its FrameStats, if separate
    started_s: float = 0.0  # time.monotonic() when the loop started ...
    ended_s: float = 0.0  # ... and when the session ended
    shots: tuple[Any, ...] = ()  # the fluoroscopy shots taken (`sim_core.fluoro.ShotRecord`)
    # the model the session ran on (`adapt_model`'s, when given): the one to record and replay
    model: CaseModel | None = None


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
    view_process: bool | None = None,
    adapt_model: Callable[[Any], CaseModel] | None = None,
) -> LiveRun:
    """Open ``device`` (a `HapticDevice`, not yet open), a window, and run until it ends.

    view_process: the window in its own process (True), or in this one (False); by default
    in its own process for every device but the mouse, whose input is the window's events.
    before_run: called with the view just before its main loop starts (tests inject input
    events through it); only for a window in this process.
    adapt_model: called with the opened device's spec (a device knows its limits only once
    open); the session runs on the model it returns, which `LiveRun.model` names.
    """
    from haptics.device import DeviceUnavailableError
    from haptics.mouse import MouseKeyboardDevice
    from haptics.servo import EngineServoLoop

    is_mouse = isinstance(device, MouseKeyboardDevice)
    separate = (not is_mouse) if view_process is None else view_process
    if separate and is_mouse:
        raise ValueError("the mouse device reads the window's events: its window must be local")
    if separate and before_run is not None:
        raise ValueError("before_run needs the window in this process (view_process=False)")
    try:
        device.open()
    except DeviceUnavailableError as exc:
        raise LiveRunError(str(exc)) from exc
    if adapt_model is not None:
        model = adapt_model(device.spec)
    state = make_state(model)
    loop = EngineServoLoop(
        device,
        model,
        state,
        world_from_device=device_mapping(model),
        capacity_ticks=SESSION_CAPACITY_TICKS,
    )
    if separate:
        live = _run_view_process(case_dir, model, state, loop, max_seconds, size)
    else:
        live = _run_view_here(case_dir, model, state, loop, max_seconds, size, before_run)
    return replace(live, model=model)


def take_changed_chunks(state: SimState) -> tuple[ChunkIndex, ...]:
    """The chunks the engine flagged, their flags cleared first: a cut made meanwhile flags
    its chunk again, so no change is lost between two takes."""
    flagged = tuple((int(i), int(j), int(k)) for i, j, k in np.argwhere(state.dirty > 0))
    for idx in flagged:
        state.dirty[idx] = 0
    return flagged


def engine_snapshot(
    model: CaseModel,
    state: SimState,
    *,
    removed_chunks: tuple[ChunkIndex, ...] = (),
    metrics: dict[str, float] | None = None,
) -> Any:
    """A ``ViewSnapshot`` of the engine as it stands (tool, force, time)."""
    from sim_core.view.snapshot import ViewSnapshot

    st = state.st
    return ViewSnapshot(
        tick=int(st[S_TICK]),
        tool_tip_mm=(float(st[S_TOOL]), float(st[S_TOOL + 1]), float(st[S_TOOL + 2])),
        tool_axis=(float(st[S_DIR]), float(st[S_DIR + 1]), float(st[S_DIR + 2])),
        tool_radius_mm=max(model.instrument.radius_mm, 0.1),
        tool_kind=model.instrument.kind,
        force_n=(float(st[S_FORCE]), float(st[S_FORCE + 1]), float(st[S_FORCE + 2])),
        force_limit_n=model.scenario.force_limit_n,
        elapsed_s=float(st[S_TICK]) * DT_S,
        metrics=metrics if metrics is not None else {},
        removed_chunks=removed_chunks,
    )


def _snapshot(model: CaseModel, state: SimState) -> Any:
    # what the live view gets each frame: the chunks cut since the last one, the peak force
    return engine_snapshot(
        model,
        state,
        removed_chunks=take_changed_chunks(state),
        metrics=hud_metrics(state),
    )


def hud_metrics(state: SimState) -> dict[str, float]:
    """The numbers the live HUD shows beside the force bar: the peak force, and the torque bone
    holds against the hand about the tip, which a device without torque output (every 3-DOF
    arm, the mouse) cannot render, so the surgeon reads it instead of feeling it."""
    st = state.st
    torque = math.sqrt(sum(float(st[S_TORQUE + i]) ** 2 for i in range(3)))
    return {"peak_force_n": float(st[S_PEAK_FORCE_N]), "torque_n_mm": torque}


def _run_view_process(
    case_dir: Path,
    model: CaseModel,
    state: SimState,
    loop: Any,
    max_seconds: float | None,
    size: tuple[int, int],
) -> LiveRun:
    # this process keeps the device and the compiled loop; a child draws and remeshes
    from sim_core.view.live_offscreen import LiveOffscreenView
    from sim_core.view.offscreen import ViewError

    try:
        view = LiveOffscreenView(
            case_dir,
            state.density,
            trajectory=(model.plan.entry_mm, model.plan.target_mm),
            size=size,
            fps=VIEW_FPS,
            offscreen=False,
            fluoro=(model.plan, model.instrument),
        )
    except ViewError as exc:
        loop.stop()  # zero force, close the device
        raise LiveRunError(f"实时窗口无法打开 / the live window did not open: {exc}") from exc
    started = time.monotonic()
    try:
        loop.start()
        started = time.monotonic()
        while True:
            # a few tens of µs of Python per frame: the device's callback barely waits
            view.publish(_snapshot(model, state), state.density)
            over = max_seconds is not None and time.monotonic() - started >= max_seconds
            if over or not loop.running or view.closed():
                break
            time.sleep(1.0 / VIEW_FPS)
    except (BrokenPipeError, ConnectionError):
        pass  # the window's process went away: the session ends, its inputs stand
    finally:
        ended = time.monotonic()
        try:
            stats = loop.stop()
        finally:
            try:
                frame_stats = view.close()
            except ViewError as exc:
                raise LiveRunError(f"实时窗口失败 / the live window failed: {exc}") from exc
    return LiveRun(
        state,
        loop.recorded_inputs(),
        stats.as_dict(),
        frame_stats.frames,
        view_pid=view.pid,
        view_stats=frame_stats.as_dict(),
        started_s=started,
        ended_s=ended,
        shots=frame_stats.fluoro_shots,
    )


def _run_view_here(
    case_dir: Path,
    model: CaseModel,
    state: SimState,
    loop: Any,
    max_seconds: float | None,
    size: tuple[int, int],
    before_run: Callable[[Any], None] | None,
) -> LiveRun:
    # the window in this process (the mouse device reads its events)
    from haptics.mouse import MouseKeyboardDevice
    from sim_core.case.bundle import load_bundle
    from sim_core.fluoro import Fluoroscope
    from sim_core.view.fluoro_panel import FluoroPanel
    from sim_core.view.scene_view import SceneView

    view = SceneView(offscreen=False, size=size)
    frames = 0
    started = ended = time.monotonic()
    panel: FluoroPanel | None = None
    try:
        bundle = load_bundle(case_dir)
        view.setup_case(
            bundle,
            density=state.density,
            trajectory=(model.plan.entry_mm, model.plan.target_mm),
        )
        panel = FluoroPanel(
            view, lambda: Fluoroscope.for_case(bundle, model.plan, model.instrument)
        )
        if isinstance(loop.device, MouseKeyboardDevice):
            loop.device.attach(view)
        loop.start()
        started = time.monotonic()

        def follow(task: Any) -> Any:
            # once per frame: show the engine as it stands; end when the session does
            nonlocal frames
            view.show_snapshot(_snapshot(model, state))
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
        ended = time.monotonic()
        try:
            stats = loop.stop()
        finally:
            view.destroy()
    return LiveRun(
        state,
        loop.recorded_inputs(),
        stats.as_dict(),
        frames,
        view_pid=os.getpid(),
        started_s=started,
        ended_s=ended,
        shots=tuple(panel.shots) if panel is not None else (),
    )


def replayed_result(model: CaseModel, live: LiveRun) -> Any:
    """Replay the live session's inputs headless; `LiveRunError` unless it matches bit for bit."""
    from sim_core.replay import play

    _, result = play(model, live.inputs, live.shots)
    if result.state_hash != state_hash(live.state):
        raise LiveRunError(
            "实时会话重放不一致 / the live session did not replay bit for bit "
            f"({result.state_hash} != {state_hash(live.state)})"
        )
    return result
