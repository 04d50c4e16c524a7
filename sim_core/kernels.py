"""Public face of the engine kernels, for the haptic servo loop and other compiled callers.

Stable interface (the haptics servo loop depends on it):

``contact_force(density, spacing_mm, tool, pose, params) -> (fx, fy, fz, occupied_mm3)``
    The jitted ``sim_core._kernels._contact_force`` itself: callable from Python *and* from
    inside another ``@njit(nogil=True)`` function. Pure: it reads its arguments, writes and
    allocates nothing, takes no lock.

    - density: float32 (n0, n1, n2), C-contiguous, g/cm³ of bone left (``SimState.density``).
    - spacing_mm: float, voxel edge (``CaseModel.spacing_mm``).
    - tool: float64[N_TOOL] (``CaseModel.tool``), layout ``sim_core.slots.T_*``.
    - pose: float64[N_POSE], layout ``Q_*``: tip (case frame, mm), unit axis from handle to
      tip, unit blade normal (normal to the axis; any for round tools), device velocity mm/s.
    - params: float64[N_PARAMS] (``CaseModel.params``), layout ``P_*``.
    - returns the Forsslund overlap force F = P·(V/R³)·n̂ − D·v on the tool in N (case frame),
      *not* clamped and without the proxy spring, and the bone volume inside the tool (mm³).

``tick(density0, label, columns, params, tool, density, st, dirty, work, inp) -> None``
    The jitted ``_tick``: one full engine step (proxy, force, erosion, metrics) for callers
    that run the whole simulation inside their own compiled loop. Arguments are
    ``model.density0, model.label, model.columns, model.params, model.tool, state.density,
    state.st, state.dirty, state.work`` and one float64[N_TICK] input row; the display force to
    send is ``state.st[S_DISPLAY:S_DISPLAY + 3]`` (scaled to the device's stiffness, clamped to its
    maximum force).

``tick_force(...)``, ``tick_finish(...)``
    ``tick``'s two halves, same arguments: after ``tick_force`` the display force is ready
    to send; ``tick_finish`` (erosion, metrics) completes the tick. Called in that order on
    the same row they are ``tick`` exactly (``tick`` is implemented as the pair). ``tick_finish``
    also gathers the voxel list the next ``tick_force`` will count from, so that the half the
    device waits for need not scan the grid.

``checked_contact_force`` is the same as ``contact_force`` with its inputs checked once, for
Python callers.
"""

from typing import Any

import numpy as np
import numpy.typing as npt

from sim_core._kernels import _contact_force, _tick, _tick_finish, _tick_force
from sim_core.slots import N_PARAMS, N_POSE, N_TOOL

contact_force = _contact_force
tick = _tick
tick_force = _tick_force
tick_finish = _tick_finish

__all__ = ["checked_contact_force", "contact_force", "tick", "tick_finish", "tick_force"]


def _need(a: npt.NDArray[Any], name: str, dtype: type, shape: tuple[int, ...] | int) -> None:
    if a.dtype != np.dtype(dtype) or not a.flags.c_contiguous:
        raise ValueError(
            f"{name} must be a C-contiguous {np.dtype(dtype).name} array, got {a.dtype}"
        )
    if isinstance(shape, int):
        if a.ndim != shape:
            raise ValueError(f"{name} must have {shape} dimensions, got shape {a.shape}")
    elif a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")


def checked_contact_force(
    density: npt.NDArray[np.float32],
    spacing_mm: float,
    tool: npt.NDArray[np.float64],
    pose: npt.NDArray[np.float64],
    params: npt.NDArray[np.float64],
) -> tuple[float, float, float, float]:
    """``contact_force`` after checking dtypes and shapes (raises ``ValueError``)."""
    _need(density, "density", np.float32, 3)
    _need(tool, "tool", np.float64, (N_TOOL,))
    _need(pose, "pose", np.float64, (N_POSE,))
    _need(params, "params", np.float64, (N_PARAMS,))
    if not spacing_mm > 0:
        raise ValueError(f"spacing_mm must be positive, got {spacing_mm}")
    fx, fy, fz, occ = _contact_force(density, float(spacing_mm), tool, pose, params)
    return float(fx), float(fy), float(fz), float(occ)
