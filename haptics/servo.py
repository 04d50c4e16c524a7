"""`ServoLoop`: the 1 kHz haptic loop in its own thread, compiled, without the GIL.

Usage (the engine / station)::

    device = open_device("scripted:plan.csv")        # haptics.registry; already open
    field = ForceField(density, origin_mm, spacing_mm)  # sphere_overlap_force by default
    loop = ServoLoop(device, field, world_from_device=WorldFromDevice(translation_mm=(...)))
    loop.start()                  # compiles first (a few s), then ticks at 1 kHz
    while loop.running:
        rows = loop.new_samples() # world pose + force per tick since the last call
        ...                       # step the engine on those rows, render
    stats = loop.stop()           # flag, join, zero force, close the device

The loop reads `device.channel` (pose buffer or script) and writes `device.channel.force`;
the device side carries both to and from the hardware.
"""

import os
import resource
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from haptics import _servo_loop as compiled
from haptics._servo_kernels import N_SPHERE_PARAMS, sphere_overlap_force
from haptics.channel import MISSED_TICKS, N_POSE, POSE_FIELDS, STOP, TICKS_DONE, FloatArray
from haptics.device import HapticDevice
from haptics.keep_awake import KeepAwake
from haptics.orientation import quaternion_from_matrix

LOG_FIELDS: tuple[str, ...] = (*POSE_FIELDS, "fx_n", "fy_n", "fz_n", "slot")
FIFO_PRIORITY = 50


def default_sphere_params(
    radius_mm: float = 2.0, gain_n: float = 3.0, damping_n_s_per_mm: float = 0.001
) -> FloatArray:
    """Parameters for `sphere_overlap_force` (order in `haptics._servo_kernels`)."""
    params = np.zeros(N_SPHERE_PARAMS)
    params[:] = (radius_mm, gain_n, damping_n_s_per_mm)
    return params


@dataclass(frozen=True)
class ForceField:
    """What the loop computes forces from: a density grid and a jitted force kernel.

    density: float32[i, j, k] C-contiguous, 0..1, shared (the engine erodes it in place; a
    tick may see a voxel mid-update, which only changes that tick's force slightly).
    origin_mm: centre of voxel (0, 0, 0), world mm; spacing_mm: voxel size along i, j, k.
    kernel/params: see `haptics._servo_kernels` for the signature.
    """

    density: npt.NDArray[np.float32]
    origin_mm: tuple[float, float, float]
    spacing_mm: tuple[float, float, float]
    kernel: Any = sphere_overlap_force
    params: FloatArray = field(default_factory=default_sphere_params)

    def geometry(self) -> FloatArray:
        return np.array([*self.origin_mm, *self.spacing_mm], dtype=np.float64)


@dataclass(frozen=True)
class WorldFromDevice:
    """world mm = translation_mm + scale * rotation @ device mm (rotation orthonormal)."""

    rotation: tuple[tuple[float, float, float], ...] = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
    scale: float = 1.0
    translation_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class LoopStats:
    """Timing of one run: period = time between consecutive tick wake-ups."""

    ticks: int
    duration_s: float
    rate_hz: float
    period_p50_ms: float
    period_p99_ms: float
    period_max_ms: float
    late_ticks: int  # periods longer than 1.5 nominal periods
    missed_ticks: int  # schedule slots skipped after falling > max_catch_up_ticks behind
    realtime: bool  # the loop thread ran under SCHED_FIFO
    realtime_note: str
    cpu_keep_awake: str = "off"  # what `KeepAwake` did while the loop ran
    # taken by the loop thread while it ran (-1: not known): a fault may wait for the memory
    # map lock, a switch means something preempted it; either one makes a late tick its own
    page_faults: int = -1
    involuntary_switches: int = -1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def prefaulted_zeros(shape: int | tuple[int, ...], dtype: Any) -> Any:
    """A zeroed array whose every page is already mapped.

    `np.zeros` of a large array maps its pages lazily: the first write to each page faults
    into the kernel, and a fault waits for the process's memory-map lock, which another
    thread's `mmap`/`munmap` (numpy allocating for meshing) may hold for milliseconds. The
    servo thread writes its logs tick by tick, so each new page would be a chance for such a
    stall; writing every page here, before the loop starts, takes them all up front.
    """
    a = np.zeros(shape, dtype=dtype)
    a.fill(0)  # a write to every page (np.zeros alone leaves them unmapped)
    return a


def timing_stats(
    stamps_ns: npt.NDArray[np.int64],
    *,
    period_s: float = 0.001,
    missed_ticks: int = 0,
    realtime: bool = False,
    realtime_note: str = "",
    cpu_keep_awake: str = "off",
) -> LoopStats:
    """Rate and period percentiles from tick wake-up times (ns, increasing)."""
    n = int(stamps_ns.shape[0])
    if n < 2:
        return LoopStats(
            n, 0.0, 0.0, 0.0, 0.0, 0.0, 0, missed_ticks, realtime, realtime_note, cpu_keep_awake
        )
    periods_ms = np.diff(stamps_ns).astype(np.float64) / 1e6
    duration_s = float(stamps_ns[-1] - stamps_ns[0]) / 1e9
    return LoopStats(
        ticks=n,
        duration_s=duration_s,
        rate_hz=(n - 1) / duration_s,
        period_p50_ms=float(np.percentile(periods_ms, 50)),
        period_p99_ms=float(np.percentile(periods_ms, 99)),
        period_max_ms=float(periods_ms.max()),
        late_ticks=int(np.count_nonzero(periods_ms > 1.5 * period_s * 1e3)),
        missed_ticks=missed_ticks,
        realtime=realtime,
        realtime_note=realtime_note,
        cpu_keep_awake=cpu_keep_awake,
    )


class _ThreadUsage:
    """Page faults and involuntary context switches of the calling thread between `begin`
    and `end` (Linux `RUSAGE_THREAD`)."""

    def __init__(self) -> None:
        self.page_faults = -1
        self.involuntary_switches = -1
        self._start: Any = None

    def begin(self) -> None:
        self._start = resource.getrusage(resource.RUSAGE_THREAD)

    def end(self) -> None:
        now, start = resource.getrusage(resource.RUSAGE_THREAD), self._start
        self.page_faults = (now.ru_minflt + now.ru_majflt) - (start.ru_minflt + start.ru_majflt)
        self.involuntary_switches = now.ru_nivcsw - start.ru_nivcsw

    def into(self, stats: LoopStats) -> LoopStats:
        return replace(
            stats, page_faults=self.page_faults, involuntary_switches=self.involuntary_switches
        )


def _become_realtime(wanted: bool) -> tuple[bool, str]:
    """Put the calling thread under SCHED_FIFO if wanted and allowed: (done, what happened)."""
    if not wanted:
        return False, "normal priority (realtime off)"
    try:
        # pid 0: the calling thread, on Linux
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(FIFO_PRIORITY))
    except (OSError, AttributeError) as exc:
        return False, f"SCHED_FIFO refused ({exc}); normal priority"
    return True, f"SCHED_FIFO priority {FIFO_PRIORITY}"


def _mapping_array(world_from_device: WorldFromDevice, device: HapticDevice) -> FloatArray:
    rotation = np.array(world_from_device.rotation, dtype=np.float64)
    if rotation.shape != (3, 3) or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6):
        raise ValueError("world_from_device.rotation must be an orthonormal 3x3 matrix")
    mapping = np.zeros(compiled.N_MAPPING, dtype=np.float64)
    mapping[compiled.MAP_ROTATION : compiled.MAP_ROTATION + 9] = rotation.ravel()
    mapping[compiled.MAP_SCALE] = world_from_device.scale
    mapping[compiled.MAP_TRANSLATION : compiled.MAP_TRANSLATION + 3] = (
        world_from_device.translation_mm
    )
    mapping[compiled.MAP_QUATERNION : compiled.MAP_QUATERNION + 4] = quaternion_from_matrix(
        rotation
    )
    mapping[compiled.MAP_MAX_FORCE_N] = device.spec.max_force_n
    mapping[compiled.MAP_MAX_TORQUE_N_MM] = device.spec.max_torque_n_mm
    return mapping


class _CompiledLoop:
    """What both loops share: a compiled loop run once in its own thread, timing, stop."""

    thread_name = "haptic-loop"

    def __init__(
        self,
        device: HapticDevice,
        *,
        world_from_device: WorldFromDevice | None,
        period_s: float,
        capacity_ticks: int,
        max_catch_up_ticks: int,
        realtime: bool,
        keep_awake: bool | None,
    ) -> None:
        self.device = device
        self.period_s = period_s
        self.realtime = realtime
        self._mapping = _mapping_array(world_from_device or WorldFromDevice(), device)
        self._timing = np.zeros(compiled.N_TIMING, dtype=np.int64)
        self._timing[compiled.TIME_PERIOD_NS] = round(period_s * 1e9)
        self._timing[compiled.TIME_MAX_CATCH_UP_TICKS] = max_catch_up_ticks
        self.stamps_ns: npt.NDArray[np.int64] = prefaulted_zeros(capacity_ticks, np.int64)
        self._thread: threading.Thread | None = None
        self._ran_realtime = False
        self._realtime_note = "not started"
        self._error: BaseException | None = None
        self._usage = _ThreadUsage()
        # a real-time loop keeps the CPUs from idle sleep unless told not to
        wants_awake = realtime if keep_awake is None else keep_awake
        self._keep_awake = KeepAwake() if wants_awake else None

    def warm_up(self) -> None:
        """Compile the loop (or load it from the cache) for these arrays; runs no tick."""
        raise NotImplementedError

    def _run_ticks(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Compile, then start ticking in a new thread. The device must be open."""
        if not self.device.is_open:
            raise RuntimeError(f"device {self.device.spec.name} is not open")
        if self._thread is not None:
            raise RuntimeError(f"a {type(self).__name__} runs once; make a new one")
        self.warm_up()
        self.device.channel.control[STOP] = 0
        if self._keep_awake is not None:
            self._keep_awake.start()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._ran_realtime, self._realtime_note = _become_realtime(self.realtime)
        self._usage.begin()
        try:
            self._run_ticks()
        except BaseException as exc:  # reported by stop(); a loop must not die silently
            self._error = exc
        finally:
            self._usage.end()
            if self._keep_awake is not None:
                self._keep_awake.stop()  # the CPUs may sleep as soon as the loop ends

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def ticks_done(self) -> int:
        return int(self.device.channel.control[TICKS_DONE])

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the loop to end by itself (end of script, log full); True if it has."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        return not self.running

    def stats(self) -> LoopStats:
        """Timing of the ticks run so far (page faults and switches once the loop ended)."""
        stats = timing_stats(
            self.stamps_ns[: self.ticks_done],
            period_s=self.period_s,
            missed_ticks=int(self.device.channel.control[MISSED_TICKS]),
            realtime=self._ran_realtime,
            realtime_note=self._realtime_note,
            cpu_keep_awake=self._keep_awake.note if self._keep_awake is not None else "off",
        )
        return self._usage.into(stats)

    def stop(self) -> LoopStats:
        """Stop: set the flag, join the thread, write a zero force, close the device."""
        self.device.channel.control[STOP] = 1
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            if self._thread.is_alive():
                raise RuntimeError(f"{self.thread_name} thread did not stop within 2 s")
        self.device.write_force(np.zeros(3))
        self.device.close()
        if self._error is not None:
            raise RuntimeError(f"{self.thread_name} loop failed: {self._error}") from self._error
        return self.stats()


class BareLoop:
    """A 1 kHz thread that only sleeps to its deadlines and stamps each wake-up.

    Run beside a servo loop, under the same load, it shows the timing this machine's
    scheduler gives a thread with no work at all: the floor a servo loop's period is judged
    against.
    """

    def __init__(
        self,
        *,
        period_s: float = 0.001,
        capacity_ticks: int = 600_000,
        realtime: bool = True,
    ) -> None:
        self.period_s = period_s
        self.realtime = realtime
        self.stamps_ns: npt.NDArray[np.int64] = prefaulted_zeros(capacity_ticks, np.int64)
        self._stop = np.zeros(1, dtype=np.int64)
        self._clock = np.zeros(2, dtype=np.int64)
        self._ticks = 0
        self._ran_realtime = False
        self._realtime_note = "not started"
        self._thread: threading.Thread | None = None
        self._usage = _ThreadUsage()

    def start(self) -> None:
        compiled.run_bare(0, 1, self._stop, self._clock, self.stamps_ns[:0])  # compile first
        self._thread = threading.Thread(target=self._run, name="bare-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._ran_realtime, self._realtime_note = _become_realtime(self.realtime)
        period_ns = round(self.period_s * 1e9)
        first = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + period_ns
        self._usage.begin()
        self._ticks = compiled.run_bare(first, period_ns, self._stop, self._clock, self.stamps_ns)
        self._usage.end()

    def stop(self) -> LoopStats:
        self._stop[0] = 1
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        stats = timing_stats(
            self.stamps_ns[: self._ticks],
            period_s=self.period_s,
            realtime=self._ran_realtime,
            realtime_note=self._realtime_note,
        )
        return self._usage.into(stats)


class ServoLoop(_CompiledLoop):
    """Runs the compiled servo loop for one open device in a dedicated thread."""

    thread_name = "haptic-servo"

    def __init__(
        self,
        device: HapticDevice,
        force_field: ForceField,
        *,
        world_from_device: WorldFromDevice | None = None,
        period_s: float = 0.001,
        capacity_ticks: int = 600_000,
        max_catch_up_ticks: int = 3,
        realtime: bool = True,
        keep_awake: bool | None = None,
    ) -> None:
        """capacity_ticks: log rows preallocated (600 000 = 10 min at 1 kHz, 96 MB); the loop
        ends when full. realtime: try SCHED_FIFO for the loop thread (needs CAP_SYS_NICE).
        keep_awake: hold the CPUs out of idle sleep while the loop runs (`KeepAwake`);
        default: when realtime."""
        density = force_field.density
        if density.dtype != np.float32 or density.ndim != 3 or not density.flags.c_contiguous:
            raise ValueError("density must be a C-contiguous float32 3-D array")
        super().__init__(
            device,
            world_from_device=world_from_device,
            period_s=period_s,
            capacity_ticks=capacity_ticks,
            max_catch_up_ticks=max_catch_up_ticks,
            realtime=realtime,
            keep_awake=keep_awake,
        )
        self.force_field = force_field
        self._geometry = force_field.geometry()
        self._params = np.ascontiguousarray(force_field.params, dtype=np.float64)
        self.log: FloatArray = prefaulted_zeros((capacity_ticks, compiled.N_LOG), np.float64)
        self._world_pose = np.zeros(N_POSE, dtype=np.float64)
        self._drained = 0

    def _call(self, stamps_ns: npt.NDArray[np.int64], log: FloatArray) -> int:
        ch = self.device.channel
        ticks: int = compiled.run_servo(
            self.force_field.kernel,
            self.force_field.density,
            self._geometry,
            self._params,
            self._mapping,
            ch.pose,
            ch.script,
            ch.force,
            ch.control,
            self._timing,
            stamps_ns,
            log,
            self._world_pose,
        )
        return ticks

    def warm_up(self) -> None:
        self._call(self.stamps_ns[:0], self.log[:0])

    def _run_ticks(self) -> None:
        self._call(self.stamps_ns, self.log)

    def new_samples(self) -> FloatArray:
        """Log rows (fields `LOG_FIELDS`, world frame) written since the last call; a copy."""
        done = self.ticks_done
        rows = self.log[self._drained : done].copy()
        self._drained = done
        return rows


class EngineServoLoop(_CompiledLoop):
    """Runs the engine itself at 1 kHz in a compiled, GIL-free thread, fed by one device.

    Each tick reads the device (script row or pose buffer), steps the engine
    (`sim_core.kernels.tick`) on `model`/`state` in place, and sends the engine's display
    force. `inputs` (float64[capacity, 16], TickInput layout) is the recording: replaying its
    first `ticks_done` rows through `sim_core.step.run` reproduces the state bit for bit.
    Meshing and rendering read `state.density` and `state.dirty` from other threads: clear a
    chunk's dirty flag *before* copying its voxels, so a cut made meanwhile flags it again.
    """

    thread_name = "haptic-engine"

    def __init__(
        self,
        device: HapticDevice,
        model: Any,
        state: Any,
        *,
        world_from_device: WorldFromDevice | None = None,
        period_s: float = 0.001,
        capacity_ticks: int = 600_000,
        max_catch_up_ticks: int = 3,
        realtime: bool = True,
        keep_awake: bool | None = None,
    ) -> None:
        """model: `sim_core.model.CaseModel`; state: its `sim_core.state.SimState`."""
        super().__init__(
            device,
            world_from_device=world_from_device,
            period_s=period_s,
            capacity_ticks=capacity_ticks,
            max_catch_up_ticks=max_catch_up_ticks,
            realtime=realtime,
            keep_awake=keep_awake,
        )
        self.model = model
        self.state = state
        self._model_arrays = (
            model.density0,
            model.label,
            model.columns,
            model.params,
            model.tool,
        )
        self.force_ns: npt.NDArray[np.int64] = prefaulted_zeros(capacity_ticks, np.int64)
        self.step_ns: npt.NDArray[np.int64] = prefaulted_zeros(capacity_ticks, np.int64)
        self.inputs: FloatArray = prefaulted_zeros((capacity_ticks, N_POSE), np.float64)

    def _call(self, n: int) -> int:
        ch = self.device.channel
        ticks: int = compiled.run_engine_servo(
            self._model_arrays,
            self.state.density,
            self.state.st,
            self.state.dirty,
            self.state.work,
            self._mapping,
            ch.pose,
            ch.script,
            ch.force,
            ch.control,
            self._timing,
            self.stamps_ns[:n],
            self.inputs[:n],
            self.force_ns[:n],
            self.step_ns[:n],
        )
        return ticks

    def warm_up(self) -> None:
        self._call(0)

    def _run_ticks(self) -> None:
        self._call(self.stamps_ns.shape[0])

    def recorded_inputs(self) -> FloatArray:
        """The TickInput rows of the ticks run so far (a copy)."""
        return np.array(self.inputs[: self.ticks_done], dtype=np.float64)
