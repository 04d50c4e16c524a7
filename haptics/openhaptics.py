"""OpenHaptics arms (3D Systems Touch, Touch X, Phantom) through `pyOpenHaptics`.

`pyOpenHaptics` loads `libHD.so` when imported (found through the normal library search:
LD_LIBRARY_PATH, ld.so.cache), so it is imported only in `open()` / `probe()`. The HD
scheduler thread calls `_scheduler_tick` at 1 kHz inside a frame: it reads the transform,
velocity and buttons into the channel's pose buffer and sends the latest force from the
channel. That callback runs Python, so it takes the GIL each millisecond: the process
hosting an OpenHaptics device should keep heavy Python work (meshing, I/O) in other
processes; the force itself is computed by the compiled servo loop, without the GIL. A live
session (`osteon.live_run`) does so: its window draws and remeshes in a child process.

Units and axes: OpenHaptics already uses mm, mm/s and N in the frame `haptics.device`
describes (+x right, +y up, +z towards the user); no conversion is needed.
"""

import contextlib
import ctypes
import io
import time
from types import ModuleType
from typing import Any

import numpy as np

from haptics.channel import (
    AXIS_X,
    BUTTONS,
    FORCE_SLOT,
    N_POSE,
    QW,
    SPEED,
    T_S,
    VX_MM_S,
    X_MM,
)
from haptics.device import BUTTON_DRILL, DeviceSpec, DeviceUnavailableError, HapticDevice
from haptics.orientation import quaternion_from_matrix

DEFAULT_DEVICE_NAME = "Default Device"
HD_INVALID_HANDLE = 0xFFFFFFFF
HD_CALIBRATION_NEEDS_UPDATE = 0x5001
NO_LIBRARY = (
    "未找到 OpenHaptics 驱动库 libHD.so / the OpenHaptics library libHD.so is not installed "
    "or not on LD_LIBRARY_PATH"
)


def _import_hd() -> tuple[ModuleType, ModuleType]:
    # the import itself dlopens libHD.so; without it this is an OSError
    try:
        import pyOpenHaptics.hd as hd
        import pyOpenHaptics.hd_callback as hd_callback
    except OSError as exc:
        raise DeviceUnavailableError(f"{NO_LIBRARY} ({exc})") from exc
    return hd, hd_callback


def _init(hd: ModuleType, name: str) -> int:
    # pyOpenHaptics prints and compares against the wrong constant; check the handle ourselves
    with contextlib.redirect_stdout(io.StringIO()):
        device_id = hd.init_device(name)
    error = hd._get_error().errorCode
    if device_id is None or device_id == HD_INVALID_HANDLE or error != 0:
        raise DeviceUnavailableError(
            f"OpenHaptics 设备“{name}”无法初始化 / OpenHaptics device {name!r} did not "
            f"initialise (HD error 0x{error:x}): check its cable, power and Touch Setup"
        )
    return int(device_id)


def probe(name: str = DEFAULT_DEVICE_NAME) -> None:
    """Return if an OpenHaptics device initialises; else raise `DeviceUnavailableError`."""
    hd, _ = _import_hd()
    device_id = _init(hd, name)
    hd.close_device(device_id)


class OpenHapticsDevice(HapticDevice):
    """One OpenHaptics arm; the HD scheduler callback moves pose and force."""

    def __init__(self, name: str = DEFAULT_DEVICE_NAME) -> None:
        super().__init__()
        self.name = name
        self._hd: Any = None
        self._id = -1
        self._spec: DeviceSpec | None = None
        self._callback: Any = None  # kept referenced: the scheduler holds a raw pointer
        self._row = np.zeros(N_POSE, dtype=np.float64)
        self._t0_s = 0.0
        self.callback_ticks = 0
        self.callback_error: BaseException | None = None

    @property
    def spec(self) -> DeviceSpec:
        if self._spec is None:
            raise RuntimeError("open the OpenHaptics device before reading its spec")
        return self._spec

    def open(self) -> None:
        hd, hd_callback = _import_hd()
        self._hd = hd
        self._id = _init(hd, self.name)
        self._spec = self._read_spec()
        with contextlib.redirect_stdout(io.StringIO()):
            hd.enable_force()
        self._t0_s = time.monotonic()
        self._callback = hd_callback.hd_callback(self._scheduler_tick)
        hd_callback.hdAsyncSheduler(self._callback)
        hd.start_scheduler()
        self.is_open = True

    def _read_spec(self) -> DeviceSpec:
        hd = self._hd
        max_force = hd._get_doublev(hd.HD_NOMINAL_MAX_FORCE, ctypes.c_double).value
        stiffness = hd._get_doublev(hd.HD_NOMINAL_MAX_STIFFNESS, ctypes.c_double).value
        box = hd._get_doublev(hd.HD_USABLE_WORKSPACE_DIMENSIONS, ctypes.c_double * 6)
        with contextlib.redirect_stdout(io.StringIO()):
            model = hd.get_model()
        return DeviceSpec(
            name=f"openhaptics:{model}",
            kind="openhaptics",
            workspace_min_mm=(box[0], box[1], box[2]),
            workspace_max_mm=(box[3], box[4], box[5]),
            max_force_n=float(max_force),
            max_stiffness_n_per_mm=float(stiffness),
            renders_force=True,
        )

    def _scheduler_tick(self) -> None:
        # HD scheduler thread, inside hdBeginFrame/hdEndFrame: pose in, force out
        hd = self._hd
        try:
            m = hd.get_transform()  # column-major 4x4: m[c][r]
            v = hd._get_doublev(hd.HD_CURRENT_VELOCITY, hd.hduVector3Dd)
            buttons = hd.get_buttons()
            row = self._row
            row[T_S] = time.monotonic() - self._t0_s
            rotation = np.array([[m[c][r] for c in range(3)] for r in range(3)])
            for i in range(3):
                row[X_MM + i] = m[3][i]
                row[VX_MM_S + i] = v[i]
                row[AXIS_X + i] = -rotation[i, 2]  # tool axis at rest is -z
            row[QW : QW + 4] = quaternion_from_matrix(rotation)
            row[BUTTONS] = buttons
            row[SPEED] = 1.0 if buttons & BUTTON_DRILL else 0.0
            self.channel.publish_pose(row)
            force = self.channel.force[int(self.channel.control[FORCE_SLOT])]
            hd.set_force([float(force[0]), float(force[1]), float(force[2])])
            self.callback_ticks += 1
        except Exception as exc:  # reported by close(); an exception here would unschedule us
            self.callback_error = exc

    def calibrate(self) -> None:
        """Update the encoder calibration if the driver says it needs it (Touch: inkwell)."""
        hd = self._hd
        if hd is None:
            raise RuntimeError("open the OpenHaptics device before calibrating it")
        lib = hd._lib_hd
        lib.hdCheckCalibration.restype = ctypes.c_uint
        if lib.hdCheckCalibration() == HD_CALIBRATION_NEEDS_UPDATE:
            lib.hdUpdateCalibration.argtypes = [ctypes.c_int]
            lib.hdUpdateCalibration(hd.HD_CALIBRATION_AUTO)

    def close(self) -> None:
        """Zero the force, let the scheduler send it, stop the scheduler, disable the arm."""
        if not self.is_open:
            return
        self.channel.put_force(np.zeros(3))
        # two scheduler ticks guarantee one full frame carried the zero force
        sent_after = self.callback_ticks + 2
        deadline = time.monotonic() + 0.5
        while self.callback_ticks < sent_after and time.monotonic() < deadline:
            time.sleep(0.001)
        self._hd.stop_scheduler()
        self._hd.close_device(self._id)
        self.is_open = False
        if self.callback_error is not None:
            raise RuntimeError(f"OpenHaptics callback failed: {self.callback_error}")
