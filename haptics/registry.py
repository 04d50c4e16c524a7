"""Every kind of device Osteon knows, whether each can be used here, and opening one by name.

Device names (the ``--device`` option of ``osteon sim run``):

- ``scripted:FILE`` — replays a trajectory file (`haptics.scripted`); always available.
- ``mouse`` — mouse and keyboard in the Panda3D window (`haptics.mouse`); needs a display.
- ``openhaptics`` or ``openhaptics:NAME`` — an OpenHaptics arm (`haptics.openhaptics`).
- ``openvr`` — an OpenVR controller (`haptics.openvr_device`).

Drivers are imported only when their kind is probed or opened.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from haptics.device import DeviceUnavailableError, HapticDevice


@dataclass(frozen=True)
class DeviceKind:
    name: str
    usage: str  # how to name it for --device
    summary: str


@dataclass(frozen=True)
class DeviceStatus:
    kind: str
    usage: str
    summary: str
    available: bool
    reason: str  # why not (one sentence), or what was found

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEVICE_KINDS: tuple[DeviceKind, ...] = (
    DeviceKind("scripted", "scripted:FILE", "轨迹回放 / replays a trajectory file (tests, demos)"),
    DeviceKind("mouse", "mouse", "鼠标与键盘 / mouse and keyboard in the simulator window"),
    DeviceKind(
        "openhaptics",
        "openhaptics[:NAME]",
        "OpenHaptics 力反馈臂 / OpenHaptics arm (Touch, Touch X, Phantom)",
    ),
    DeviceKind("openvr", "openvr", "OpenVR 手柄 / OpenVR (SteamVR) controller, vibration only"),
)


def _probe_scripted() -> str:
    return "always: give a trajectory file, or scripted:expert|novice for a scenario"


def _probe_mouse() -> str:
    from haptics.mouse import probe

    probe()
    return "a display is set; the device lives in the simulator window"


def _probe_openhaptics() -> str:
    from haptics.openhaptics import DEFAULT_DEVICE_NAME, probe

    probe()
    return f"the arm {DEFAULT_DEVICE_NAME!r} initialised"


def _probe_openvr() -> str:
    from haptics.openvr_device import probe

    probe()
    return "SteamVR is running and a controller is connected"


_PROBES: dict[str, Callable[[], str]] = {
    "scripted": _probe_scripted,
    "mouse": _probe_mouse,
    "openhaptics": _probe_openhaptics,
    "openvr": _probe_openvr,
}


def device_statuses() -> list[DeviceStatus]:
    """Probe every device kind (opens and closes real hardware where present)."""
    statuses = []
    for kind in DEVICE_KINDS:
        try:
            found = _PROBES[kind.name]()
        except DeviceUnavailableError as exc:
            statuses.append(DeviceStatus(kind.name, kind.usage, kind.summary, False, str(exc)))
        else:
            statuses.append(DeviceStatus(kind.name, kind.usage, kind.summary, True, found))
    return statuses


def make_device(name: str) -> HapticDevice:
    """The device a ``--device`` name means, not yet opened; `ValueError` for unknown names."""
    kind, _, arg = name.partition(":")
    if kind == "scripted" and arg:
        from haptics.scripted import ScriptedDevice

        return ScriptedDevice.from_file(Path(arg))
    if kind == "mouse" and not arg:
        from haptics.mouse import MouseKeyboardDevice

        return MouseKeyboardDevice()
    if kind == "openhaptics":
        from haptics.openhaptics import DEFAULT_DEVICE_NAME, OpenHapticsDevice

        return OpenHapticsDevice(arg or DEFAULT_DEVICE_NAME)
    if kind == "openvr" and not arg:
        from haptics.openvr_device import OpenVRDevice

        return OpenVRDevice()
    usages = ", ".join(k.usage for k in DEVICE_KINDS)
    raise ValueError(f"未知设备 / unknown device {name!r}: expected one of {usages}")


def open_device(name: str) -> HapticDevice:
    """Make and open a device; `DeviceUnavailableError` (one sentence) when it cannot open."""
    device = make_device(name)
    device.open()
    return device
