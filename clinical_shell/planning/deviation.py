"""The deviation report of a rehearsal: how far the path drilled at the station strayed from the
planned element, from the verified replay of the session's recording.

Little geometry of its own: the achieved entry offset, tip offset, angle, breach and grade are the
simulator's scoring of the session (`sim_core.scoring`: the tool axis at the deepest point along
the plan, the line's crossing of the plane through the planned entry, `screw_breach_mm` for a
screw of the planned diameter), measured against the planned element because the session ran on
it (`sim_core.rehearsal`); the planned breach and grade come from the planner's own
`sim_core.plan_checks.planned_breach_mm` (the same `breach_along` sampling) on the planned path,
entry to target, with the same diameter. docs/planning.md ("Rehearsal and deviation").
"""

import math
from typing import Any

import numpy as np

from sim_core import plan_checks
from sim_core.scoring import GR_GRADES, gr_grade


def _metric(replayed: dict[str, Any], name: str) -> float | None:
    m = replayed.get("metrics", {}).get(name)
    if m is None or m.get("value") is None:
        return None
    value = float(m["value"])
    return value if math.isfinite(value) else None


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _point(value: Any) -> list[float] | None:
    if not isinstance(value, list | tuple) or len(value) != 3:
        return None
    return [round(float(x), 3) for x in value]


def _report(
    element: dict[str, Any],
    label: str,
    replayed: dict[str, Any],
    *,
    planned: dict[str, Any],
    achieved: dict[str, Any],
    **measures: Any,
) -> dict[str, Any]:
    # what every element's report holds, around its kind's own numbers
    entry = np.asarray(element["entry_mm"], dtype=np.float64)
    target = np.asarray(element["target_mm"], dtype=np.float64)
    return {
        "element_id": int(element["element_id"]),
        "kind": str(element["kind"]),
        "label": label,
        "diameter_mm": float(element["diameter_mm"]),
        "planned": {
            "entry_mm": _point(element["entry_mm"]),
            "target_mm": _point(element["target_mm"]),
            "length_mm": round(float(np.linalg.norm(target - entry)), 2),
            "breach_mm": None,
            "gr_grade": None,
            **planned,
        },
        "achieved": {"breach_mm": None, "gr_grade": None, **achieved},
        **measures,
        "nerve_contacts": _round(_metric(replayed, "nerve_contacts"), 0),
        "score": _round(float(replayed.get("score", 0.0)), 1),
        "passed": bool(replayed.get("passed", False)),
    }


def deviation_report(
    *,
    case_path: str,
    case_content_hash: str,
    element: dict[str, Any],
    label: str,
    replayed: dict[str, Any],
) -> dict[str, Any]:
    """The report of one rehearsed element: ``element`` as sent to the station
    (`bridge.messages.PlanElementSpec` as builtins), ``replayed`` the replay's result dict
    (`sim_core.replay.SessionResult.as_dict`: metrics and the extras ``final_tip_mm``/
    ``final_tail_mm``, for a guide wire ``apex_mm``). Raises `plan_checks.PlanCheckError`
    ("case_changed") when the case on disk is not the registered one."""
    entry = np.asarray(element["entry_mm"], dtype=np.float64)
    target = np.asarray(element["target_mm"], dtype=np.float64)
    if str(element["kind"]) in ("guide_wire", "k_wire"):
        return _guide_wire_report(element, label, replayed, entry, target)
    if str(element["kind"]) == "burr_region":
        return _burr_report(element, label, replayed)
    if str(element["kind"]) == "osteotomy_plane":
        return _plane_report(element, label, replayed)
    radius = 0.5 * float(element["diameter_mm"])
    model = plan_checks.cached_planning_model(case_path, case_content_hash)
    planned_breach = plan_checks.planned_breach_mm(
        model, plan_checks.index_of(model), entry, target, radius
    )
    depth = _metric(replayed, "depth_mm")
    grade_index = _metric(replayed, "gr_grade_index")
    achieved_grade = (
        GR_GRADES[int(grade_index)]
        if grade_index is not None and 0 <= grade_index < len(GR_GRADES)
        else None
    )
    return _report(
        element,
        label,
        replayed,
        planned={"breach_mm": round(planned_breach, 2), "gr_grade": gr_grade(planned_breach)},
        achieved={
            # where the drilled line crosses the plane through the planned entry, normal to it
            "entry_mm": _point(replayed.get("final_tail_mm")),
            "tip_mm": _point(replayed.get("final_tip_mm")),
            "depth_mm": _round(depth),
            "breach_mm": _round(_metric(replayed, "breach_mm")),
            "gr_grade": achieved_grade,
            "inserted": depth is not None and depth > 0,
        },
        entry_offset_mm=_round(_metric(replayed, "tail_offset_mm")),
        tip_offset_mm=_round(_metric(replayed, "tip_offset_mm")),
        angle_deg=_round(_metric(replayed, "angle_deg")),
        hole_completeness_pct=_round(_metric(replayed, "hole_completeness_pct"), 1),
    )


def _guide_wire_report(
    element: dict[str, Any],
    label: str,
    replayed: dict[str, Any],
    entry: np.ndarray[Any, Any],
    target: np.ndarray[Any, Any],
) -> dict[str, Any]:
    # a guide wire is judged by where its tip ends in the femoral head (tip-apex distance to
    # the case's apex, as the scenario scores it) and by its depth, not by a pedicle's
    # Gertzbein-Robbins grade; the tip offset is the achieved tip's distance from the planned
    # target (the scoring has no perpendicular tip offset for wires)
    depth = _metric(replayed, "depth_mm")
    tip = _point(replayed.get("final_tip_mm"))
    apex = _point(replayed.get("apex_mm"))
    planned_tad = None if apex is None else float(np.linalg.norm(target - np.asarray(apex)))
    tip_offset = None if tip is None else float(np.linalg.norm(np.asarray(tip) - target))
    return _report(
        element,
        label,
        replayed,
        planned={"tip_apex_mm": _round(planned_tad)},
        achieved={
            "entry_mm": _point(replayed.get("final_tail_mm")),
            "tip_mm": tip,
            "depth_mm": _round(depth),
            "tip_apex_mm": _round(_metric(replayed, "tip_apex_mm")),
            "inserted": depth is not None and depth > 0,
        },
        entry_offset_mm=_round(_metric(replayed, "tail_offset_mm")),
        tip_offset_mm=_round(tip_offset),
        angle_deg=_round(_metric(replayed, "angle_deg")),
        depth_error_mm=_round(_metric(replayed, "depth_error_mm")),
        hole_completeness_pct=_round(_metric(replayed, "hole_completeness_pct"), 1),
    )


def _burr_report(element: dict[str, Any], label: str, replayed: dict[str, Any]) -> dict[str, Any]:
    # a burr region is judged by what was removed, not by a path: the share of the planned
    # sphere's bone burred away and the bone removed outside it (the scoring's own numbers)
    return _report(
        element,
        label,
        replayed,
        planned={"radius_mm": round(0.5 * float(element["diameter_mm"]), 2)},
        achieved={
            "target_removed_pct": _round(_metric(replayed, "target_removed_pct"), 1),
            "removed_outside_mm3": _round(_metric(replayed, "removed_outside_mm3"), 1),
        },
        entry_offset_mm=None,
        tip_offset_mm=None,
        angle_deg=None,
    )


def _plane_report(element: dict[str, Any], label: str, replayed: dict[str, Any]) -> dict[str, Any]:
    # a saw cut is judged by the plane it made against the planned one (angle, parallel offset),
    # how much of the planned cut it made and what it cut off the plane; the blade's path
    # (entry, tip, angle of advance) as for a drilled element
    return _report(
        element,
        label,
        replayed,
        planned={"normal": _point(replayed.get("planned_normal"))},
        achieved={
            "entry_mm": _point(replayed.get("final_tail_mm")),
            "tip_mm": _point(replayed.get("final_tip_mm")),
            "normal": _point(replayed.get("cut_normal")),
            "cut_completeness_pct": _round(_metric(replayed, "cut_completeness_pct"), 1),
            "removed_off_plane_mm3": _round(_metric(replayed, "removed_off_plane_mm3"), 1),
        },
        entry_offset_mm=_round(_metric(replayed, "tail_offset_mm")),
        tip_offset_mm=_round(_metric(replayed, "tip_offset_mm")),
        angle_deg=_round(_metric(replayed, "angle_deg")),
        cut_angle_deg=_round(_metric(replayed, "cut_angle_deg")),
        cut_offset_mm=_round(_metric(replayed, "cut_offset_mm")),
        depth_error_mm=_round(_metric(replayed, "depth_error_mm")),
    )
