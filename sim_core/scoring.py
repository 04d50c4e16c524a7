"""Scores: a scenario's metrics from the final state, a clinically weighted score, and the
critical errors that fail an attempt whatever the rest. Reasoning and sources per scenario:
``docs/scoring.md``.

Every metric covers the whole session: the engine's accumulators do not reset when the tool
leaves bone and enters again (``sim_core.slots``), and the hole metrics read the final bone
itself (what was drilled where), so withdrawing and re-entering hides nothing.

- The *trajectory* of a drilled scenario is the tool axis at the session's deepest point
  along the plan. Tip offset = that tip to the planned target; tail offset = where the actual
  line crosses the plane through the planned entry (normal to the plan) to the planned entry;
  angle between the axes.
- ``pedicle``: the Gertzbein–Robbins grade comes from the largest breach of a screw of
  ``screw_diameter_mm`` along that line, measured against the bone of the *original* case (A
  none, B < 2 mm, C < 4, D < 6, E ≥ 6; Gertzbein & Robbins 1990, 5-grade form), ignoring the
  first ``ENTRY_SKIP_MM`` behind the entry where the screw head sits on the bone surface.
- drilled scenarios (``pedicle``, ``guide_wire``): hole completeness = bone actually drilled
  along the trajectory over the bone on the planned path (a push with the power off drills
  nothing); bone removed off that track (a redrilled, levered or abandoned tract).
- ``burr_target``: % of the target zone's bone removed, bone removed outside it and inside the
  protected zone (mm³), protected-zone contacts and their duration.
- ``guide_wire``: depth along the plan, tip–apex distance (3-D, tip to the planned target's
  landmark).

Score (0–100): each weighted metric earns ``Threshold.credit`` of its points (1 at its ideal,
½ at its pass bound, 0 as far beyond the bound again); the sum is normalised by the weights.
An attempt passes when no graded metric is beyond its bound and no critical error occurred
(``Threshold.fail_at``); a failed attempt shows at most ``FAIL_CAP``, one with a critical
error at most ``CRITICAL_CAP``.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from sim_core.fluoro import fluoro_metrics
from sim_core.model import CaseModel
from sim_core.scenarios import PLAN_POINTS
from sim_core.slots import (
    DT_S,
    R_OUTSIDE_MM3,
    R_PROTECTED_MM3,
    R_TARGET_MM3,
    R_TOTAL_MM3,
    S_ABOVE_LIMIT_TICKS,
    S_BREACH_EVENTS,
    S_CONTACT_TICKS,
    S_DEEPEST_DIR,
    S_DEEPEST_TIP,
    S_DEPTH_MAX_MM,
    S_FORCE_SUM_N,
    S_INSERTIONS,
    S_LATERAL_ABOVE_TICKS,
    S_LATERAL_PEAK_N,
    S_NERVE_EVENTS,
    S_NERVE_TICKS,
    S_PEAK_FORCE_N,
    S_PLUNGE_MAX_MM,
    S_PLUNGE_SPEED_MAX_MM_S,
    S_PLUNGES,
    S_POWER_OFF_PEAK_N,
    S_POWER_OFF_TICKS,
    S_PROTECTED_EVENTS,
    S_PROTECTED_TICKS,
    S_REMOVED,
    S_TICK,
    S_TORQUE_ABOVE_TICKS,
    S_TORQUE_PEAK_N_MM,
    T_RADIUS_MM,
    T_WIDTH_MM,
    ZONE_TARGET,
)
from sim_core.state import SimState

GR_GRADES = "ABCDE"
ENTRY_SKIP_MM = 5.0  # the screw's first millimetres sit in the entry hole, not in a pedicle wall
SAMPLE_MM = 0.25  # step along the trajectory when measuring breach and the hole
FAIL_CAP = 59.0  # a failed attempt never shows a score that reads as a pass (60 and up)
CRITICAL_CAP = 20.0  # one with a critical error shows at most this
DRILLED_FRACTION = 0.5  # a voxel with less than this share of its bone left counts as drilled
OFF_TRACK_MARGIN_MM = 1.0  # removal this far beyond the tool's radius from the track is off it


@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float
    bound: str  # "max" | "min" | "" (reported, not graded)
    threshold: float | None
    passed: bool | None
    weight: float = 0.0  # points of the score (normalised over the sheet); 0: pass/fail only
    credit: float | None = None  # share of its points earned (graded metrics)
    critical: bool = False  # a critical error: the attempt fails whatever the rest


@dataclass(frozen=True)
class ScoreSheet:
    scenario: str
    metrics: tuple[MetricResult, ...]
    extras: dict[str, Any]

    @property
    def graded(self) -> tuple[MetricResult, ...]:
        return tuple(m for m in self.metrics if m.passed is not None)

    @property
    def critical_errors(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics if m.critical)

    @property
    def passed(self) -> bool:
        return not self.critical_errors and all(m.passed for m in self.graded)

    @property
    def raw_score(self) -> float:
        """Weighted credit before the caps (0–100); equal weights where none are given."""
        graded = self.graded
        if not graded:
            return 0.0
        total = sum(m.weight for m in graded)
        if total <= 0.0:
            return 100.0 * sum(m.credit or 0.0 for m in graded) / len(graded)
        return 100.0 * sum(m.weight * (m.credit or 0.0) for m in graded) / total

    @property
    def score(self) -> float:
        """The weighted score (0–100), capped for a failed attempt and for a critical error."""
        s = self.raw_score
        if not self.passed:
            s = min(s, FAIL_CAP)
        if self.critical_errors:
            s = min(s, CRITICAL_CAP)
        return s

    def value(self, name: str) -> float:
        return self.metric(name).value

    def metric(self, name: str) -> MetricResult:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "passed": self.passed,
            "score": self.score,
            "critical_errors": list(self.critical_errors),
            "metrics": {
                m.name: {
                    "value": m.value,
                    "bound": m.bound or None,
                    "threshold": m.threshold,
                    "passed": m.passed,
                    "weight": m.weight,
                    "credit": m.credit,
                    "critical": m.critical,
                }
                for m in self.metrics
            },
            **self.extras,
        }


def _angle_deg(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    c = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def gr_grade(breach_mm: float) -> str:
    """Gertzbein–Robbins grade of a cortical breach (mm)."""
    if breach_mm <= 0.0:
        return "A"
    if breach_mm < 2.0:
        return "B"
    if breach_mm < 4.0:
        return "C"
    if breach_mm < 6.0:
        return "D"
    return "E"


# the signed depth (mm, > 0 inside bone) on a box of voxels, and the box's first voxel, given
# the sample points of a path in voxel units, shape (3, n); see breach_along
DepthBox = Callable[
    [npt.NDArray[np.float64]], tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]
]


def breach_box(
    shape: tuple[int, ...],
    spacing_mm: float,
    tail: npt.NDArray[np.float64],
    tip: npt.NDArray[np.float64],
    radius_mm: float,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """First voxel and one past the last of the box ``screw_breach_mm`` measures depth in: the
    path's bounding box grown by ``radius_mm`` + 10 mm, clipped to the grid."""
    s = spacing_mm
    margin = radius_mm + 10.0
    lo = np.maximum(np.floor((np.minimum(tail, tip) - margin) / s).astype(int), 0)
    hi = np.minimum(np.ceil((np.maximum(tail, tip) + margin) / s).astype(int) + 1, shape)
    return lo, hi


def breach_along(
    tail: npt.NDArray[np.float64],
    tip: npt.NDArray[np.float64],
    radius_mm: float,
    spacing_mm: float,
    depth_box: DepthBox,
) -> float:
    """Largest distance a screw of ``radius_mm`` on tail→tip reaches out of bone, given where
    the signed depth comes from: sampled every ``SAMPLE_MM`` from ``ENTRY_SKIP_MM`` past the
    tail to the tip, trilinearly (``map_coordinates(order=1, mode="nearest")``), breach =
    max(0, max(radius − depth)). The one sampling the simulator's score (``screw_breach_mm``)
    and the planner (``sim_core.plan_checks``) share.

    ``depth_box(coords)`` gets the sample points in voxel units (shape (3, n)) and returns a
    float64 array of signed depth (mm) over a box of voxels and the box's first voxel (int64,
    (3,)). Every voxel ``map_coordinates`` reads with a nonzero weight (per axis: the floor of
    the point clamped to the grid, and the next voxel) must be in the box and hold its depth,
    every other voxel a finite value; the box's edges must be the grid's where a point lies
    beyond it.
    """
    length = float(np.linalg.norm(tip - tail))
    if length <= ENTRY_SKIP_MM:
        return 0.0
    u = (tip - tail) / length
    t = np.arange(ENTRY_SKIP_MM, length + 1e-9, SAMPLE_MM)
    points = tail[None, :] + t[:, None] * u[None, :]
    coords = (points / spacing_mm).T
    depth, lo = depth_box(coords)
    # coords - lo is exact (lo is 0 or a whole number below the coordinate), so any box that
    # holds the voxels read gives the very same weights
    d = ndimage.map_coordinates(depth, coords - lo[:, None], order=1, mode="nearest")
    return float(max(0.0, np.max(radius_mm - d)))


def screw_breach_mm(
    model: CaseModel, tail: npt.NDArray[np.float64], tip: npt.NDArray[np.float64], radius_mm: float
) -> float:
    """Largest distance a screw of ``radius_mm`` on tail→tip reaches out of the original bone.

    Signed depth inside bone comes from a Euclidean distance transform of the bone mask
    (voxel centre to the nearest voxel of the other kind, less half a voxel), sampled
    trilinearly every ``SAMPLE_MM`` from ``ENTRY_SKIP_MM`` past the tail to the tip
    (``breach_along``). The transform runs on ``breach_box`` only, so it sees the voxels of the
    other kind within that box: a voxel whose nearest one lies outside reads farther from it
    than it is (and a box holding one kind only reads scipy's distance to a virtual voxel just
    before the box's first corner).
    """

    def depth_box(
        coords: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        # a box around the trajectory is enough (the screw is a few mm wide)
        s = model.spacing_mm
        tissue = model.tissue()
        bone = (tissue == 1) | (tissue == 2)
        lo, hi = breach_box(bone.shape, s, tail, tip, radius_mm)
        box = bone[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        inside = ndimage.distance_transform_edt(box, sampling=s) - 0.5 * s
        outside = ndimage.distance_transform_edt(~box, sampling=s) - 0.5 * s
        return np.where(box, inside, -outside), lo

    return breach_along(tail, tip, radius_mm, model.spacing_mm, depth_box)


def _line_plane(
    point: npt.NDArray[np.float64],
    direction: npt.NDArray[np.float64],
    plane_point: npt.NDArray[np.float64],
    normal: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    denom = float(np.dot(direction, normal))
    if abs(denom) < 1e-9:
        return point
    t = float(np.dot(plane_point - point, normal)) / denom
    return np.asarray(point + t * direction, dtype=np.float64)


def _common(model: CaseModel, st: npt.NDArray[np.float64]) -> dict[str, float]:
    ticks = st[S_TICK]
    contact = st[S_CONTACT_TICKS]
    return {
        "time_s": ticks * DT_S,
        "peak_force_n": st[S_PEAK_FORCE_N],
        "mean_contact_force_n": st[S_FORCE_SUM_N] / contact if contact else 0.0,
        "time_above_force_limit_s": st[S_ABOVE_LIMIT_TICKS] * DT_S,
        "nerve_contacts": st[S_NERVE_EVENTS],
        "nerve_contact_s": st[S_NERVE_TICKS] * DT_S,
        "protected_contacts": st[S_PROTECTED_EVENTS],
        "protected_contact_s": st[S_PROTECTED_TICKS] * DT_S,
        "removed_mm3": st[S_REMOVED + R_TOTAL_MM3],
        # levering: force across the shaft, or torque on it, while it is in bone
        "lateral_peak_n": st[S_LATERAL_PEAK_N],
        "torque_peak_n_mm": st[S_TORQUE_PEAK_N_MM],
        "levering_s": max(st[S_LATERAL_ABOVE_TICKS], st[S_TORQUE_ABOVE_TICKS]) * DT_S,
        "plunge_mm": st[S_PLUNGE_MAX_MM],
        "plunges": st[S_PLUNGES],
        "plunge_speed_mm_s": st[S_PLUNGE_SPEED_MAX_MM_S],
        "power_off_push_s": st[S_POWER_OFF_TICKS] * DT_S,
        "power_off_peak_n": st[S_POWER_OFF_PEAK_N],
        "breaches": st[S_BREACH_EVENTS],
        "redirections": max(0.0, st[S_INSERTIONS] - 1.0),
    }


def _trajectory(model: CaseModel, st: npt.NDArray[np.float64]) -> dict[str, Any]:
    plan = model.plan
    entry = np.asarray(plan.entry_mm)
    target = np.asarray(plan.target_mm)
    axis = plan.axis
    tip = np.array(st[S_DEEPEST_TIP : S_DEEPEST_TIP + 3])
    direction = np.array(st[S_DEEPEST_DIR : S_DEEPEST_DIR + 3])
    tail = _line_plane(tip, direction, entry, axis)
    inserted = st[S_INSERTIONS] > 0
    return {
        "tip": tip,
        "tail": tail,
        "direction": direction,
        "inserted": inserted,
        "tip_offset_mm": float(np.linalg.norm(tip - target)),
        "tail_offset_mm": float(np.linalg.norm(tail - entry)),
        "angle_deg": _angle_deg(direction, axis),
    }


def _samples(
    model: CaseModel, a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.intp], ...]:
    # voxel indices every SAMPLE_MM from a to b (inside the grid)
    length = float(np.linalg.norm(b - a))
    t = np.arange(0.0, length + 1e-9, SAMPLE_MM) / max(length, 1e-9)
    points = a[None, :] + t[:, None] * (b - a)[None, :]
    idx = np.rint(points / model.spacing_mm).astype(np.intp)
    inside = np.all((idx >= 0) & (idx < np.asarray(model.shape)), axis=1)
    return tuple(idx[inside].T)


def _hole(
    model: CaseModel, state: SimState, traj: dict[str, Any], values: dict[str, float]
) -> None:
    """Hole completeness, the hole on the plan line, and bone removed off the track."""
    plan = model.plan
    entry, target = np.asarray(plan.entry_mm), np.asarray(plan.target_mm)
    on_plan = _samples(model, entry, target)
    plan_bone = model.density0[on_plan] > 0
    plan_bone_n = int(np.count_nonzero(plan_bone))
    tail, tip = traj["tail"], traj["tip"]
    if not traj["inserted"] or plan_bone_n == 0:
        values["hole_completeness_pct"] = 0.0
        values["hole_on_plan_pct"] = 0.0
    else:
        track = _samples(model, tail, tip)
        drilled_track = (model.density0[track] > 0) & (
            state.density[track] < DRILLED_FRACTION * model.density0[track]
        )
        done = int(np.count_nonzero(drilled_track))
        values["hole_completeness_pct"] = 100.0 * min(1.0, done / plan_bone_n)
        drilled_plan = plan_bone & (
            state.density[on_plan] < DRILLED_FRACTION * model.density0[on_plan]
        )
        values["hole_on_plan_pct"] = 100.0 * int(np.count_nonzero(drilled_plan)) / plan_bone_n
    # bone removed farther than the tool's radius (plus a margin) from the track segment
    rho0 = model.density0
    removed = (rho0 > 0) & (state.density < rho0)
    where = np.argwhere(removed)
    if where.size == 0:
        values["removed_off_track_mm3"] = 0.0
        return
    centres = where.astype(np.float64) * model.spacing_mm
    seg = tip - tail
    seg_len2 = float(np.dot(seg, seg))
    if seg_len2 > 1e-12 and traj["inserted"]:
        t = np.clip(((centres - tail) @ seg) / seg_len2, 0.0, 1.0)
        nearest = tail[None, :] + t[:, None] * seg[None, :]
        dist = np.linalg.norm(centres - nearest, axis=1)
    else:
        dist = np.full(len(centres), np.inf)
    off = dist > model.instrument.radius_mm + OFF_TRACK_MARGIN_MM
    i, j, k = where[off].T
    share = 1.0 - state.density[i, j, k] / rho0[i, j, k]
    values["removed_off_track_mm3"] = float(np.sum(share)) * model.spacing_mm**3


def _pedicle(model: CaseModel, state: SimState, values: dict[str, float]) -> dict[str, Any]:
    st = state.st
    traj = _trajectory(model, st)
    values["tip_offset_mm"] = traj["tip_offset_mm"]
    values["tail_offset_mm"] = traj["tail_offset_mm"]
    values["angle_deg"] = traj["angle_deg"]
    values["depth_mm"] = st[S_DEPTH_MAX_MM] if traj["inserted"] else 0.0
    radius = 0.5 * model.scenario.screw_diameter_mm
    breach = screw_breach_mm(model, traj["tail"], traj["tip"], radius) if traj["inserted"] else 99.0
    grade = gr_grade(breach)
    values["breach_mm"] = breach
    values["gr_grade_index"] = float(GR_GRADES.index(grade))
    _hole(model, state, traj, values)
    return {
        "gr_grade": grade,
        "final_tip_mm": [float(x) for x in traj["tip"]],
        "final_tail_mm": [float(x) for x in traj["tail"]],
    }


def _burr(model: CaseModel, state: SimState, values: dict[str, float]) -> dict[str, Any]:
    st = state.st
    in_target = (model.label & ZONE_TARGET) > 0
    target_mm3 = float(np.count_nonzero(in_target & (model.density0 > 0))) * model.spacing_mm**3
    removed_target = st[S_REMOVED + R_TARGET_MM3]
    values["target_removed_pct"] = 100.0 * removed_target / target_mm3 if target_mm3 else 0.0
    values["removed_outside_mm3"] = st[S_REMOVED + R_OUTSIDE_MM3]
    values["protected_removed_mm3"] = st[S_REMOVED + R_PROTECTED_MM3]
    return {"target_bone_mm3": target_mm3}


def _guide_wire(model: CaseModel, state: SimState, values: dict[str, float]) -> dict[str, Any]:
    st = state.st
    traj = _trajectory(model, st)
    plan = model.plan
    depth = st[S_DEPTH_MAX_MM] if traj["inserted"] else 0.0
    values["depth_mm"] = depth
    values["depth_error_mm"] = abs(depth - plan.length_mm)
    apex_name = model.scenario.target.landmark
    extras: dict[str, Any] = {}
    if apex_name in PLAN_POINTS:
        # a wire aimed at the plan's own target (a K-wire): judged by its tip's distance to it
        values["tip_offset_mm"] = traj["tip_offset_mm"]
    else:
        apex = np.asarray(plan.landmarks_mm.get(apex_name, plan.target_mm))
        values["tip_apex_mm"] = float(np.linalg.norm(traj["tip"] - apex))
        # the landmark the tip-apex distance is measured to (a rehearsal's report gives the
        # planned tip's distance to it beside the achieved one)
        extras["apex_mm"] = [float(x) for x in apex]
    values["angle_deg"] = traj["angle_deg"]
    values["tail_offset_mm"] = traj["tail_offset_mm"]
    _hole(model, state, traj, values)
    return {
        "final_tip_mm": [float(x) for x in traj["tip"]],
        "final_tail_mm": [float(x) for x in traj["tail"]],
        "planned_depth_mm": plan.length_mm,
        **extras,
    }


def _plane_cut(model: CaseModel, state: SimState, values: dict[str, float]) -> dict[str, Any]:
    """A saw cut along the plan's plane (entry -> target, flat side along the plan's blade
    normal): how much of the planned slot was cut, how the cut's own plane lies against the
    planned one, and the bone cut off it. The slot is what the blade, as the kernel cuts with it
    (its thickness widened to a voxel), removes when driven exactly along the plan."""
    st = state.st
    plan = model.plan
    assert plan.blade_normal is not None  # on_trajectory gives every plane_cut plan one
    entry = np.asarray(plan.entry_mm)
    d = plan.axis
    n = np.asarray(plan.blade_normal)
    w = np.cross(d, n)
    half_kerf = float(model.tool[T_RADIUS_MM])
    half_width = 0.5 * float(model.tool[T_WIDTH_MM])
    s = model.spacing_mm
    traj = _trajectory(model, st)
    values["tip_offset_mm"] = traj["tip_offset_mm"]
    values["tail_offset_mm"] = traj["tail_offset_mm"]
    values["angle_deg"] = traj["angle_deg"]
    depth = st[S_DEPTH_MAX_MM] if traj["inserted"] else 0.0
    values["depth_error_mm"] = abs(depth - plan.length_mm)
    # the planned slot, among the voxels of its bounding box
    corners = np.array(
        [entry + a * plan.length_mm * d + b * half_width * w for a in (0, 1) for b in (-1, 1)]
    )
    lo = np.maximum(np.floor((corners.min(0) - half_kerf) / s).astype(int), 0)
    hi = np.minimum(np.ceil((corners.max(0) + half_kerf) / s).astype(int) + 1, model.shape)
    box = tuple(slice(int(lo[a]), int(hi[a])) for a in range(3))
    ijk = np.argwhere(model.density0[box] > 0) + lo
    rel = ijk * s - entry
    along, across, off = rel @ d, rel @ w, rel @ n
    in_slot = (
        (along >= 0.0)
        & (along <= plan.length_mm)
        & (np.abs(across) <= half_width)
        & (np.abs(off) <= half_kerf)
    )
    slot = ijk[in_slot]
    if len(slot):
        i, j, k = slot.T
        cut = state.density[i, j, k] < DRILLED_FRACTION * model.density0[i, j, k]
        values["cut_completeness_pct"] = 100.0 * float(np.count_nonzero(cut)) / len(slot)
    else:
        values["cut_completeness_pct"] = 0.0
    # the bone actually removed: its plane (least-squares, weighted by the share removed) and
    # what lies off the planned one
    removed = np.argwhere((model.density0 > 0) & (state.density < model.density0))
    i, j, k = removed.T
    share = 1.0 - state.density[i, j, k] / model.density0[i, j, k]
    distance = (removed * s - entry) @ n
    off_plane = np.abs(distance) > half_kerf + OFF_TRACK_MARGIN_MM
    values["removed_off_plane_mm3"] = float(np.sum(share[off_plane])) * s**3
    fitted = n
    if len(removed) >= 10 and float(np.sum(share)) > 0:
        centre = np.average(removed * s, axis=0, weights=share)
        spread = (removed * s - centre) * np.sqrt(share)[:, None]
        fitted = np.linalg.svd(spread, full_matrices=False)[2][2]
        values["cut_angle_deg"] = min(_angle_deg(fitted, n), _angle_deg(-fitted, n))
        values["cut_offset_mm"] = abs(float(np.average(distance, weights=share)))
    else:
        # nothing cut: no plane to compare, and the worst a plane can be
        values["cut_angle_deg"] = 90.0
        values["cut_offset_mm"] = 99.0
    return {
        "final_tip_mm": [float(x) for x in traj["tip"]],
        "final_tail_mm": [float(x) for x in traj["tail"]],
        "cut_normal": [float(x) for x in fitted],
        "planned_normal": [float(x) for x in n],
        "slot_bone_mm3": float(len(slot)) * s**3,
    }


def score(
    model: CaseModel, state: SimState, *, extra: Mapping[str, float] | None = None
) -> ScoreSheet:
    """The scenario's score sheet for a finished (or current) state. ``extra``: metric values
    the state does not hold (the session's fluoroscopy shots, ``sim_core.fluoro``)."""
    values = _common(model, state.st)
    scoring = model.scenario.scoring
    if scoring == "pedicle":
        extras = _pedicle(model, state, values)
    elif scoring == "burr_target":
        extras = _burr(model, state, values)
    elif scoring == "plane_cut":
        extras = _plane_cut(model, state, values)
    else:
        extras = _guide_wire(model, state, values)
    # further metric groups (e.g. fluoroscopy shots) add their values here, before grading
    # every sheet counts fluoroscopy (0 shots unless given), so a station's score and the
    # shell's replay of its recording list the same metrics
    values.update(fluoro_metrics(()))
    values.update(extra or {})
    thresholds = {t.metric: t for t in model.scenario.thresholds}
    total_weight = sum(t.weight for t in thresholds.values())
    metrics = []
    for name in sorted(values):
        value = float(values[name])
        t = thresholds.get(name)
        metrics.append(
            MetricResult(
                name=name,
                value=value,
                bound=t.bound if t else "",
                threshold=t.value if t else None,
                passed=t.passes(value) if t else None,
                weight=100.0 * t.weight / total_weight if t and total_weight > 0 else 0.0,
                credit=t.credit(value) if t else None,
                critical=t.critical(value) if t else False,
            )
        )
    return ScoreSheet(scenario=model.scenario.name, metrics=tuple(metrics), extras=extras)
