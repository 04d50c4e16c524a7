"""What the simulation hands the view: immutable snapshots, passed through a mailbox.

The engine's driver publishes a ``ViewSnapshot`` after each batch of ticks; the view's frame
task takes what arrived since its last frame. Publishing never waits for the view and never
blocks on a lock held by the render thread: a deque's append and popleft are atomic in
CPython. Snapshots the view had no frame for are not lost for remeshing: their changed chunks
are merged into the one it shows.
"""

from collections import deque
from dataclasses import dataclass, field, replace

from sim_core.instruments import SIZE_FIELDS

ChunkIndex = tuple[int, int, int]
Vec3 = tuple[float, float, float]

# the engine's instrument kinds (sim_core.instruments); the view draws each one's shape
TOOL_KINDS = tuple(SIZE_FIELDS)
TOOL_BURR = "spherical_burr"
TOOL_SAW = "oscillating_saw"


@dataclass(frozen=True)
class ViewSnapshot:
    """One moment of a session, as the view needs it. Positions in the case frame (mm).

    ``tool_axis`` is a unit vector along the shaft, pointing from the handle to the tip (the
    direction the tool advances). ``removed_chunks`` lists the 32-voxel chunks, as
    ``(i // 32, j // 32, k // 32)`` of the density grid (the indices ``SimState.dirty`` flags),
    whose bone changed since the previous snapshot. ``nearest_protected_mm`` is the distance
    from the tool surface to the nearest nerve or vessel voxel (``inf`` when there is none).
    """

    tick: int
    tool_tip_mm: Vec3
    tool_axis: Vec3
    tool_radius_mm: float
    tool_kind: str
    force_n: Vec3
    force_limit_n: float
    elapsed_s: float
    metrics: dict[str, float] = field(default_factory=dict)
    nearest_protected_mm: float = float("inf")
    removed_chunks: tuple[ChunkIndex, ...] = ()

    def __post_init__(self) -> None:
        if self.tool_kind not in TOOL_KINDS:
            raise ValueError(f"tool_kind {self.tool_kind!r}: expected one of {TOOL_KINDS}")
        if self.tool_radius_mm <= 0 or self.force_limit_n <= 0:
            raise ValueError("tool_radius_mm and force_limit_n must be positive")

    @property
    def force_magnitude_n(self) -> float:
        fx, fy, fz = self.force_n
        return float((fx * fx + fy * fy + fz * fz) ** 0.5)


class SnapshotMailbox:
    """Latest-wins hand-over of snapshots from the simulation driver to the view."""

    def __init__(self) -> None:
        self._pending: deque[ViewSnapshot] = deque()

    def publish(self, snapshot: ViewSnapshot) -> None:
        """Hand a snapshot to the view; never waits (called from the simulation side)."""
        self._pending.append(snapshot)

    def take(self) -> ViewSnapshot | None:
        """The newest snapshot, with the changed chunks of every skipped one; None if none came."""
        latest: ViewSnapshot | None = None
        chunks: dict[ChunkIndex, None] = {}
        while True:
            try:
                snapshot = self._pending.popleft()
            except IndexError:
                break
            chunks.update(dict.fromkeys(snapshot.removed_chunks))
            latest = snapshot
        if latest is None:
            return None
        return replace(latest, removed_chunks=tuple(chunks))
