"""OpenVR (SteamVR) controllers as pointing devices, through the `openvr` package.

`openvr` is imported only in `open()` / `probe()`. Three things must be present: the
package and its bundled ``libopenvr_api`` (pip), the SteamVR runtime (found through
``~/.config/openvr/openvrpaths.vrpath``) and a connected controller. When one is missing the
caller gets `DeviceUnavailableError` with one sentence; the library's own messages on
stdout/stderr are swallowed.

A Python thread polls the controller at `poll_hz` (default 250 Hz, above the headset's 90 Hz
tracking prediction) and publishes pose rows to the channel; the compiled servo loop reads
them without the GIL. Controllers render no force: the force magnitude becomes vibration
pulses (``triggerHapticPulse``) on the controller.

Units and axes: OpenVR's standing frame is right-handed, +x right, +y up, +z towards the
user, in metres; the device frame of `haptics.device` is the same in mm, with its origin at
the controller position `calibrate()` took (open() calibrates once). The tool axis is the
controller's -z (forward, out of the grip). The trigger is `BUTTON_DRILL`, its pull the speed.
"""

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

from haptics.channel import AXIS_X, BUTTONS, N_POSE, QW, SPEED, T_S, VX_MM_S, X_MM, FloatArray
from haptics.device import BUTTON_2, BUTTON_DRILL, DeviceSpec, DeviceUnavailableError, HapticDevice
from haptics.orientation import quaternion_from_matrix

MM_PER_M = 1000.0
TRIGGER_PRESSED = 0.5  # trigger pull (0..1) above which the drill runs
GRIP_BUTTON_ID = 2  # openvr.k_EButton_Grip
TRIGGER_AXIS = 1  # rAxis[1] is the trigger on SteamVR controllers
MAX_PULSE_US = 3000  # a pulse longer than ~3.9 ms is refused by the driver


@contextlib.contextmanager
def _quiet_fds() -> Iterator[None]:
    # libopenvr_api prints to the process's stdout/stderr from C: redirect the descriptors
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def _import_openvr() -> ModuleType:
    try:
        with _quiet_fds():
            import openvr
    except (ImportError, OSError) as exc:
        raise DeviceUnavailableError(
            "未安装 openvr 软件包或其库 / the openvr package or its libopenvr_api library is "
            f"missing ({type(exc).__name__})"
        ) from exc
    module: ModuleType = openvr
    return module


def _init(openvr: ModuleType) -> Any:
    # runtime first (a cheap check), then the real init, which also finds the headset
    with _quiet_fds():
        installed = bool(openvr.isRuntimeInstalled())
    if not installed:
        raise DeviceUnavailableError(
            "未安装 SteamVR 运行时 / the SteamVR (OpenVR) runtime is not installed: install "
            "SteamVR and start it once"
        )
    try:
        with _quiet_fds():
            return openvr.init(openvr.VRApplication_Other)
    except openvr.OpenVRError as exc:
        raise DeviceUnavailableError(
            f"OpenVR 无法启动 / OpenVR did not start ({type(exc).__name__}): check that "
            "SteamVR is running and the headset is connected"
        ) from exc


def _find_controller(openvr: ModuleType, system: Any) -> int:
    for index in range(openvr.k_unMaxTrackedDeviceCount):
        if system.getTrackedDeviceClass(
            index
        ) == openvr.TrackedDeviceClass_Controller and system.isTrackedDeviceConnected(index):
            return index
    raise DeviceUnavailableError(
        "没有连接的 VR 手柄 / no OpenVR controller is connected: switch one on and pair it"
    )


def probe() -> None:
    """Return if an OpenVR controller can be used; else raise `DeviceUnavailableError`."""
    openvr = _import_openvr()
    system = _init(openvr)
    try:
        _find_controller(openvr, system)
    finally:
        with _quiet_fds():
            openvr.shutdown()


def pose_row(
    device_from_tracking: FloatArray,
    velocity_m_s: FloatArray,
    trigger: float,
    grip: bool,
    t_s: float,
    origin_mm: FloatArray,
) -> FloatArray:
    """One channel pose row from an OpenVR pose.

    device_from_tracking: float[3, 4], OpenVR's ``mDeviceToAbsoluteTracking`` (rotation |
    translation in m); velocity_m_s: float[3]; trigger: pull 0..1; origin_mm: float[3], the
    standing-frame point (mm) that becomes the device origin.
    """
    m = np.asarray(device_from_tracking, dtype=np.float64).reshape(3, 4)
    rotation = m[:, :3]
    row = np.zeros(N_POSE, dtype=np.float64)
    row[T_S] = t_s
    row[X_MM : X_MM + 3] = m[:, 3] * MM_PER_M - np.asarray(origin_mm, dtype=np.float64)
    row[QW : QW + 4] = quaternion_from_matrix(rotation)
    row[AXIS_X : AXIS_X + 3] = -rotation[:, 2]  # the controller points along its -z
    row[VX_MM_S : VX_MM_S + 3] = np.asarray(velocity_m_s, dtype=np.float64) * MM_PER_M
    drill = trigger >= TRIGGER_PRESSED
    row[BUTTONS] = float((BUTTON_DRILL if drill else 0) | (BUTTON_2 if grip else 0))
    row[SPEED] = min(max(float(trigger), 0.0), 1.0) if drill else 0.0
    return row


class OpenVRDevice(HapticDevice):
    """One OpenVR controller, polled by a Python thread; force becomes vibration."""

    def __init__(self, *, poll_hz: float = 250.0, max_force_n: float = 10.0) -> None:
        super().__init__()
        self.poll_hz = poll_hz
        self._openvr: Any = None
        self._system: Any = None
        self._index = -1
        self._origin_mm = np.zeros(3)
        self._t0_s = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.poll_error: BaseException | None = None
        self._spec = DeviceSpec(
            name="openvr",
            kind="openvr",
            workspace_min_mm=(-800.0, -800.0, -800.0),
            workspace_max_mm=(800.0, 800.0, 800.0),
            max_force_n=max_force_n,
            max_stiffness_n_per_mm=2.0,
            renders_force=False,
        )

    @property
    def spec(self) -> DeviceSpec:
        return self._spec

    def open(self) -> None:
        openvr = _import_openvr()
        system = _init(openvr)
        try:
            self._index = _find_controller(openvr, system)
        except DeviceUnavailableError:
            with _quiet_fds():
                openvr.shutdown()
            raise
        self._openvr, self._system = openvr, system
        self._t0_s = time.monotonic()
        self.calibrate()
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="openvr-poll", daemon=True)
        self._thread.start()
        self.is_open = True

    def _read(self) -> tuple[FloatArray, FloatArray, float, bool, bool]:
        openvr, system = self._openvr, self._system
        poses = system.getDeviceToAbsoluteTrackingPose(openvr.TrackingUniverseStanding, 0.0, None)
        pose = poses[self._index]
        m = np.array([[pose.mDeviceToAbsoluteTracking[r][c] for c in range(4)] for r in range(3)])
        velocity = np.array([pose.vVelocity[i] for i in range(3)])
        _, state = system.getControllerState(self._index)
        trigger = float(state.rAxis[TRIGGER_AXIS].x)
        grip = bool(state.ulButtonPressed & (1 << GRIP_BUTTON_ID))
        return m, velocity, trigger, grip, bool(pose.bPoseIsValid)

    def calibrate(self) -> None:
        """Make the controller's current position the device origin."""
        if self._system is None:
            raise RuntimeError("open the OpenVR device before calibrating it")
        m, _, _, _, valid = self._read()
        if valid:
            self._origin_mm = m[:, 3] * MM_PER_M

    def _poll(self) -> None:
        # a Python thread: it takes the GIL each poll, the compiled servo loop does not need it
        period_s = 1.0 / self.poll_hz
        next_s = time.monotonic()
        try:
            while not self._stop.is_set():
                m, velocity, trigger, grip, valid = self._read()
                if valid:
                    t_s = time.monotonic() - self._t0_s
                    self.channel.publish_pose(
                        pose_row(m, velocity, trigger, grip, t_s, self._origin_mm)
                    )
                self._vibrate(float(np.linalg.norm(self.channel.latest_force())))
                next_s += period_s
                time.sleep(max(next_s - time.monotonic(), 0.0))
        except Exception as exc:  # reported by close(); a dead poller must not pass silently
            self.poll_error = exc

    def _vibrate(self, force_n: float) -> None:
        fraction = min(force_n / self._spec.max_force_n, 1.0)
        if fraction > 0.05:
            self._system.triggerHapticPulse(self._index, 0, int(fraction * MAX_PULSE_US))

    def close(self) -> None:
        """Stop polling and shut OpenVR down. Idempotent."""
        if not self.is_open:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self.channel.put_force(np.zeros(3))
        with _quiet_fds():
            self._openvr.shutdown()
        self.is_open = False
        if self.poll_error is not None:
            raise RuntimeError(f"OpenVR polling failed: {self.poll_error}")
