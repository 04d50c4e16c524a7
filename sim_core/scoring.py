"""Scores: a scenario's metrics from the final state, each against its pass threshold.

Three scorings (``Scenario.scoring``):

- ``pedicle``: the final trajectory is the tool axis at the deepest point of the last
  insertion. Tip offset = deepest tip to the planned target; tail offset = where the actual
  line crosses the plane through the planned entry (normal to the plan) to the planned entry;
  angle between the axes. The Gertzbein–Robbins grade comes from the largest breach of a screw
  of ``screw_diameter_mm`` along that line, measured against the bone of the *original* case
  (A none, B < 2 mm, C < 4, D < 6, E ≥ 6; Gertzbein & Robbins 1990, 5-grade form), ignoring
  the first ``ENTRY_SKIP_MM`` behind the entry where the screw head sits on the bone surface.
- ``burr_target``: % of the target zone's bone removed, bone removed outside it (mm³),
  protected-zone contacts and their duration, peak force, time above the force limit.
- ``guide_wire``: depth along the plan, plunge past the far cortex, tip–apex distance (3-D,
  tip to the planned target's landmark), redirections (insertions after the first).
"""

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from sim_core.model import CaseModel
from sim_core.slots import (
    DT_S,
    R_OUTSIDE_MM3,
    R_TARGET_MM3,
    R_TOTAL_MM3,
    S_ABOVE_LIMIT_TICKS,
    S_CONTACT_TICKS,
    S_DEEPEST_DIR,
    S_DEEPEST_TIP,
    S_DEPTH_MAX_MM,
    S_FORCE_SUM_N,
    S_INSERTIONS,
    S_NERVE_EVENTS,
    S_NERVE_TICKS,
    S_PEAK_FORCE_N,
    S_PLUNGE_MAX_MM,
    S_PLUNGES,
    S_PROTECTED_EVENTS,
    S_PROTECTED_TICKS,
    S_REMOVED,
    S_TICK,
    ZONE_TARGET,
)
from sim_core.state import SimState

GR_GRADES = "ABCDE"
ENTRY_SKIP_MM = 5.0  # the screw's first millimetres sit in the entry hole, not in a pedicle wall
SAMPLE_MM = 0.25  # step along the trajectory when measuring breach


@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float
    bound: str  # "max" | "min" | "" (reported, not graded)
    threshold: float | None
    passed: bool | None


@dataclass(frozen=True)
class ScoreSheet:
    scenario: str
    metrics: tuple[MetricResult, ...]
    extras: dict[str, Any]

    @property
    def graded(self) -> tuple[MetricResult, ...]:
        return tuple(m for m in self.metrics if m.passed is not None)

    @property
    def passed(self) -> bool:
        return all(m.passed for m in self.graded)

    @property
    def score(self) -> float:
        """Percentage of graded metrics passed (0–100)."""
        graded = self.graded
        return 100.0 * sum(1 for m in graded if m.passed) / len(graded) if graded else 0.0

    def value(self, name: str) -> float:
        for m in self.metrics:
            if m.name == name:
                return m.value
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "passed": self.passed,
            "score": self.score,
            "metrics": {
                m.name: {
                    "value": m.value,
                    "bound": m.bound or None,
                    "threshold": m.threshold,
                    "passed": m.passed,
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


def screw_breach_mm(
    model: CaseModel, tail: npt.NDArray[np.float64], tip: npt.NDArray[np.float64], radius_mm: float
) -> float:
    """Largest distance a screw of ``radius_mm`` on tail→tip reaches out of the original bone.

    Signed depth inside bone comes from a Euclidean distance transform of the bone mask
    (voxel centre to the nearest voxel of the other kind, less half a voxel), sampled
    trilinearly every ``SAMPLE_MM`` from ``ENTRY_SKIP_MM`` past the tail to the tip.
    """
    s = model.spacing_mm
    tissue = model.tissue()
    bone = (tissue == 1) | (tissue == 2)
    # a box around the trajectory is enough (the screw is a few mm wide)
    margin = radius_mm + 10.0
    lo = np.maximum(np.floor((np.minimum(tail, tip) - margin) / s).astype(int), 0)
    hi = np.minimum(np.ceil((np.maximum(tail, tip) + margin) / s).astype(int) + 1, bone.shape)
    box = bone[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    inside = ndimage.distance_transform_edt(box, sampling=s) - 0.5 * s
    outside = ndimage.distance_transform_edt(~box, sampling=s) - 0.5 * s
    depth = np.where(box, inside, -outside)
    length = float(np.linalg.norm(tip - tail))
    if length <= ENTRY_SKIP_MM:
        return 0.0
    u = (tip - tail) / length
    t = np.arange(ENTRY_SKIP_MM, length + 1e-9, SAMPLE_MM)
    points = tail[None, :] + t[:, None] * u[None, :]
    coords = (points / s - lo[None, :]).T
    d = ndimage.map_coordinates(depth, coords, order=1, mode="nearest")
    return float(max(0.0, np.max(radius_mm - d)))


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


def _pedicle(model: CaseModel, state: SimState, values: dict[str, float]) -> dict[str, Any]:
    traj = _trajectory(model, state.st)
    values["tip_offset_mm"] = traj["tip_offset_mm"]
    values["tail_offset_mm"] = traj["tail_offset_mm"]
    values["angle_deg"] = traj["angle_deg"]
    radius = 0.5 * model.scenario.screw_diameter_mm
    breach = screw_breach_mm(model, traj["tail"], traj["tip"], radius) if traj["inserted"] else 99.0
    grade = gr_grade(breach)
    values["breach_mm"] = breach
    values["gr_grade_index"] = float(GR_GRADES.index(grade))
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
    return {"target_bone_mm3": target_mm3}


def _guide_wire(model: CaseModel, state: SimState, values: dict[str, float]) -> dict[str, Any]:
    st = state.st
    traj = _trajectory(model, st)
    plan = model.plan
    depth = st[S_DEPTH_MAX_MM] if traj["inserted"] else 0.0
    values["depth_mm"] = depth
    values["depth_error_mm"] = abs(depth - plan.length_mm)
    values["plunge_mm"] = st[S_PLUNGE_MAX_MM]
    values["plunges"] = st[S_PLUNGES]
    apex_name = model.scenario.target.landmark
    apex = np.asarray(plan.landmarks_mm.get(apex_name, plan.target_mm))
    values["tip_apex_mm"] = float(np.linalg.norm(traj["tip"] - apex))
    values["redirections"] = max(0.0, st[S_INSERTIONS] - 1.0)
    values["angle_deg"] = traj["angle_deg"]
    return {"final_tip_mm": [float(x) for x in traj["tip"]], "planned_depth_mm": plan.length_mm}


def score(model: CaseModel, state: SimState) -> ScoreSheet:
    """The scenario's score sheet for a finished (or current) state."""
    values = _common(model, state.st)
    scoring = model.scenario.scoring
    if scoring == "pedicle":
        extras = _pedicle(model, state, values)
    elif scoring == "burr_target":
        extras = _burr(model, state, values)
    else:
        extras = _guide_wire(model, state, values)
    thresholds = {t.metric: t for t in model.scenario.thresholds}
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
            )
        )
    return ScoreSheet(scenario=model.scenario.name, metrics=tuple(metrics), extras=extras)
