"""The compiled 1 kHz servo loop: runs whole inside numba nopython code without the GIL.

Two loops. `run_servo` takes any force kernel (`haptics._servo_kernels`); `run_engine_servo`
runs the engine's whole step (proxy, force, erosion, metrics) and records its inputs.
Per tick: sleep to the absolute deadline -> read the pose (script row or the device's latest
pose buffer) -> map it to world mm -> force kernel -> clamp |F| to the device maximum -> write
the force (device frame; and the engine's torque for devices that render one) to the force
buffer -> log the tick. Nothing allocates, logs, locks
or compiles inside; every array is made by `haptics.servo.ServoLoop` beforehand.
"""

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from haptics import _clock
from haptics._clock import monotonic_ns, sleep_until_ns
from haptics.channel import (
    AXIS_X,
    MISSED_TICKS,
    N_POSE,
    POSE_SLOT,
    QW,
    SCHEDULE_SLOT,
    STOP,
    TICKS_DONE,
    VX_MM_S,
    X_MM,
)
from haptics.channel import FORCE_SLOT as FORCE_SLOT_INDEX
from haptics.channel import TORQUE as TORQUE_COLUMN
from sim_core.kernels import tick_finish as engine_tick_finish
from sim_core.kernels import tick_force as engine_tick_force
from sim_core.slots import S_DISPLAY, S_DISPLAY_TORQUE

# mapping: world_from_device = translation + scale * rotation; force limit last
MAP_ROTATION = 0  # 9: row-major 3x3
MAP_SCALE = 9  # world mm per device mm
MAP_TRANSLATION = 10  # 3: world mm
MAP_QUATERNION = 13  # 4: the rotation as (w, x, y, z)
MAP_MAX_FORCE_N = 17
MAP_MAX_TORQUE_N_MM = 18  # the device's torque limit (0: it renders none)
N_MAPPING = 19

# timing (int64): period, how far behind the loop may fall before skipping slots
TIME_PERIOD_NS = 0
TIME_MAX_CATCH_UP_TICKS = 1
TIME_SCRATCH = 2  # 2 slots: the timespec the clock functions fill
N_TIMING = 4

# log row: the world pose used, the world force (after the clamp), the schedule slot
LOG_FORCE = N_POSE
LOG_SLOT = N_POSE + 3
N_LOG = N_POSE + 4


@njit(cache=True, nogil=True)
def _to_world(source: Any, mapping: Any, out: Any) -> None:
    # out = world pose of device pose `source` (same layout)
    for f in range(N_POSE):
        out[f] = source[f]
    scale = mapping[MAP_SCALE]
    for r in range(3):
        p = 0.0
        a = 0.0
        v = 0.0
        for c in range(3):
            m = mapping[MAP_ROTATION + 3 * r + c]
            p += m * source[X_MM + c]
            a += m * source[AXIS_X + c]
            v += m * source[VX_MM_S + c]
        out[X_MM + r] = scale * p + mapping[MAP_TRANSLATION + r]
        out[AXIS_X + r] = a
        out[VX_MM_S + r] = scale * v
    # orientation: q_world = q_map * q_device
    aw, ax, ay, az = (
        mapping[MAP_QUATERNION],
        mapping[MAP_QUATERNION + 1],
        mapping[MAP_QUATERNION + 2],
        mapping[MAP_QUATERNION + 3],
    )
    bw, bx, by, bz = source[QW], source[QW + 1], source[QW + 2], source[QW + 3]
    out[QW] = aw * bw - ax * bx - ay * by - az * bz
    out[QW + 1] = aw * bx + ax * bw + ay * bz - az * by
    out[QW + 2] = aw * by - ax * bz + ay * bw + az * bx
    out[QW + 3] = aw * bz + ax * by - ay * bx + az * bw


@njit(cache=True, nogil=True, inline="always")
def _clamp_force(fx: float, fy: float, fz: float, max_force: float) -> tuple[float, float, float]:
    # |F| capped at the device's maximum; NaN or infinite -> no force
    magnitude = np.sqrt(fx * fx + fy * fy + fz * fz)
    if not np.isfinite(magnitude):
        return 0.0, 0.0, 0.0
    if magnitude > max_force:
        shrink = max_force / magnitude
        return fx * shrink, fy * shrink, fz * shrink
    return fx, fy, fz


@njit(cache=True, nogil=True, inline="always")
def _send_force(
    force: Any,
    control: Any,
    mapping: Any,
    fx: float,
    fy: float,
    fz: float,
    tick: int,
    torque: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> None:
    # device frame = rotation transposed; fill the idle slot, then flip. The torque is clamped
    # to the device's limit (0 where it renders none); NaN -> none
    out = 1 - control[FORCE_SLOT_INDEX]
    tx, ty, tz = _clamp_force(torque[0], torque[1], torque[2], mapping[MAP_MAX_TORQUE_N_MM])
    for r in range(3):
        force[out, r] = (
            mapping[MAP_ROTATION + r] * fx
            + mapping[MAP_ROTATION + 3 + r] * fy
            + mapping[MAP_ROTATION + 6 + r] * fz
        )
        force[out, TORQUE_COLUMN + r] = (
            mapping[MAP_ROTATION + r] * tx
            + mapping[MAP_ROTATION + 3 + r] * ty
            + mapping[MAP_ROTATION + 6 + r] * tz
        )
    force[out, 3] = tick
    control[FORCE_SLOT_INDEX] = out


@njit(cache=True, nogil=True, inline="always")
def _end_tick(
    tick: int,
    deadline_ns: int,
    slot: int,
    period_ns: int,
    max_behind_ns: int,
    clock: Any,
    control: Any,
) -> tuple[int, int, int]:
    # publish the tick done and its slot, then schedule the next: absolute deadlines; if far
    # behind, skip slots rather than burst
    control[SCHEDULE_SLOT] = slot
    tick += 1
    control[TICKS_DONE] = tick
    deadline_ns += period_ns
    slot += 1
    behind_ns = monotonic_ns(clock) - deadline_ns
    if behind_ns > max_behind_ns:
        skipped = behind_ns // period_ns
        deadline_ns += skipped * period_ns
        slot += skipped
        control[MISSED_TICKS] += skipped
    return tick, deadline_ns, slot


@njit(cache=False, nogil=True)
def run_servo(
    kernel: Any,
    density: npt.NDArray[np.float32],
    geometry: npt.NDArray[np.float64],
    params: npt.NDArray[np.float64],
    mapping: npt.NDArray[np.float64],
    pose: npt.NDArray[np.float64],
    script: npt.NDArray[np.float64],
    force: npt.NDArray[np.float64],
    control: npt.NDArray[np.int64],
    timing: npt.NDArray[np.int64],
    stamps_ns: npt.NDArray[np.int64],
    log: npt.NDArray[np.float64],
    world_pose: npt.NDArray[np.float64],
) -> int:
    """Run ticks until `control[STOP]`, the end of `script` or `stamps_ns` is full.

    kernel: a jitted force kernel (signature in `haptics._servo_kernels`); density, geometry,
    params: its inputs. mapping: float64[N_MAPPING], world_from_device and the force limit.
    pose float64[2, N_POSE], force float64[2, 4], control int64[N_CONTROL]: the device's
    `ServoChannel`; script float64[n, N_POSE] (n = 0 for live devices). timing int64[N_TIMING].
    stamps_ns int64[capacity]: wake time of each tick (CLOCK_MONOTONIC); log float64[capacity,
    N_LOG]; world_pose float64[N_POSE] scratch. Returns the number of ticks run.

    Not cached: the kernel argument's numba type names the function object, so a cache entry
    would never match in another process; compiling it takes a few seconds once per process.
    """
    period_ns = timing[TIME_PERIOD_NS]
    max_behind_ns = timing[TIME_MAX_CATCH_UP_TICKS] * period_ns
    clock = timing[TIME_SCRATCH : TIME_SCRATCH + 2]
    n_script = script.shape[0]
    max_force = mapping[MAP_MAX_FORCE_N]
    force_world = np.empty(3)  # the only allocation: once, before the first tick
    deadline_ns = monotonic_ns(clock) + period_ns
    slot = 0
    tick = 0
    while tick < stamps_ns.shape[0]:
        if control[STOP] != 0:
            break
        if n_script > 0 and slot >= n_script:
            break
        sleep_until_ns(deadline_ns, clock)
        woke_ns = monotonic_ns(clock)

        # read: the script row for this slot, or the device's latest pose
        if n_script > 0:
            _to_world(script[slot], mapping, world_pose)
        else:
            _to_world(pose[control[POSE_SLOT]], mapping, world_pose)

        # force from the voxels near the tip, clamped; NaN -> no force
        kernel(density, geometry, world_pose, params, force_world)
        fx, fy, fz = _clamp_force(force_world[0], force_world[1], force_world[2], max_force)
        force_world[0] = fx
        force_world[1] = fy
        force_world[2] = fz
        _send_force(force, control, mapping, fx, fy, fz, tick)

        # log the tick
        stamps_ns[tick] = woke_ns
        for f in range(N_POSE):
            log[tick, f] = world_pose[f]
        for r in range(3):
            log[tick, LOG_FORCE + r] = force_world[r]
        log[tick, LOG_SLOT] = slot
        tick, deadline_ns, slot = _end_tick(
            tick, deadline_ns, slot, period_ns, max_behind_ns, clock, control
        )
    return tick


def _engine_fingerprint() -> str:
    # the sources compiled into the engine loop besides this file
    import sim_core._kernels
    import sim_core.slots

    h = hashlib.sha256()
    for module in (sim_core._kernels, sim_core.slots, _clock):
        h.update(Path(str(module.__file__)).read_bytes())
    return h.hexdigest()


def _build_run_engine_servo(fingerprint: str) -> Any:
    # numba keys a cache entry on this file's stamp and the function's own bytecode and
    # closure, not on the functions it calls: a plain cached loop kept running the engine it
    # was compiled with after sim_core/_kernels.py changed (seen: a replay that no longer
    # matched the loop's state). The engine's fingerprint in the closure makes a changed
    # engine a new cache entry, so the loop stays cached (compiling it takes seconds, with the
    # GIL held, which would stall a live arm's Python callback at every session start).
    @njit(cache=True, nogil=True)
    def run_engine_servo(
        model_arrays: Any,
        density: npt.NDArray[np.float32],
        st: npt.NDArray[np.float64],
        dirty: npt.NDArray[np.uint8],
        work: npt.NDArray[np.float64],
        mapping: npt.NDArray[np.float64],
        pose: npt.NDArray[np.float64],
        script: npt.NDArray[np.float64],
        force: npt.NDArray[np.float64],
        control: npt.NDArray[np.int64],
        timing: npt.NDArray[np.int64],
        stamps_ns: npt.NDArray[np.int64],
        inputs: npt.NDArray[np.float64],
        force_ns: npt.NDArray[np.int64],
        step_ns: npt.NDArray[np.int64],
    ) -> int:
        """The servo loop running the whole engine step (`sim_core.kernels.tick`) each tick.

        model_arrays: (density0, label, columns, params, tool) of the `CaseModel`; density, st,
        dirty, work: the `SimState` arrays, advanced in place. Per tick the world pose row is
        written to `inputs[tick]` (float64[capacity, N_POSE], the TickInput layout: it *is* the
        session's recording), the tick's first half (`tick_force`) runs on it, its display force
        (already scaled to the device's stiffness and clamped by the engine) is clamped again to the
        mapping's limit and written to the device, and only then does the second half
        (`tick_finish`: erosion, metrics) run. force_ns[tick]: wake-up to force written;
        step_ns[tick]: wake-up to tick done. Other arguments as `run_servo`. Returns the number of
        ticks run.
        """
        if len(fingerprint) == 0:  # holds the engine's fingerprint in the closure: cache key
            return 0
        density0, label, columns, params, tool = model_arrays
        period_ns = timing[TIME_PERIOD_NS]
        max_behind_ns = timing[TIME_MAX_CATCH_UP_TICKS] * period_ns
        clock = timing[TIME_SCRATCH : TIME_SCRATCH + 2]
        n_script = script.shape[0]
        max_force = mapping[MAP_MAX_FORCE_N]
        deadline_ns = monotonic_ns(clock) + period_ns
        slot = 0
        tick = 0
        while tick < stamps_ns.shape[0]:
            if control[STOP] != 0:
                break
            if n_script > 0 and slot >= n_script:
                break
            sleep_until_ns(deadline_ns, clock)
            woke_ns = monotonic_ns(clock)

            # read, step the engine, take its display force
            row = inputs[tick]
            if n_script > 0:
                _to_world(script[slot], mapping, row)
            else:
                _to_world(pose[control[POSE_SLOT]], mapping, row)
            engine_tick_force(density0, label, columns, params, tool, density, st, dirty, work, row)
            fx, fy, fz = _clamp_force(
                st[S_DISPLAY], st[S_DISPLAY + 1], st[S_DISPLAY + 2], max_force
            )
            torque = (st[S_DISPLAY_TORQUE], st[S_DISPLAY_TORQUE + 1], st[S_DISPLAY_TORQUE + 2])
            _send_force(force, control, mapping, fx, fy, fz, tick, torque)
            force_ns[tick] = monotonic_ns(clock) - woke_ns

            # then the rest of the tick: erosion, metrics
            engine_tick_finish(
                density0, label, columns, params, tool, density, st, dirty, work, row
            )
            step_ns[tick] = monotonic_ns(clock) - woke_ns

            stamps_ns[tick] = woke_ns
            tick, deadline_ns, slot = _end_tick(
                tick, deadline_ns, slot, period_ns, max_behind_ns, clock, control
            )
        return tick

    return run_engine_servo


run_engine_servo = _build_run_engine_servo(_engine_fingerprint())


@njit(cache=True, nogil=True)
def run_bare(
    first_deadline_ns: int,
    period_ns: int,
    stop: npt.NDArray[np.int64],
    clock: npt.NDArray[np.int64],
    stamps_ns: npt.NDArray[np.int64],
) -> int:
    """Sleep to each deadline and stamp the wake-up, nothing else, until `stop[0]` or
    `stamps_ns` is full: the reference a servo loop's timing is compared with. Returns the
    number of ticks run."""
    deadline_ns = first_deadline_ns
    tick = 0
    while tick < stamps_ns.shape[0] and stop[0] == 0:
        sleep_until_ns(deadline_ns, clock)
        stamps_ns[tick] = monotonic_ns(clock)
        tick += 1
        deadline_ns += period_ns
    return tick
