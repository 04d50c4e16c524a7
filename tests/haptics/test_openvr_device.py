"""The OpenVR controller adapter: the real library without a runtime, and the pose conversion.

No headset or SteamVR is installed here, so `open()` goes through the real `openvr` package
and its real ``libopenvr_api`` up to the point where the runtime is missing.
"""

import math
import sys

import numpy as np
import pytest

from haptics.channel import AXIS_X, BUTTONS, QW, SPEED, VX_MM_S, X_MM
from haptics.device import BUTTON_2, BUTTON_DRILL, DeviceUnavailableError
from haptics.openvr_device import OpenVRDevice, pose_row, probe
from haptics.orientation import axis_from_quaternion


def one_sentence(message: str) -> bool:
    return "\n" not in message and "Traceback" not in message and 20 < len(message) < 300


def test_without_the_steamvr_runtime_open_says_so_in_one_sentence(
    capfd: pytest.CaptureFixture[str],
) -> None:
    device = OpenVRDevice()
    with pytest.raises(DeviceUnavailableError) as caught:
        device.open()
    assert "SteamVR" in str(caught.value) and one_sentence(str(caught.value))
    assert not device.is_open
    with pytest.raises(DeviceUnavailableError):
        probe()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_when_init_itself_fails_the_library_noise_is_swallowed(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # claim a runtime, so the real openvr.init runs and fails on the missing path registry
    import openvr

    monkeypatch.setattr(openvr, "isRuntimeInstalled", lambda: True)
    with pytest.raises(DeviceUnavailableError) as caught:
        OpenVRDevice().open()
    assert "OpenVR did not start" in str(caught.value) and one_sentence(str(caught.value))
    assert isinstance(caught.value.__cause__, openvr.OpenVRError)
    out, err = capfd.readouterr()
    assert "Path Registry" not in out + err


def test_without_the_openvr_package_open_says_so_in_one_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "openvr", None)  # import openvr now raises ImportError
    with pytest.raises(DeviceUnavailableError, match="openvr package") as caught:
        OpenVRDevice().open()
    assert one_sentence(str(caught.value))


def test_a_controller_pose_becomes_a_device_row_in_mm() -> None:
    # controller turned 90 degrees left about +y (its -z now points along -x), 1.2 m up
    c, s = math.cos(math.pi / 2), math.sin(math.pi / 2)
    rotation = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    matrix = np.hstack([rotation, np.array([[0.1], [1.2], [-0.3]])])
    row = pose_row(matrix, np.array([0.01, 0.0, 0.0]), 0.8, True, 2.5, np.array([0.0, 1000.0, 0.0]))
    np.testing.assert_allclose(row[X_MM : X_MM + 3], [100.0, 200.0, -300.0])
    np.testing.assert_allclose(row[AXIS_X : AXIS_X + 3], [-1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(axis_from_quaternion(row[QW : QW + 4]), [-1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(row[VX_MM_S : VX_MM_S + 3], [10.0, 0.0, 0.0])
    assert int(row[BUTTONS]) == BUTTON_DRILL | BUTTON_2 and row[SPEED] == pytest.approx(0.8)
    released = pose_row(matrix, np.zeros(3), 0.3, False, 2.5, np.zeros(3))
    assert int(released[BUTTONS]) == 0 and released[SPEED] == 0.0
