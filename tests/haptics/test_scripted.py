"""The scripted device: trajectory files (CSV, .npz) resampled at 1 kHz, bad files refused,
and the device interface (spec, read, clamped force)."""

from pathlib import Path

import numpy as np
import pytest

from haptics.channel import AXIS_X, BUTTONS, QW, SPEED, T_S, VX_MM_S, X_MM
from haptics.orientation import axis_from_quaternion
from haptics.scripted import (
    TRAJECTORY_COLUMNS,
    ScriptedDevice,
    TrajectoryError,
    load_trajectory,
    save_trajectory,
)

EXAMPLE = """# expert pilot hole
t_s,x_mm,y_mm,z_mm,axis_x,axis_y,axis_z,buttons,speed
0.0,0,0,20,0,0,-1,0,0
0.5,0,0,10,0,0,-1,1,1
2.0,0,0,0,0,0,-2,1,1
"""


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_csv_trajectory_is_resampled_at_1khz(tmp_path: Path) -> None:
    rows = load_trajectory(write(tmp_path, EXAMPLE))
    assert rows.shape == (2001, 16)
    np.testing.assert_allclose(rows[:, T_S], np.arange(2001) * 0.001)
    assert rows[250, X_MM + 2] == pytest.approx(15.0)  # halfway down the first piece
    assert rows[499, BUTTONS] == 0 and rows[500, BUTTONS] == 1  # buttons hold, no blending
    assert rows[250, SPEED] == pytest.approx(0.5)
    assert rows[1000, VX_MM_S + 2] == pytest.approx(-10.0 / 1.5)  # mm/s in the second piece
    np.testing.assert_allclose(rows[:, AXIS_X : AXIS_X + 3], [[0, 0, -1]] * 2001)
    np.testing.assert_allclose(axis_from_quaternion(rows[1500, QW : QW + 4]), [0, 0, -1])


def test_csv_and_npz_files_hold_the_same_trajectory(tmp_path: Path) -> None:
    csv_rows = load_trajectory(write(tmp_path, EXAMPLE))
    table = np.loadtxt(EXAMPLE.splitlines()[2:], delimiter=",")
    columns = {name: table[:, i] for i, name in enumerate(TRAJECTORY_COLUMNS)}
    save_trajectory(tmp_path / "t.npz", columns)
    np.testing.assert_array_equal(load_trajectory(tmp_path / "t.npz"), csv_rows)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("t_s,x_mm\n0,1\n", "missing"),
        (EXAMPLE.replace("speed\n", "speed,colour\n"), "values per row|unknown"),
        (EXAMPLE.replace("2.0,0,0,0", "0.2,0,0,0"), "increasing"),
        (EXAMPLE.replace("0,0,-2,1,1", "0,0,0,1,1"), "zero length"),
        (EXAMPLE.replace("0,0,-2,1,1", "0,0,-2,1,3"), "speed"),
        (EXAMPLE.replace("0.5,0,0,10", "0.5,0,nan,10"), "NaN"),
        (EXAMPLE.replace("0.5,0,0,10", "0.5,0,zero,10"), "malformed"),
    ],
)
def test_a_bad_trajectory_file_is_refused_with_its_name(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TrajectoryError, match=message) as caught:
        load_trajectory(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_a_trajectory_error(tmp_path: Path) -> None:
    with pytest.raises(TrajectoryError, match="cannot read"):
        load_trajectory(tmp_path / "absent.csv")


def test_the_scripted_device_implements_the_device_interface(tmp_path: Path) -> None:
    device = ScriptedDevice.from_file(write(tmp_path, EXAMPLE))
    assert device.n_ticks == 2001 and not device.is_open
    device.open()
    device.calibrate()
    sample = device.read()
    assert sample.position_mm == (0.0, 0.0, 20.0) and not sample.drill_on
    assert device.spec.kind == "scripted" and not device.spec.renders_force
    device.write_force(np.array([30.0, 40.0, 0.0]))  # 50 N asked, 10 N allowed
    np.testing.assert_allclose(device.channel.latest_force(), [6.0, 8.0, 0.0])
    device.write_force(np.array([np.nan, 0.0, 0.0]))
    np.testing.assert_array_equal(device.channel.latest_force(), [0.0, 0.0, 0.0])
    device.close()
    assert not device.is_open
