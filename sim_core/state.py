"""The mutable state of a session, preallocated once by ``make_state(model)``.

density: float32 grid of bone left (g/cm³), eroded in place by the step.
st: float64[N_STATE] scalars (tool pose, proxy, forces, contacts, metrics, RNG), ``S_*`` slots.
dirty: uint8 flags per 32³ chunk where bone changed; the remesher clears what it has meshed.
work: float64 scratch for the tick's voxel list (``sim_core.slots.W_*``); not part of the state.
"""

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sim_core.model import CaseModel
from sim_core.slots import (
    CHUNK,
    N_HOLE_BINS,
    N_STATE,
    N_WORK_MIN,
    N_WORK_ROWS,
    Q_DIR,
    Q_NORMAL,
    Q_TIP,
    S_DEEPEST_DIR,
    S_DEEPEST_TIP,
    S_DEPTH_MAX_MM,
    S_DEVICE,
    S_DEVICE_DIR,
    S_DEVICE_NORMAL,
    S_DIR,
    S_HOLE,
    S_HOLE_BONE_BINS,
    S_INS_DEEPEST_DIR,
    S_INS_DEEPEST_TIP,
    S_INS_DEPTH_MAX_MM,
    S_LAST_ENGAGED_TICK,
    S_POSE,
    S_PREV_TIP,
    S_RNG,
    S_TOOL,
    S_TOOL_NORMAL,
    TISSUE_MASK,
    WORK_CAPACITY,
)

HOME_BACKOFF_MM = 40.0  # the tool starts this far back from the planned entry, in the air


@dataclass
class SimState:
    density: npt.NDArray[np.float32]
    st: npt.NDArray[np.float64]
    dirty: npt.NDArray[np.uint8]
    # the step's scratch voxel list (``W_*`` rows); holds nothing between ticks, so it is
    # neither hashed nor copied
    work: npt.NDArray[np.float64] = field(default_factory=lambda: new_work())

    @property
    def tick(self) -> int:
        return int(self.st[0])


def make_state(model: CaseModel) -> SimState:
    """A fresh state: all bone present, the tool at home on the plan axis, RNG seeded."""
    shape = model.shape
    st = np.zeros(N_STATE, dtype=np.float64)
    st[S_RNG] = float(model.scenario.seed)
    axis = model.plan.axis
    home = np.asarray(model.plan.entry_mm) - HOME_BACKOFF_MM * axis
    st[S_DEVICE : S_DEVICE + 3] = home
    st[S_TOOL : S_TOOL + 3] = home
    st[S_DIR : S_DIR + 3] = axis
    st[S_POSE + Q_TIP : S_POSE + Q_TIP + 3] = home
    st[S_POSE + Q_DIR : S_POSE + Q_DIR + 3] = axis
    normal = _any_normal(axis)
    st[S_POSE + Q_NORMAL : S_POSE + Q_NORMAL + 3] = normal
    st[S_DEVICE_DIR : S_DEVICE_DIR + 3] = axis
    st[S_DEVICE_NORMAL : S_DEVICE_NORMAL + 3] = normal
    st[S_TOOL_NORMAL : S_TOOL_NORMAL + 3] = normal
    st[S_PREV_TIP : S_PREV_TIP + 3] = home
    st[S_LAST_ENGAGED_TICK] = -1e9
    for depth, tip, direction in (
        (S_DEPTH_MAX_MM, S_DEEPEST_TIP, S_DEEPEST_DIR),
        (S_INS_DEPTH_MAX_MM, S_INS_DEEPEST_TIP, S_INS_DEEPEST_DIR),
    ):
        st[depth] = -1e300
        st[tip : tip + 3] = home
        st[direction : direction + 3] = axis
    hole = plan_bins_with_bone(model)
    st[S_HOLE : S_HOLE + N_HOLE_BINS] = np.where(hole, 0.0, -1.0)
    st[S_HOLE_BONE_BINS] = float(np.count_nonzero(hole))
    chunks = tuple((n + CHUNK - 1) // CHUNK for n in shape)
    return SimState(
        density=np.array(model.density0, dtype=np.float32, order="C", copy=True),
        st=st,
        dirty=np.zeros(chunks, dtype=np.uint8),
    )


def plan_bins_with_bone(model: CaseModel, step_mm: float = 0.1) -> npt.NDArray[np.bool_]:
    """Which of the ``N_HOLE_BINS`` equal bins of the planned path (entry → target) hold
    original bone on the plan line (nearest voxel cortex or cancellous, sampled every
    ``step_mm``): the bins hole completeness is counted over."""
    entry = np.asarray(model.plan.entry_mm, dtype=np.float64)
    target = np.asarray(model.plan.target_mm, dtype=np.float64)
    length = float(np.linalg.norm(target - entry))
    out = np.zeros(N_HOLE_BINS, dtype=bool)
    if length <= 0.0:
        return out
    n = max(math.ceil(length / step_mm), N_HOLE_BINS)
    t = (np.arange(n) + 0.5) / n
    points = entry + t[:, None] * (target - entry)
    index = np.floor(points / model.spacing_mm + 0.5).astype(np.int64)
    shape = np.array(model.shape)
    inside = np.all((index >= 0) & (index < shape), axis=1)
    tissue = np.zeros(n, dtype=np.uint8)
    i = index[inside]
    tissue[inside] = model.label[i[:, 0], i[:, 1], i[:, 2]] & TISSUE_MASK
    bone = (tissue == 1) | (tissue == 2)
    bins = np.minimum((t * N_HOLE_BINS).astype(np.int64), N_HOLE_BINS - 1)
    out[np.unique(bins[bone])] = True
    return out


def new_work(capacity: int = WORK_CAPACITY) -> npt.NDArray[np.float64]:
    """Scratch for the step's voxel list (``SimState.work``), every page already mapped (a
    first touch inside the 1 kHz loop would be a page fault; see haptics.servo)."""
    if capacity < N_WORK_MIN:
        raise ValueError(f"work capacity must be at least {N_WORK_MIN}, got {capacity}")
    work = np.zeros((N_WORK_ROWS, capacity), dtype=np.float64)
    work.fill(0.0)
    return work


def _any_normal(axis: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    e = np.zeros(3)
    e[int(np.argmin(np.abs(axis)))] = 1.0
    n = np.cross(axis, e)
    return np.asarray(n / np.linalg.norm(n), dtype=np.float64)


def copy_state(state: SimState) -> SimState:
    """A deep copy (for save/restore and snapshots)."""
    return SimState(state.density.copy(), state.st.copy(), state.dirty.copy())


def restore_state(state: SimState, saved: SimState) -> None:
    """Overwrite ``state`` in place with ``saved`` (same model)."""
    np.copyto(state.density, saved.density)
    np.copyto(state.st, saved.st)
    np.copyto(state.dirty, saved.dirty)


def state_hash(state: SimState) -> str:
    """sha256 over the bone left and every state scalar (bit patterns, not rounded values)."""
    h = hashlib.sha256()
    h.update(state.density.tobytes())
    h.update(state.st.tobytes())
    return "sha256:" + h.hexdigest()
