"""Checks of one planned element (a screw, wire, drill hole, ...) against a case: pure functions.

All points are in the case frame (mm, ``index * spacing_mm``). An element is a straight path
from ``entry_mm`` towards ``target_mm`` with a radius (its implant's, 0 without one). Its
*span* is the part the implant occupies: for a pedicle screw the head sits at the entry and the
target sets only the direction, so the span is entry → entry + length·u; for every other kind
the span is entry → target (a wire or drill reaches the target). ``docs/planning.md`` defines
each number; in short:

- ``zones``: per protected kind (``nerve``, ``vessel`` tissue and the scenario bit
  ``ZONE_PROTECTED``), the clearance of the implant's surface: the smallest distance from a
  voxel of that kind (its centre, less half a voxel) to the span's axis segment, less the
  radius. ≤ 0 touches or enters it; None: none within ``ZONE_SEARCH_MM``.
- ``breach_mm`` and ``gr_grade``: the breach of ``sim_core.scoring.screw_breach_mm`` on the
  span with the implant's radius (its sampling, ``sim_core.scoring.breach_along``, the very code
  a simulator session is scored with; the depth from a per-case index, ``planned_breach_mm``)
  and ``gr_grade`` of it: the same number, and always the same grade (see ``planned_breach_mm``).
- ``bone_width_mm``: the narrowest bone chord through the axis, perpendicular to it, over the
  span's bone part (from ``ENTRY_SKIP_MM`` to the span's end): the pedicle isthmus.
- ``bone_depth_mm``: from the entry along the line to where it leaves bone on the far side
  (the first run of bone it meets, gaps under ``GAP_MM`` bridged).
"""

import copy
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from sim_core.case.annotations import Tube, tube_voxels
from sim_core.case.bundle import TISSUE_NERVE, TISSUE_VESSEL, load_bundle
from sim_core.instruments import load_instrument
from sim_core.model import CaseModel, model_from_grids
from sim_core.scenarios import Plan, PointSpec, Scenario
from sim_core.scoring import (
    ENTRY_SKIP_MM,
    breach_along,
    breach_box,
    gr_grade,
    screw_breach_mm,
)
from sim_core.slots import ZONE_PROTECTED

ELEMENT_KINDS = (
    "pedicle_screw",
    "drill_hole",
    "k_wire",
    "guide_wire",
    "osteotomy_plane",
    "burr_region",
)
# the kinds whose breach is graded (Gertzbein–Robbins is a pedicle screw grade)
GRADED_KINDS = ("pedicle_screw",)
ZONE_SEARCH_MM = 15.0  # protected structures farther than this from the surface are not listed
STEP_MM = 0.25  # sampling step along the path and along each chord
STATION_MM = 0.5  # spacing of the cross-sections whose chords are measured
CHORD_MAX_MM = 20.0  # a chord is followed this far each way (wider bone is "wide enough")
CHORD_DIRECTIONS = 12  # chord directions over 180° in the plane across the path
GAP_MM = 2.0  # a gap in bone shorter than this along the path does not end the bone
# the tissue kinds a trajectory must keep away from, and the scenario's protected bit
ZONE_KINDS = ("nerve", "vessel", "protected_zone")
MODEL_CACHE_SIZE = 4  # cases kept in memory (demo lumbar: ~50 MB of grids, ~21 MB of index)
# the 8 corners of a voxel cell, in the order of their offsets (0/1 per axis)
_CELL = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=np.int64)


class PlanCheckError(ValueError):
    """An element that cannot be checked: ``code`` is stable, the message Chinese / English."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ZoneClearance:
    clearance_mm: float | None  # implant surface to the nearest voxel; None: none nearby
    at_mm: float | None  # where along the span (from the entry) it is nearest


@dataclass(frozen=True)
class ElementChecks:
    kind: str
    radius_mm: float
    path_length_mm: float  # entry to target
    span_end_mm: tuple[float, float, float]  # where the implant's tip sits
    span_length_mm: float
    zones: dict[str, ZoneClearance]
    breach_mm: float | None  # None: a kind without a radius (plane, region without one)
    gr_grade: str | None  # graded kinds only
    bone_width_mm: float | None  # None: the span holds no bone past the entry skip
    bone_width_at_mm: float | None
    bone_depth_mm: float | None  # None: the line never meets bone
    flags: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "radius_mm": self.radius_mm,
            "path_length_mm": self.path_length_mm,
            "span_end_mm": list(self.span_end_mm),
            "span_length_mm": self.span_length_mm,
            "zones": {
                k: {"clearance_mm": z.clearance_mm, "at_mm": z.at_mm} for k, z in self.zones.items()
            },
            "breach_mm": self.breach_mm,
            "gr_grade": self.gr_grade,
            "bone_width_mm": self.bone_width_mm,
            "bone_width_at_mm": self.bone_width_at_mm,
            "bone_depth_mm": self.bone_depth_mm,
            "flags": list(self.flags),
        }


def _planning_scenario() -> Scenario:
    # the model needs a scenario and a plan; planning reads only the grids, so a neutral one
    return Scenario(
        name="planning",
        title="术前规划 / planning",
        scoring="pedicle",
        instrument="screw_6.5x45",
        entry=PointSpec("entry"),
        target=PointSpec("target"),
        force_limit_n=10.0,
        time_limit_s=60.0,
        thresholds=(),
    )


def planning_model(bundle: Any) -> CaseModel:
    """A CaseModel of a ``CaseBundle`` for planning: its grids, no scenario zones."""
    return model_from_grids(
        density_g_cm3=bundle.density_g_cm3,
        tissue=bundle.tissue,
        spacing_mm=bundle.spacing_mm,
        scenario=_planning_scenario(),
        instrument=load_instrument("screw_6.5x45"),
        plan=Plan(entry_mm=(0.0, 0.0, 0.0), target_mm=(0.0, 0.0, 1.0)),
        case_name=str(getattr(bundle, "path", "case")),
        case_hash=bundle.content_hash,
    )


@dataclass(frozen=True)
class PlanningIndex:
    """What a planning model's checks look up instead of scanning a box of its grids each time:
    computed once per case (``planning_index``), kept with the model in the per-content-hash
    cache.

    ``bone_surface`` / ``other_surface`` serve ``planned_breach_mm``. The distance transform's
    value at a voxel is the distance to the nearest voxel of the other kind (bone / not bone),
    and that nearest voxel always has a 6-neighbour of the query's kind: were all its
    6-neighbours of its own kind, one step from it towards the query along an axis where the two
    differ would reach a voxel of its kind (a 6-neighbour, inside the grid as it lies between
    them) strictly closer to the query. So a nearest-neighbour search among these *surface*
    voxels gives the transform's distance exactly.
    """

    bone: npt.NDArray[np.bool_]  # the original bone (cortex or cancellous), the model's shape
    bone_surface: cKDTree | None  # bone voxels with a non-bone 6-neighbour (voxel indices)
    other_surface: cKDTree | None  # non-bone voxels with a bone 6-neighbour; None: no such
    zone_voxels: dict[str, npt.NDArray[np.int64]]  # per ZONE_KINDS: its voxels (n, 3), C order


def planning_index(model: CaseModel) -> PlanningIndex:
    """The ``PlanningIndex`` of ``model``; surface trees are None for a grid of one kind only.
    The demo lumbar case: see docs/planning.md (Performance)."""
    tissue = model.tissue()
    bone = (tissue == 1) | (tissue == 2)
    # a voxel touches the other kind where a 6-neighbour differs from it
    touches = np.zeros(bone.shape, dtype=bool)
    for axis in range(3):
        lower = [slice(None)] * 3
        upper = [slice(None)] * 3
        lower[axis] = slice(None, -1)
        upper[axis] = slice(1, None)
        differs = bone[tuple(lower)] != bone[tuple(upper)]
        touches[tuple(lower)] |= differs
        touches[tuple(upper)] |= differs
    trees: list[cKDTree | None] = []
    for kind in (bone, ~bone):
        # voxel indices as float64 are exact, so the search compares exact squared distances
        ijk = np.argwhere(touches & kind).astype(np.float64)
        trees.append(cKDTree(ijk) if len(ijk) else None)
    bone.setflags(write=False)
    zones = {
        "nerve": tissue == TISSUE_NERVE,
        "vessel": tissue == TISSUE_VESSEL,
        "protected_zone": (model.label & ZONE_PROTECTED) > 0,
    }
    zone_voxels = {kind: np.argwhere(zones[kind]).astype(np.int64) for kind in ZONE_KINDS}
    for voxels in zone_voxels.values():
        voxels.setflags(write=False)
    return PlanningIndex(
        bone=bone, bone_surface=trees[0], other_surface=trees[1], zone_voxels=zone_voxels
    )


def _surface_depth(
    index: PlanningIndex, spacing_mm: float, radius_mm: float, ijk: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    # signed depth at voxels ijk (m, 3): the distance to the nearest voxel of the other kind,
    # computed as scipy's distance_transform_edt does (index difference as float64 times the
    # spacing, squared, summed over the axes in order, square root), less half a voxel
    s = spacing_mm
    is_bone = index.bone[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
    depth = np.empty(len(ijk), dtype=np.float64)
    # a bone voxel at least `deep` voxels from non-bone, and every corner of each cell it is a
    # corner of (bone, within √3 voxels), lies deeper than the radius: no sample in such a cell
    # reaches out of bone, so its exact depth cannot change the breach; it gets this bound
    # instead (a cheap search: the tree stops looking at that distance)
    deep = radius_mm / s + 3.0
    for mask, tree, bound, sign in (
        (is_bone, index.other_surface, deep, 1.0),
        (~is_bone, index.bone_surface, math.inf, -1.0),
    ):
        if not np.any(mask):
            continue
        assert tree is not None  # the caller checked that the breach box holds both kinds
        query = ijk[mask].astype(np.float64)
        found, nearest = tree.query(query, distance_upper_bound=bound)
        near = np.isfinite(found)
        diff = (tree.data[nearest[near]] - query[near]) * s
        sq = diff * diff
        dist = np.full(len(query), bound * s)
        dist[near] = np.sqrt(sq[:, 0] + sq[:, 1] + sq[:, 2])
        depth[mask] = sign * (dist - 0.5 * s)
    return depth


def planned_breach_mm(
    model: CaseModel,
    index: PlanningIndex,
    tail: npt.NDArray[np.float64],
    tip: npt.NDArray[np.float64],
    radius_mm: float,
) -> float:
    """``sim_core.scoring.screw_breach_mm(model, tail, tip, radius_mm)``, fast: the same sampling
    (``breach_along``), the signed depth only at the voxels it reads, from ``index`` (the
    model's ``planning_index``) instead of distance transforms of a box around the path.

    Equal to ``screw_breach_mm`` — bit for bit where the spacing is a power of two (the demo's
    0.5 mm), else up to rounding where several voxels are nearest — whenever either is at most
    B = 2·radius + 10 mm − (1.5 + √3)·spacing (at 0.5 mm: 8.38 mm + 2·radius), and always of
    the same grade while B ≥ 6 mm (spacing ≤ (4 mm + 2·radius) / 3.23: any radius at 0.5 mm).

    Why: ``screw_breach_mm``'s box holds every voxel within T = radius + 10 mm − spacing of each
    voxel it reads (with a nonzero weight), so its transform there is exact wherever the nearest
    voxel of the other kind is at most T away, and never smaller elsewhere (it searches a
    subset), as long as the box holds both kinds. A read bone voxel farther than T: the corners
    of its cells are bone, farther than T − √3·spacing from non-bone, deeper than the radius in
    both, so those samples count for nothing in either breach. A read non-bone voxel farther
    than T: the corners of its cells are non-bone, farther than T − √3·spacing from bone in
    both, so both breaches exceed B. A box holding one kind only (scipy's transform then
    measures to a virtual voxel just before the box's first corner) is handed to
    ``screw_breach_mm`` itself, as is every box of a grid of one kind. (Spacings under 3 mm.)
    """
    s = model.spacing_mm
    lo, hi = breach_box(index.bone.shape, s, tail, tip, radius_mm)
    box = index.bone[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    bone_voxels = int(np.count_nonzero(box))
    if bone_voxels == 0 or bone_voxels == box.size:
        return screw_breach_mm(model, tail, tip, radius_mm)

    def depth_box(
        coords: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        # the voxels map_coordinates(order=1, mode="nearest") reads with a nonzero weight: per
        # axis, the floor of the point clamped to the grid and the next voxel (within the grid)
        last = np.asarray(index.bone.shape, dtype=np.int64) - 1
        floor = np.floor(np.clip(coords, 0.0, last[:, None])).astype(np.int64)
        corners = np.minimum(floor.T[:, None, :] + _CELL[None, :, :], last).reshape(-1, 3)
        flat = np.unique(np.ravel_multi_index(tuple(corners.T), index.bone.shape))
        ijk = np.stack(np.unravel_index(flat, index.bone.shape), axis=1).astype(np.int64)
        # a box just around them, its depth there (zero, finite, elsewhere: never read)
        first = floor.min(axis=1)
        size = np.minimum(floor.max(axis=1) + 2, last + 1) - first
        depth = np.zeros(tuple(size), dtype=np.float64)
        local = ijk - first
        depth[local[:, 0], local[:, 1], local[:, 2]] = _surface_depth(index, s, radius_mm, ijk)
        return depth, first

    return breach_along(tail, tip, radius_mm, s, depth_box)


_models: OrderedDict[str, tuple[CaseModel, PlanningIndex]] = OrderedDict()
_models_lock = threading.Lock()
# (content hash, annotation key) -> a copy of the case's model (its own identity, the same
# arrays) and its index with the confirmed tubes added to the zones; see cached_planning_model
_annotated: OrderedDict[tuple[str, str], tuple[CaseModel, PlanningIndex]] = OrderedDict()
Tubes = tuple[str, tuple[Tube, ...]]  # (a key naming the annotation version, its tubes)


def with_tubes(model: CaseModel, index: PlanningIndex, tubes: tuple[Tube, ...]) -> PlanningIndex:
    """``index`` whose nerve and vessel voxels also hold the voxels inside ``tubes``: a drawn
    zone is then measured by the same clearance code as a segmented one."""
    drawn = tube_voxels(tubes, model.shape, model.spacing_mm)
    zones = dict(index.zone_voxels)
    for kind, voxels in drawn.items():
        if len(voxels):
            both = np.unique(np.concatenate([zones[kind], voxels]), axis=0)
            both.setflags(write=False)
            zones[kind] = both
    return replace(index, zone_voxels=zones)


def cached_planning_model(
    path: Path | str, content_hash: str, *, tubes: Tubes | None = None
) -> CaseModel:
    """The planning model of the bundle at ``path``, kept per content hash (the last
    ``MODEL_CACHE_SIZE`` used) with its ``planning_index``. The bundle is verified when first
    loaded; one whose hash is not ``content_hash`` is refused (``PlanCheckError``
    "case_changed").

    ``tubes``: protected tubes a surgeon confirmed on this case (``sim_core.case.annotations``)
    under a key naming their version. The model returned is then a copy of the case's model
    whose ``index_of`` also lists the tubes' voxels as nerve or vessel: two cases sharing one
    bundle but not their annotations get different models, so neither sees the other's tubes."""
    with _models_lock:
        cached = _models.get(content_hash)
        if cached is not None:
            _models.move_to_end(content_hash)
    if cached is not None:
        return _with_case_tubes(content_hash, cached[0], cached[1], tubes)
    # loaded outside the lock: two first requests may both load, the second simply wins
    bundle = load_bundle(path)
    if bundle.content_hash != content_hash:
        raise PlanCheckError(
            "case_changed",
            "病例文件与登记的不一致 / the case bundle on disk is not the registered one",
        )
    model = planning_model(bundle)
    index = planning_index(model)
    with _models_lock:
        _models[content_hash] = (model, index)
        _models.move_to_end(content_hash)
        while len(_models) > MODEL_CACHE_SIZE:
            _models.popitem(last=False)
    return _with_case_tubes(content_hash, model, index, tubes)


def _with_case_tubes(
    content_hash: str, model: CaseModel, index: PlanningIndex, tubes: Tubes | None
) -> CaseModel:
    if tubes is None:
        return model
    key = (content_hash, tubes[0])
    with _models_lock:
        held = _annotated.get(key)
        if held is not None:
            _annotated.move_to_end(key)
            return held[0]
    annotated = (copy.copy(model), with_tubes(model, index, tubes[1]))
    with _models_lock:
        _annotated[key] = annotated
        # as many annotated copies as cases kept (their arrays are the cases')
        while len(_annotated) > MODEL_CACHE_SIZE:
            _annotated.popitem(last=False)
    return annotated[0]


def index_of(model: CaseModel) -> PlanningIndex:
    """The cached ``planning_index`` of a model from ``cached_planning_model``; any other
    model's is computed anew."""
    with _models_lock:
        cached = _models.get(model.case_hash)
        # a copy carrying a case's confirmed tubes has its own index
        annotated = [i for m, i in _annotated.values() if m is model]
    if cached is not None and cached[0] is model:
        return cached[1]
    if annotated:
        return annotated[0]
    return planning_index(model)


def _point(model: CaseModel, value: Any, name: str) -> npt.NDArray[np.float64]:
    try:
        p = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PlanCheckError(
            "invalid_point", f"{name} 不是三个数 / {name} is not 3 numbers"
        ) from exc
    if p.shape != (3,):
        raise PlanCheckError("invalid_point", f"{name} 不是三个数 / {name} is not 3 numbers")
    if not np.all(np.isfinite(p)):
        raise PlanCheckError(
            "non_finite_point", f"{name} 含无效数值 / {name} holds NaN or infinity"
        )
    # the volume spans voxel centres 0 .. n-1, each half a voxel wide either side
    extent = (np.asarray(model.shape, dtype=np.float64) - 0.5) * model.spacing_mm
    if np.any(p < -0.5 * model.spacing_mm) or np.any(p > extent):
        raise PlanCheckError(
            "point_outside_volume",
            f"{name} 在影像范围之外 / {name} lies outside the case volume",
        )
    return p


def validate_path(
    model: CaseModel, entry_mm: Any, target_mm: Any
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Entry and target as arrays; ``PlanCheckError`` for a point that is not 3 finite numbers
    inside the volume, or a path shorter than a tenth of a voxel."""
    entry = _point(model, entry_mm, "entry")
    target = _point(model, target_mm, "target")
    if float(np.linalg.norm(target - entry)) < 0.1 * model.spacing_mm:
        raise PlanCheckError(
            "zero_length_path", "入点与靶点重合 / entry and target are the same point"
        )
    return entry, target


def _bone_at(model: CaseModel, index: PlanningIndex, points_mm: npt.NDArray[np.float64]) -> Any:
    # the nearest voxel's tissue is cortex or cancellous; outside the grid is not bone (as
    # unsigned, a negative index is out of range too)
    ijk = np.rint(points_mm / model.spacing_mm).astype(np.int64).view(np.uint64)
    i, j, k = ijk[..., 0], ijk[..., 1], ijk[..., 2]
    n0, n1, n2 = (np.uint64(n) for n in model.shape)
    inside = (i < n0) & (j < n1) & (k < n2)
    flat = np.where(inside, (i * n1 + j) * n2 + k, np.uint64(0))
    return index.bone.ravel()[flat] & inside


def _box(
    model: CaseModel, a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], margin_mm: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    s = model.spacing_mm
    lo = np.maximum(np.floor((np.minimum(a, b) - margin_mm) / s).astype(np.int64), 0)
    hi = np.minimum(
        np.ceil((np.maximum(a, b) + margin_mm) / s).astype(np.int64) + 1, np.asarray(model.shape)
    )
    return lo, hi


def _zone_clearances(
    model: CaseModel,
    index: PlanningIndex,
    a: npt.NDArray[np.float64],
    b: npt.NDArray[np.float64],
    radius_mm: float,
) -> dict[str, ZoneClearance]:
    s = model.spacing_mm
    lo, hi = _box(model, a, b, ZONE_SEARCH_MM + radius_mm + s)
    ab = b - a
    length2 = float(np.dot(ab, ab))
    out: dict[str, ZoneClearance] = {}
    for kind in ZONE_KINDS:
        # the kind's voxels in the box, in C order: the slab of its first index (the rows are
        # sorted by it), then the other two
        voxels = index.zone_voxels[kind]
        first, stop = np.searchsorted(voxels[:, 0], [lo[0], hi[0]])
        slab = voxels[first:stop]
        ijk = slab[np.all((slab[:, 1:] >= lo[1:]) & (slab[:, 1:] < hi[1:]), axis=1)]
        if len(ijk) == 0:
            out[kind] = ZoneClearance(None, None)
            continue
        # each voxel centre to the nearest point of the axis segment
        centres = ijk * s
        t = np.clip((centres - a) @ ab / length2, 0.0, 1.0)
        nearest = a + t[:, None] * ab
        d = np.linalg.norm(centres - nearest, axis=1)
        n = int(np.argmin(d))
        clearance = float(d[n]) - 0.5 * s - radius_mm
        if clearance > ZONE_SEARCH_MM:
            out[kind] = ZoneClearance(None, None)
        else:
            out[kind] = ZoneClearance(
                round(clearance, 2), round(float(t[n]) * math.sqrt(length2), 2)
            )
    return out


def _perpendicular_basis(u: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(u[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(u, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(u, e1)
    return np.stack([e1, e2])


def _bone_width(
    model: CaseModel,
    index: PlanningIndex,
    entry: npt.NDArray[np.float64],
    u: npt.NDArray[np.float64],
    span_mm: float,
) -> tuple[float | None, float | None]:
    t = np.arange(ENTRY_SKIP_MM, span_mm + 1e-9, STATION_MM)
    stations = entry + t[:, None] * u
    in_bone = _bone_at(model, index, stations)
    if not np.any(in_bone):
        return None, None
    t, stations = t[in_bone], stations[in_bone]
    # chord directions over half a turn in the plane across the path
    e = _perpendicular_basis(u)
    angles = np.arange(CHORD_DIRECTIONS) * (math.pi / CHORD_DIRECTIONS)
    dirs = np.cos(angles)[:, None] * e[0] + np.sin(angles)[:, None] * e[1]
    steps = np.arange(1, int(CHORD_MAX_MM / STEP_MM) + 1) * STEP_MM
    widths = np.full((len(t), CHORD_DIRECTIONS), 0.0)
    for sign in (1.0, -1.0):
        # (stations, directions, steps, 3): bone along each half-chord until it first leaves
        points = (
            stations[:, None, None, :] + sign * dirs[None, :, None, :] * steps[None, None, :, None]
        )
        inside = _bone_at(model, index, points)
        run = np.where(inside.all(axis=2), len(steps), np.argmin(inside, axis=2))
        widths += run * STEP_MM
    # the station's chord is its narrowest direction; a voxel's worth for the station itself
    per_station = widths.min(axis=1) + STEP_MM
    n = int(np.argmin(per_station))
    return round(float(per_station[n]), 2), round(float(t[n]), 2)


def _bone_depth(
    model: CaseModel,
    index: PlanningIndex,
    entry: npt.NDArray[np.float64],
    u: npt.NDArray[np.float64],
) -> float | None:
    s = model.spacing_mm
    # as far as the volume reaches along the line
    extent = float(np.linalg.norm(np.asarray(model.shape) * s)) + s
    t = np.arange(0.0, extent, STEP_MM)
    inside = _bone_at(model, index, entry + t[:, None] * u)
    if not np.any(inside):
        return None
    first = int(np.argmax(inside))
    gap = math.ceil(GAP_MM / STEP_MM)
    last = first
    for n in range(first, len(t)):
        if inside[n]:
            last = n
        elif n - last > gap:
            break
    return round(float(t[last]) + 0.5 * STEP_MM, 2)


def check_element(
    model: CaseModel,
    *,
    kind: str,
    entry_mm: Any,
    target_mm: Any,
    diameter_mm: float = 0.0,
    length_mm: float | None = None,
) -> ElementChecks:
    """Checks of one element (see the module's definitions). ``diameter_mm`` is the implant's
    (a burr region's 2 x radius; 0 for a plane); ``length_mm`` the screw's, required for a
    pedicle screw. Raises ``PlanCheckError`` for invalid input."""
    if kind not in ELEMENT_KINDS:
        raise PlanCheckError("unknown_kind", f"未知的规划类型 {kind} / unknown element kind")
    if not (math.isfinite(diameter_mm) and diameter_mm >= 0):
        raise PlanCheckError("invalid_diameter", "直径无效 / the diameter is not valid")
    entry, target = validate_path(model, entry_mm, target_mm)
    path_length = float(np.linalg.norm(target - entry))
    u = (target - entry) / path_length
    radius = 0.5 * diameter_mm
    if kind == "pedicle_screw":
        if length_mm is None or not (math.isfinite(length_mm) and length_mm > 0):
            raise PlanCheckError("invalid_length", "螺钉长度无效 / the screw length is not valid")
        span = float(length_mm)
    else:
        span = path_length
    end = entry + span * u

    index = index_of(model)
    zones = _zone_clearances(model, index, entry, end, radius)
    breach: float | None = None
    grade: str | None = None
    if radius > 0 and kind not in ("osteotomy_plane", "burr_region"):
        breach = round(planned_breach_mm(model, index, entry, end, radius), 2)
        if kind in GRADED_KINDS:
            grade = gr_grade(breach)
    width, width_at = _bone_width(model, index, entry, u, span)
    depth = _bone_depth(model, index, entry, u)

    # what a planner should look at, as stable codes
    flags: list[str] = []
    if any(z.clearance_mm is not None and z.clearance_mm <= 0 for z in zones.values()):
        flags.append("protected_zone_contact")
    if breach is not None and breach > 0:
        flags.append("cortical_breach")
    if width is not None and diameter_mm > width:
        flags.append("wider_than_bone")
    if depth is not None and span > depth:
        flags.append("longer_than_bone")
    return ElementChecks(
        kind=kind,
        radius_mm=radius,
        path_length_mm=round(path_length, 2),
        span_end_mm=(round(float(end[0]), 3), round(float(end[1]), 3), round(float(end[2]), 3)),
        span_length_mm=round(span, 2),
        zones=zones,
        breach_mm=breach,
        gr_grade=grade,
        bone_width_mm=width,
        bone_width_at_mm=width_at,
        bone_depth_mm=depth,
        flags=tuple(flags),
    )
