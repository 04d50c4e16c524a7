"""Shared arrays between a device's own side (callbacks, input events) and the servo loop.

The servo loop runs in compiled code without the GIL, so it cannot call into Python to read a
device. Instead each device owns a `ServoChannel`: plain numpy arrays that both sides read and
write without locks.

- Pose: a double buffer `pose[2, N_POSE]`. The single writer (the device side) fills the slot
  not in use, then flips `control[POSE_SLOT]`; the reader reads the slot index, then that row.
  A torn read needs two flips during one read (two device samples in a few hundred ns): it
  cannot happen at device rates.
- Force: the same double buffer `force[2, N_FORCE]` (force, tick, torque), written by the loop
  (or by `put_force` once the loop has stopped), read by the device side that sends it out.
- Script: for a scripted device, the whole trajectory at 1 kHz (`script[n, N_POSE]`); the loop
  indexes it by tick and never touches the pose buffer. Live devices leave it with 0 rows.

Pose row fields (float64), in device coordinates (see `haptics.device` for the axes):
`t_s, x_mm, y_mm, z_mm, qw, qx, qy, qz, axis_x, axis_y, axis_z, vx_mm_s, vy_mm_s, vz_mm_s,
buttons, speed`. `buttons` is a bit mask stored as a float (bit 0 = drill on / button 1);
`speed` is the drill speed as a fraction of the instrument's rated speed (0..1).
"""

import numpy as np
import numpy.typing as npt

from sim_core.slots import TICK_FIELDS

# the device pose row is the engine's tick input row: one definition, in sim_core.slots
POSE_FIELDS: tuple[str, ...] = TICK_FIELDS
N_POSE = len(POSE_FIELDS)
T_S, X_MM, QW, AXIS_X, VX_MM_S, BUTTONS, SPEED = 0, 1, 4, 8, 11, 14, 15

# force row: fx_n, fy_n, fz_n, the loop tick that wrote it, then the torque about the tool
# tip tx, ty, tz (N·mm; 0 unless the device renders torque)
TORQUE = 4
N_FORCE = 7

# control slots (int64)
STOP = 0  # set to 1 by Python to ask the loop to finish its tick and return
POSE_SLOT = 1  # which pose row is the latest (0 or 1)
FORCE_SLOT = 2  # which force row is the latest (0 or 1)
TICKS_DONE = 3  # ticks the loop has completed (log rows written)
MISSED_TICKS = 4  # schedule slots skipped because the loop woke too late to catch up
SCHEDULE_SLOT = 5  # the 1 ms schedule slot of the last tick (indexes the script)
N_CONTROL = 8

FloatArray = npt.NDArray[np.float64]


class ServoChannel:
    """The arrays one device shares with the servo loop; allocated once, never resized."""

    def __init__(self, script: FloatArray | None = None) -> None:
        self.pose: FloatArray = np.zeros((2, N_POSE), dtype=np.float64)
        self.pose[:, QW] = 1.0
        self.pose[:, AXIS_X + 2] = -1.0
        self.force: FloatArray = np.zeros((2, N_FORCE), dtype=np.float64)
        self.control: npt.NDArray[np.int64] = np.zeros(N_CONTROL, dtype=np.int64)
        if script is None:
            script = np.zeros((0, N_POSE), dtype=np.float64)
        if script.ndim != 2 or script.shape[1] != N_POSE or script.dtype != np.float64:
            raise ValueError(f"script must be float64 of shape (n, {N_POSE}), got {script.shape}")
        self.script: FloatArray = np.ascontiguousarray(script)

    def publish_pose(self, row: FloatArray) -> None:
        """Make `row` (N_POSE floats) the latest pose. Single writer: the device side only."""
        slot = 1 - int(self.control[POSE_SLOT])
        self.pose[slot, :] = row
        self.control[POSE_SLOT] = slot

    def latest_pose(self) -> FloatArray:
        """A copy of the latest pose row (the script's current row for scripted devices)."""
        if self.script.shape[0] > 0:
            tick = min(int(self.control[SCHEDULE_SLOT]), self.script.shape[0] - 1)
            return np.array(self.script[tick], dtype=np.float64)
        return np.array(self.pose[int(self.control[POSE_SLOT])], dtype=np.float64)

    def put_force(self, force_n: FloatArray) -> None:
        """Make `force_n` (3 floats, N) the latest force; only while no loop is running."""
        slot = 1 - int(self.control[FORCE_SLOT])
        self.force[slot, :3] = force_n
        self.force[slot, 3] = -1.0
        self.force[slot, TORQUE : TORQUE + 3] = 0.0
        self.control[FORCE_SLOT] = slot

    def latest_force(self) -> FloatArray:
        """A copy of the latest force (3 floats, N)."""
        return self.force[int(self.control[FORCE_SLOT]), :3].copy()

    def latest_torque(self) -> FloatArray:
        """A copy of the latest torque about the tool tip (3 floats, N·mm)."""
        return self.force[int(self.control[FORCE_SLOT]), TORQUE : TORQUE + 3].copy()
