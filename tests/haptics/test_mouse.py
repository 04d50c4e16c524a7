"""The mouse/keyboard device: Panda3D events in, pose rows out, and the servo loop reading them.

Events go through a real Panda3D `Messenger` and the real task manager; only the pointer (a
`MouseWatcher` needs a window) and the clock are the test's own.
"""

import time
from typing import Any

import numpy as np
import pytest
from direct.showbase.Messenger import Messenger
from direct.task.TaskManagerGlobal import taskMgr

from haptics.channel import AXIS_X, BUTTONS, QW, SPEED, VX_MM_S, X_MM
from haptics.device import BUTTON_DRILL
from haptics.mouse import MouseKeyboardDevice
from haptics.orientation import axis_from_quaternion
from haptics.servo import ForceField, ServoLoop, default_sphere_params


class Clock:
    def __init__(self) -> None:
        self.t_s = 100.0

    def __call__(self) -> float:
        return self.t_s


class Pointer:
    """Stands in for Panda3D's MouseWatcher (which needs a window)."""

    def __init__(self) -> None:
        self.xy: tuple[float, float] | None = None

    def hasMouse(self) -> bool:  # noqa: N802 - Panda3D's name
        return self.xy is not None

    def getMouse(self) -> tuple[float, float]:  # noqa: N802
        assert self.xy is not None
        return self.xy


class Base:
    """What `attach` needs of a ShowBase: its messenger and task manager."""

    def __init__(self) -> None:
        self.messenger = Messenger()
        self.taskMgr = taskMgr


@pytest.fixture
def rig() -> Any:
    clock, pointer, base = Clock(), Pointer(), Base()
    device = MouseKeyboardDevice(clock=clock)
    device.open()
    device.attach(base, pointer=pointer)
    yield device, clock, pointer, base
    device.close()


def frame(clock: Clock, dt_s: float) -> None:
    clock.t_s += dt_s
    taskMgr.step()


def test_the_pointer_and_held_keys_move_the_tip(rig: Any) -> None:
    device, clock, pointer, base = rig
    pointer.xy = (0.5, -1.0)
    frame(clock, 0.016)
    row = device.channel.latest_pose()
    np.testing.assert_allclose(row[X_MM : X_MM + 3], [30.0, -60.0, 0.0])
    # "w" held for half a second pushes the tip 4 mm into the scene (8 mm/s)
    base.messenger.send("w")
    for _ in range(5):
        frame(clock, 0.1)
    base.messenger.send("w-up")
    frame(clock, 0.5)
    row = device.channel.latest_pose()
    assert row[X_MM + 2] == pytest.approx(-4.0)
    assert device.read().position_mm[2] == pytest.approx(-4.0)
    # a page step pulls it back 1 mm; velocity is the frame-to-frame difference
    base.messenger.send("page_up")
    pointer.xy = (0.6, -1.0)
    frame(clock, 0.02)
    row = device.channel.latest_pose()
    assert row[X_MM + 2] == pytest.approx(-3.0)
    assert row[VX_MM_S] == pytest.approx(6.0 / 0.02)


def test_space_or_the_right_button_runs_the_drill(rig: Any) -> None:
    device, clock, _, base = rig
    assert not device.read().drill_on
    base.messenger.send("space")
    frame(clock, 0.016)
    row = device.channel.latest_pose()
    assert int(row[BUTTONS]) == BUTTON_DRILL and row[SPEED] == 1.0
    base.messenger.send("mouse3")
    base.messenger.send("space-up")
    frame(clock, 0.016)
    assert device.read().drill_on  # the right button still holds it
    base.messenger.send("mouse3-up")
    frame(clock, 0.016)
    assert not device.read().drill_on and device.read().speed == 0.0


def test_tilt_keys_turn_the_tool_axis_and_r_resets_it(rig: Any) -> None:
    device, clock, _, base = rig
    base.messenger.send("l")  # tip to the right: 30 degrees/s about y
    frame(clock, 1.0)
    base.messenger.send("l-up")
    row = device.channel.latest_pose()
    axis = row[AXIS_X : AXIS_X + 3]
    np.testing.assert_allclose(axis, [0.5, 0.0, -np.sqrt(3) / 2], atol=1e-9)
    np.testing.assert_allclose(axis_from_quaternion(row[QW : QW + 4]), axis, atol=1e-9)
    base.messenger.send("r")
    np.testing.assert_allclose(device.read().axis, [0.0, 0.0, -1.0])


def test_detach_stops_listening_and_close_zeroes_the_force(rig: Any) -> None:
    device, clock, _, base = rig
    device.write_force(np.array([3.0, 0.0, 0.0]))
    device.close()
    base.messenger.send("space")
    frame(clock, 0.016)
    assert not device.read().drill_on
    np.testing.assert_array_equal(device.channel.latest_force(), [0.0, 0.0, 0.0])
    assert not taskMgr.hasTaskNamed("osteon-mouse-device")


def test_the_servo_loop_feels_bone_where_the_mouse_puts_the_tip() -> None:
    # bone below device z = -4.5 mm (a 2 mm sphere at z = 0 clears it); the loop reads the
    # mouse device's pose buffer
    density = np.zeros((40, 40, 40), dtype=np.float32)
    density[:, :, :16] = 1.0
    field = ForceField(
        density, (-20.0, -20.0, -20.0), (1.0, 1.0, 1.0), params=default_sphere_params(2.0, 2.0)
    )
    device = MouseKeyboardDevice()
    device.open()
    loop = ServoLoop(device, field, realtime=False, capacity_ticks=100_000)
    loop.start()
    time.sleep(0.05)
    before = loop.new_samples()
    for _ in range(4):
        device.handle_event("page_down")  # tip at z = -4 mm: 1.5 mm into the bone
    time.sleep(0.05)
    after = loop.new_samples()
    loop.stop()
    assert np.all(before[:, 16:19] == 0.0)  # in the air: no force
    assert after[-1, X_MM + 2] == pytest.approx(-4.0)
    assert after[-1, 18] > 0.0  # pushed back up, out of the bone
    assert not device.is_open
