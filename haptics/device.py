"""The one interface every haptic device implements, in mm, s and N.

Axes (device frame, right-handed, the OpenHaptics convention): +x to the user's right, +y up,
+z towards the user; the origin is the centre of the device workspace. The tool axis is the
unit vector from the handle to the tip; with the identity orientation it points along -z
(away from the user, into the scene). Orientation is a unit quaternion (w, x, y, z) rotating
device-frame tool coordinates into the device frame. Forces are in N, in the device frame,
acting on the user's hand; torques (devices with `DeviceSpec.renders_torque`) in N·mm about the
tool tip, same frame.

Devices publish their pose into a `ServoChannel` (see `haptics.channel`) so the compiled servo
loop can read it without the GIL; `read()` returns the latest of those samples.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from haptics.channel import AXIS_X, BUTTONS, QW, SPEED, T_S, VX_MM_S, X_MM, FloatArray, ServoChannel

BUTTON_DRILL = 1  # bit 0: drill on (stylus button 1, mouse left button, scripted drill-on)
BUTTON_2 = 2  # bit 1: stylus button 2 / right button


class DeviceUnavailableError(Exception):
    """The device cannot be used here; the message is one sentence a person can act on."""


@dataclass(frozen=True)
class DeviceSpec:
    """What a device can do: its workspace box, force and stiffness limits."""

    name: str
    kind: str  # "scripted" | "mouse" | "openhaptics" | "openvr"
    workspace_min_mm: tuple[float, float, float]
    workspace_max_mm: tuple[float, float, float]
    max_force_n: float  # the servo loop clamps |F| to this
    max_stiffness_n_per_mm: float  # force kernels must not exceed it (stability)
    renders_force: bool  # False: force is only shown (HUD) or felt as vibration
    # torque about the tip the device can render, N·mm; 0 (3-DOF output, e.g. Touch): the
    # engine's torque (a tool held by bone against a turn) is only shown in the HUD
    max_torque_n_mm: float = 0.0

    @property
    def renders_torque(self) -> bool:
        return self.max_torque_n_mm > 0.0


@dataclass(frozen=True)
class DeviceSample:
    """One reading of a device, in the device frame."""

    t_s: float
    position_mm: tuple[float, float, float]
    orientation_wxyz: tuple[float, float, float, float]
    axis: tuple[float, float, float]  # unit, handle to tip
    velocity_mm_s: tuple[float, float, float]
    buttons: int  # bit mask, BUTTON_DRILL = bit 0
    speed: float  # drill speed, fraction of the instrument's rated speed (0..1)

    @property
    def drill_on(self) -> bool:
        return bool(self.buttons & BUTTON_DRILL)

    @classmethod
    def from_row(cls, row: FloatArray) -> "DeviceSample":
        """Build a sample from a pose row in the `haptics.channel` layout."""
        return cls(
            t_s=float(row[T_S]),
            position_mm=(float(row[X_MM]), float(row[X_MM + 1]), float(row[X_MM + 2])),
            orientation_wxyz=(
                float(row[QW]),
                float(row[QW + 1]),
                float(row[QW + 2]),
                float(row[QW + 3]),
            ),
            axis=(float(row[AXIS_X]), float(row[AXIS_X + 1]), float(row[AXIS_X + 2])),
            velocity_mm_s=(float(row[VX_MM_S]), float(row[VX_MM_S + 1]), float(row[VX_MM_S + 2])),
            buttons=int(row[BUTTONS]),
            speed=float(row[SPEED]),
        )


class HapticDevice(ABC):
    """A haptic (or pointing) device. Lifecycle: open, calibrate, read/write_force, close.

    The servo loop never calls these methods per tick: it reads `channel.pose` (or
    `channel.script`) and writes `channel.force`; the device side moves data between the channel
    and the hardware. `write_force` is for use outside a running loop (e.g. zero at stop).
    """

    def __init__(self) -> None:
        self.channel = ServoChannel()
        self.is_open = False

    @property
    @abstractmethod
    def spec(self) -> DeviceSpec:
        """Workspace and limits; valid after `open()`."""

    @abstractmethod
    def open(self) -> None:
        """Connect; raise `DeviceUnavailableError` with one clear sentence when it cannot."""

    @abstractmethod
    def close(self) -> None:
        """Send a zero force if the device renders force, then disconnect. Idempotent."""

    def calibrate(self) -> None:  # noqa: B027 - devices without calibration need nothing
        """Bring the device's encoders to a known reference (no-op where not needed)."""

    def read(self) -> DeviceSample:
        """The latest sample the device side published."""
        return DeviceSample.from_row(self.channel.latest_pose())

    def write_force(self, force_n: FloatArray) -> None:
        """Set the force (3 floats, N, device frame), clamped to `spec.max_force_n`."""
        force = np.asarray(force_n, dtype=np.float64).reshape(3)
        magnitude = float(np.linalg.norm(force))
        limit = self.spec.max_force_n
        if not np.isfinite(magnitude):
            force = np.zeros(3)
        elif magnitude > limit:
            force = force * (limit / magnitude)
        self.channel.put_force(force)
