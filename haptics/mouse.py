"""A mouse and keyboard standing in for a haptic arm, for people without one.

Controls (Panda3D event names in brackets; the scene view keeps the arrow keys, the number
keys, the wheel, the left button and escape for the camera):

| input                         | effect                                                     |
| ----------------------------- | ---------------------------------------------------------- |
| pointer (over the window)     | tool tip x, y across the workspace (left edge = x min)     |
| ``w`` / ``s`` held            | push the tip into the scene (-z) / pull it back (+z)       |
| ``page_up`` / ``page_down``   | one depth step (``depth_step_mm``) out / in                 |
| ``i`` / ``k`` held            | tilt the tool axis about x (tip up / down)                  |
| ``j`` / ``l`` held            | tilt the tool axis about y (tip left / right)               |
| ``r``                         | tool axis back to straight in (-z)                          |
| ``space`` or right button held | drill on (``BUTTON_DRILL``) at full speed                  |

Positions are in the device frame of `haptics.device` (mm; +x right, +y up, +z towards the
user). The device renders no force (`spec.renders_force` is False): the engine's force is
shown on the HUD only.

Events arrive either from a Panda3D `ShowBase` (`attach(base)`: its messenger for keys and
buttons, a per-frame task reading ``base.mouseWatcherNode``) or from the caller directly
(`handle_event`, `set_pointer`, `update`): the same code path, so tests inject events without
a display. Each `update` integrates the held keys over the time since the last one and
publishes one pose row to the channel, where the compiled servo loop reads it.
"""

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from haptics.channel import AXIS_X, BUTTONS, N_POSE, QW, SPEED, T_S, VX_MM_S, X_MM
from haptics.device import BUTTON_DRILL, DeviceSpec, DeviceUnavailableError, HapticDevice
from haptics.orientation import quaternion_from_axis

# held keys and what they do: (quantity, sign)
_HELD: dict[str, tuple[str, float]] = {
    "w": ("depth", -1.0),
    "s": ("depth", 1.0),
    "i": ("tilt_x", 1.0),
    "k": ("tilt_x", -1.0),
    "j": ("tilt_y", -1.0),
    "l": ("tilt_y", 1.0),
}
_DRILL_KEYS = ("space", "mouse3")
_STEP_KEYS = {"page_up": 1.0, "page_down": -1.0}
_RESET_KEY = "r"
MAX_TILT_RAD = math.radians(60.0)
TASK_NAME = "osteon-mouse-device"


class PointerSource(Protocol):
    """What `attach` reads the pointer from: Panda3D's `MouseWatcher` has these."""

    def hasMouse(self) -> bool: ...  # noqa: N802 - Panda3D's names

    def getMouse(self) -> Any: ...  # noqa: N802


def probe() -> None:
    """Return if a window can open for the mouse device; else raise `DeviceUnavailableError`."""
    display = os.environ.get("DISPLAY", "")
    if not display:
        raise DeviceUnavailableError(
            "没有图形显示 / no display here (DISPLAY is not set): the mouse device needs a window"
        )
    # a local display (":N") is a socket in /tmp/.X11-unix; remote ones are taken on trust
    host, _, number = display.partition(":")
    socket = Path(f"/tmp/.X11-unix/X{number.split('.')[0]}")
    if host in ("", "unix") and not socket.exists():
        raise DeviceUnavailableError(
            f"显示 {display} 不存在 / the display {display} named by DISPLAY is not running "
            "(no X server), so the mouse device cannot open a window"
        )
    try:
        import panda3d.core  # noqa: F401
    except ImportError as exc:
        raise DeviceUnavailableError(
            f"未安装 Panda3D / Panda3D is not installed, so no window can open ({exc})"
        ) from exc


class MouseKeyboardDevice(HapticDevice):
    """Pointer position and held keys as a 3-D tool pose; publishes one pose row per update."""

    def __init__(
        self,
        *,
        workspace_half_mm: tuple[float, float, float] = (60.0, 60.0, 60.0),
        depth_rate_mm_s: float = 8.0,
        depth_step_mm: float = 1.0,
        tilt_rate_rad_s: float = math.radians(30.0),
        max_force_n: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """clock: seconds, monotonic (tests pass their own)."""
        super().__init__()
        hx, hy, hz = workspace_half_mm
        self._spec = DeviceSpec(
            name="mouse",
            kind="mouse",
            workspace_min_mm=(-hx, -hy, -hz),
            workspace_max_mm=(hx, hy, hz),
            max_force_n=max_force_n,
            max_stiffness_n_per_mm=2.0,
            renders_force=False,
        )
        self.depth_rate_mm_s = depth_rate_mm_s
        self.depth_step_mm = depth_step_mm
        self.tilt_rate_rad_s = tilt_rate_rad_s
        self._clock = clock
        self._held: set[str] = set()
        self._pointer = (0.0, 0.0)  # -1..1, Panda3D's convention (+y up)
        self._z_mm = 0.0
        self._tilt_x_rad = 0.0
        self._tilt_y_rad = 0.0
        self._t0_s = 0.0
        self._last_s: float | None = None
        self._row = np.zeros(N_POSE, dtype=np.float64)
        self._listener: Any = None
        self._base: Any = None

    @property
    def spec(self) -> DeviceSpec:
        return self._spec

    def open(self) -> None:
        """Start at the workspace centre, tool straight in, drill off."""
        self._t0_s = self._clock()
        self._last_s = None
        self.is_open = True
        self.update()

    def close(self) -> None:
        self.detach()
        self.channel.put_force(np.zeros(3))
        self.is_open = False

    # input side: what Panda3D events (or a test) feed in
    def handle_event(self, name: str) -> None:
        """Apply one Panda3D key or button event (``"w"``, ``"w-up"``, ``"mouse3"``, ...)."""
        key, up = (name[:-3], True) if name.endswith("-up") else (name, False)
        if key in _HELD or key in _DRILL_KEYS:
            # integrate up to now with the old key state, then change it
            self.update()
            if up:
                self._held.discard(key)
            else:
                self._held.add(key)
            self.update()
        elif key in _STEP_KEYS and not up:
            self._z_mm = self._clamp_z(self._z_mm + _STEP_KEYS[key] * self.depth_step_mm)
            self.update()
        elif key == _RESET_KEY and not up:
            self._tilt_x_rad = self._tilt_y_rad = 0.0
            self.update()

    def set_pointer(self, x: float, y: float) -> None:
        """The pointer in window coordinates, -1..1 each way (+y up); clamped."""
        self._pointer = (min(max(x, -1.0), 1.0), min(max(y, -1.0), 1.0))

    @property
    def drill_on(self) -> bool:
        return any(key in self._held for key in _DRILL_KEYS)

    def _clamp_z(self, z_mm: float) -> float:
        return min(max(z_mm, self._spec.workspace_min_mm[2]), self._spec.workspace_max_mm[2])

    def update(self) -> None:
        """Integrate the held keys up to now and publish the pose (the frame task calls this)."""
        now_s = self._clock()
        dt_s = 0.0 if self._last_s is None else max(now_s - self._last_s, 0.0)
        # held keys move the depth and tilt at fixed rates
        for key in self._held:
            if key not in _HELD:
                continue
            quantity, sign = _HELD[key]
            if quantity == "depth":
                self._z_mm = self._clamp_z(self._z_mm + sign * self.depth_rate_mm_s * dt_s)
            elif quantity == "tilt_x":
                self._tilt_x_rad += sign * self.tilt_rate_rad_s * dt_s
            else:
                self._tilt_y_rad += sign * self.tilt_rate_rad_s * dt_s
        self._tilt_x_rad = min(max(self._tilt_x_rad, -MAX_TILT_RAD), MAX_TILT_RAD)
        self._tilt_y_rad = min(max(self._tilt_y_rad, -MAX_TILT_RAD), MAX_TILT_RAD)
        # pointer spans the workspace in x, y
        lo, hi = self._spec.workspace_min_mm, self._spec.workspace_max_mm
        position = np.array(
            [
                lo[0] + (self._pointer[0] + 1.0) * 0.5 * (hi[0] - lo[0]),
                lo[1] + (self._pointer[1] + 1.0) * 0.5 * (hi[1] - lo[1]),
                self._z_mm,
            ]
        )
        # tilt about x raises the tip (+y), tilt about y swings it right (+x)
        axis = np.array(
            [
                math.sin(self._tilt_y_rad),
                math.sin(self._tilt_x_rad) * math.cos(self._tilt_y_rad),
                -math.cos(self._tilt_x_rad) * math.cos(self._tilt_y_rad),
            ]
        )
        axis /= np.linalg.norm(axis)
        row = self._row
        previous = row[X_MM : X_MM + 3].copy()
        row[T_S] = now_s - self._t0_s
        if dt_s > 0.0:
            row[VX_MM_S : VX_MM_S + 3] = (position - previous) / dt_s
        elif self._last_s is None:
            row[VX_MM_S : VX_MM_S + 3] = 0.0
        row[X_MM : X_MM + 3] = position
        row[AXIS_X : AXIS_X + 3] = axis
        row[QW : QW + 4] = quaternion_from_axis(axis)
        drill = self.drill_on
        row[BUTTONS] = float(BUTTON_DRILL if drill else 0)
        row[SPEED] = 1.0 if drill else 0.0
        self.channel.publish_pose(row)
        self._last_s = now_s

    # Panda3D side
    def attach(self, base: Any, pointer: PointerSource | None = None) -> None:
        """Listen to `base.messenger` for keys and buttons and update once per frame.

        base: a `ShowBase` (anything with `messenger` and `taskMgr`); pointer: where the
        pointer is read each frame (default `base.mouseWatcherNode`).
        """
        from direct.showbase.DirectObject import DirectObject

        self.detach()
        listener = DirectObject()
        # DirectObject.accept uses the global messenger; bind to the base's own one
        for key in (*_HELD, *_DRILL_KEYS, *_STEP_KEYS, _RESET_KEY):
            for name in (key, f"{key}-up"):
                base.messenger.accept(name, listener, self.handle_event, [name])
        source = pointer if pointer is not None else getattr(base, "mouseWatcherNode", None)

        def frame(task: Any) -> Any:
            if source is not None and source.hasMouse():
                mouse = source.getMouse()
                self.set_pointer(float(mouse[0]), float(mouse[1]))
            self.update()
            return task.cont

        base.taskMgr.add(frame, TASK_NAME, sort=-10)
        self._listener = listener
        self._base = base

    def detach(self) -> None:
        """Stop listening to the base `attach` bound (no-op if none)."""
        if self._base is None:
            return
        self._base.messenger.ignoreAll(self._listener)
        self._base.taskMgr.remove(TASK_NAME)
        self._base = None
        self._listener = None
