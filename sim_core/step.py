"""Advance a session: ``step`` one tick, ``run`` many, from ``TickInput`` rows.

A tick is ``DT_S`` (1 ms) of simulated time; nothing here reads a clock. Inputs are float64
rows in the ``sim_core.slots.TICK_FIELDS`` layout (the haptics pose row), in the case frame;
``TICK_INPUT_DTYPE`` is the same row as a structured record, which is what recordings store.
"""

from typing import Any

import numpy as np
import numpy.typing as npt

from sim_core._kernels import _run, _tick
from sim_core.model import CaseModel
from sim_core.slots import N_TICK, TICK_INPUT_DTYPE
from sim_core.state import SimState

Rows = npt.NDArray[np.float64]


def step(model: CaseModel, state: SimState, inp: npt.NDArray[np.float64]) -> None:
    """Advance ``state`` by exactly one tick. ``inp``: float64[N_TICK], C-contiguous.

    Allocates nothing; the caller guarantees the dtype and shape (``input_rows`` checks them).
    """
    _tick(
        model.density0,
        model.label,
        model.columns,
        model.params,
        model.tool,
        state.density,
        state.st,
        state.dirty,
        state.work,
        inp,
    )


def run(model: CaseModel, state: SimState, inputs: npt.NDArray[Any]) -> None:
    """Advance ``state`` one tick per input row (float64[n, N_TICK] or TickInput records)."""
    rows = input_rows(inputs)
    _run(
        model.density0,
        model.label,
        model.columns,
        model.params,
        model.tool,
        state.density,
        state.st,
        state.dirty,
        state.work,
        rows,
    )


def input_rows(inputs: npt.NDArray[Any]) -> Rows:
    """TickInput records or float rows as a C-contiguous float64[n, N_TICK] (a view if it can)."""
    a = np.asarray(inputs)
    if a.dtype == TICK_INPUT_DTYPE:
        a = np.ascontiguousarray(a).view(np.float64).reshape(-1, N_TICK)
    if a.dtype != np.float64 or a.ndim != 2 or a.shape[1] != N_TICK:
        raise ValueError(
            f"inputs must be TickInput records or float64[n, {N_TICK}], got {a.dtype} {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise ValueError("inputs hold NaN or infinite values")
    return np.ascontiguousarray(a)


def as_records(rows: Rows) -> npt.NDArray[np.void]:
    """float64[n, N_TICK] rows as TickInput records (a copy)."""
    rows = np.ascontiguousarray(rows, dtype=np.float64)
    return rows.reshape(-1).view(TICK_INPUT_DTYPE).copy()
