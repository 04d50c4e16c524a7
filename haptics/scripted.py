"""A device that replays a trajectory file: for tests, demos and `--device scripted:FILE`.

Trajectory file format (CSV or .npz), one row per sample, in device coordinates (axes in
`haptics.device`):

| column            | unit | meaning                                                       |
| ----------------- | ---- | ------------------------------------------------------------- |
| `t_s`             | s    | sample time, >= 0, strictly increasing                        |
| `x_mm,y_mm,z_mm`  | mm   | tool tip position                                              |
| `axis_x,_y,_z`    | -    | tool axis, handle to tip (any non-zero length; normalised)     |
| `buttons`         | -    | integer bit mask; bit 0 (value 1) = drill on                   |
| `speed`           | 0..1 | drill speed as a fraction of the instrument's rated speed      |

- CSV: UTF-8, a header line naming all nine columns (any order, extra columns rejected),
  comma separated; lines starting with `#` are comments.
- .npz: nine 1-D arrays of equal length under the same names.

Samples may come at any rate; on load the trajectory is resampled at 1 kHz (tick k at
t = k ms, k = 0 .. floor(last t_s * 1000)): positions, axes (renormalised) and speed are
interpolated linearly, buttons hold the last sample's value, the position before the first
sample holds the first sample, velocity (mm/s) is the finite difference of the resampled
positions. Tick k of the servo loop uses row k; after the last row the loop ends.

Example (a 2 s plunge 10 mm down -z with the drill on from 0.5 s)::

    # expert pilot hole
    t_s,x_mm,y_mm,z_mm,axis_x,axis_y,axis_z,buttons,speed
    0.0,0,0,20,0,0,-1,0,0
    0.5,0,0,10,0,0,-1,1,1
    2.0,0,0,0,0,0,-1,1,1
"""

import io
from pathlib import Path
from typing import Any

import numpy as np

from haptics.channel import (
    AXIS_X,
    BUTTONS,
    N_POSE,
    QW,
    SPEED,
    T_S,
    VX_MM_S,
    X_MM,
    FloatArray,
    ServoChannel,
)
from haptics.device import DeviceSpec, HapticDevice
from haptics.orientation import quaternion_from_axis

TRAJECTORY_COLUMNS: tuple[str, ...] = (
    "t_s",
    "x_mm",
    "y_mm",
    "z_mm",
    "axis_x",
    "axis_y",
    "axis_z",
    "buttons",
    "speed",
)
TICK_S = 0.001  # 1 kHz: the servo rate


class TrajectoryError(ValueError):
    """A trajectory file that cannot be used; the message names the file and the problem."""


def _read_columns(path: Path) -> dict[str, FloatArray]:
    # one reader per suffix; both end as named float64 columns
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                return {name: np.asarray(data[name], dtype=np.float64) for name in data.files}
        except (OSError, ValueError) as exc:
            raise TrajectoryError(
                f"轨迹文件无法读取 / cannot read trajectory {path}: {exc}"
            ) from exc
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrajectoryError(f"轨迹文件无法读取 / cannot read trajectory {path}: {exc}") from exc
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        raise TrajectoryError(f"轨迹文件为空 / trajectory {path} is empty")
    header = [name.strip() for name in lines[0].split(",")]
    try:
        table = np.loadtxt(io.StringIO("\n".join(lines[1:])), delimiter=",", ndmin=2)
    except ValueError as exc:
        raise TrajectoryError(f"轨迹文件格式错误 / malformed trajectory {path}: {exc}") from exc
    if table.shape[0] > 0 and table.shape[1] != len(header):
        raise TrajectoryError(
            f"轨迹文件列数不符 / trajectory {path}: {table.shape[1]} values per row, "
            f"{len(header)} in the header"
        )
    return {name: table[:, i] if table.size else np.zeros(0) for i, name in enumerate(header)}


def load_trajectory(path: Path) -> FloatArray:
    """Read a trajectory file and resample it at 1 kHz into pose rows (`haptics.channel`)."""
    columns = _read_columns(path)
    # the columns must be exactly the documented ones
    missing = [name for name in TRAJECTORY_COLUMNS if name not in columns]
    extra = sorted(set(columns) - set(TRAJECTORY_COLUMNS))
    if missing or extra:
        raise TrajectoryError(
            f"轨迹文件列名不符 / trajectory {path}: missing {missing}, unknown {extra}; "
            f"expected {', '.join(TRAJECTORY_COLUMNS)}"
        )
    return resample_trajectory({name: columns[name] for name in TRAJECTORY_COLUMNS}, str(path))


def resample_trajectory(columns: dict[str, FloatArray], source: str = "trajectory") -> FloatArray:
    """Resample named trajectory columns (see the module docstring) into 1 kHz pose rows."""
    t_s = np.asarray(columns["t_s"], dtype=np.float64)
    lengths = {len(np.asarray(columns[name])) for name in TRAJECTORY_COLUMNS}
    if len(lengths) != 1 or t_s.ndim != 1:
        raise TrajectoryError(f"轨迹列长度不一致 / {source}: columns differ in length")
    if t_s.size == 0:
        raise TrajectoryError(f"轨迹没有样本 / {source} has no samples")
    table = np.stack([np.asarray(columns[name], dtype=np.float64) for name in TRAJECTORY_COLUMNS])
    if not np.all(np.isfinite(table)):
        raise TrajectoryError(f"轨迹含有非数值 / {source} holds NaN or infinite values")
    if t_s[0] < 0 or np.any(np.diff(t_s) <= 0):
        raise TrajectoryError(f"轨迹时间必须非负且递增 / {source}: t_s must be >= 0 and increasing")
    axis = table[4:7]
    if np.any(np.linalg.norm(axis, axis=0) < 1e-9):
        raise TrajectoryError(f"工具轴长度为零 / {source}: a tool axis has zero length")
    speed = table[8]
    if np.any(speed < 0) or np.any(speed > 1):
        raise TrajectoryError(f"钻速超出 0..1 / {source}: speed must lie in 0..1")

    # 1 kHz time base; linear pieces, buttons held
    n_ticks = int(np.floor(t_s[-1] / TICK_S + 1e-9)) + 1
    ticks_s = np.arange(n_ticks, dtype=np.float64) * TICK_S
    rows = np.zeros((n_ticks, N_POSE), dtype=np.float64)
    rows[:, T_S] = ticks_s
    for i in range(3):
        rows[:, X_MM + i] = np.interp(ticks_s, t_s, table[1 + i])
        rows[:, AXIS_X + i] = np.interp(ticks_s, t_s, axis[i])
    rows[:, AXIS_X : AXIS_X + 3] /= np.linalg.norm(rows[:, AXIS_X : AXIS_X + 3], axis=1)[:, None]
    held = np.clip(np.searchsorted(t_s, ticks_s + 1e-12, side="right") - 1, 0, t_s.size - 1)
    rows[:, BUTTONS] = np.round(table[7][held])
    rows[:, SPEED] = np.interp(ticks_s, t_s, speed)
    if n_ticks > 1:
        rows[:, VX_MM_S : VX_MM_S + 3] = np.gradient(rows[:, X_MM : X_MM + 3], TICK_S, axis=0)
    # the axis is constant over most of a trajectory: one quaternion per distinct axis
    distinct, which = np.unique(rows[:, AXIS_X : AXIS_X + 3], axis=0, return_inverse=True)
    quats = np.array([quaternion_from_axis(a) for a in distinct])
    rows[:, QW : QW + 4] = quats[which.reshape(-1)]
    return rows


def save_trajectory(path: Path, columns: dict[str, FloatArray]) -> None:
    """Write trajectory columns (names as in the module docstring) as CSV or .npz by suffix."""
    arrays = [np.asarray(columns[name], dtype=np.float64) for name in TRAJECTORY_COLUMNS]
    if path.suffix == ".npz":
        named: dict[str, Any] = dict(zip(TRAJECTORY_COLUMNS, arrays, strict=True))
        np.savez(path, **named)
        return
    np.savetxt(
        path,
        np.stack(arrays, axis=1),
        delimiter=",",
        header=",".join(TRAJECTORY_COLUMNS),
        comments="",
        fmt="%.9g",
    )


class ScriptedDevice(HapticDevice):
    """Replays a trajectory; the servo loop reads row k at tick k straight from `trajectory`."""

    def __init__(
        self,
        trajectory: FloatArray,
        *,
        name: str = "scripted",
        max_force_n: float = 10.0,
        max_stiffness_n_per_mm: float = 2.0,
        max_torque_n_mm: float = 0.0,
    ) -> None:
        super().__init__()
        self.trajectory = np.ascontiguousarray(trajectory, dtype=np.float64)
        self.channel = ServoChannel(script=self.trajectory)
        self._spec = DeviceSpec(
            name=name,
            kind="scripted",
            workspace_min_mm=(-200.0, -200.0, -200.0),
            workspace_max_mm=(200.0, 200.0, 200.0),
            max_force_n=max_force_n,
            max_stiffness_n_per_mm=max_stiffness_n_per_mm,
            renders_force=False,
            max_torque_n_mm=max_torque_n_mm,
        )

    @classmethod
    def from_file(cls, path: Path) -> "ScriptedDevice":
        """Load a trajectory file (format in the module docstring)."""
        return cls(load_trajectory(path), name=f"scripted:{path}")

    @property
    def spec(self) -> DeviceSpec:
        return self._spec

    @property
    def n_ticks(self) -> int:
        return int(self.trajectory.shape[0])

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.channel.put_force(np.zeros(3))
        self.is_open = False
