"""Scripted-device trajectory files from and to the engine's 1 kHz TickInput rows.

The file format is the scripted device's (``haptics.scripted``: CSV or .npz; t_s, tip, axis,
buttons, speed, resampled at 1 kHz); rows are ``sim_core.slots.TICK_FIELDS``. This sits
in the command-line layer because it joins the two packages: ``sim_core`` does not import
``haptics``.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sim_core.slots import TICK_FIELDS

Rows = npt.NDArray[np.float64]


def write_trajectory(path: Path, rows: Rows) -> None:
    """Write rows as a scripted-device trajectory file (``haptics.scripted`` format), atomically.

    The file keeps position, axis, buttons and speed; ``haptics.scripted.load_trajectory``
    resamples it back to 1 kHz rows (orientation from the axis, velocity by differences).
    """
    from haptics.scripted import TRAJECTORY_COLUMNS, save_trajectory

    index = {name: i for i, name in enumerate(TICK_FIELDS)}
    columns = {name: np.ascontiguousarray(rows[:, index[name]]) for name in TRAJECTORY_COLUMNS}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the format follows the suffix (.csv or .npz): the temporary file keeps it
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        save_trajectory(Path(tmp), columns)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_trajectory(path: Path) -> Rows:
    """1 kHz rows of a scripted-device trajectory file (``haptics.scripted`` reads it).

    Raises ``haptics.scripted.TrajectoryError`` (a ``ValueError``) naming the file's problem.
    """
    from haptics.scripted import load_trajectory

    return np.ascontiguousarray(load_trajectory(Path(path)), dtype=np.float64)
