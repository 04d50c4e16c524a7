"""Scenarios as data: ``assets/scenarios/<name>.json`` → ``Scenario``; and a case's plan.

A scenario names its instrument, how its plan is found on a case (landmarks, offsets), the
zones it scores against, what the case must hold, and each metric's pass threshold:

```
{
  "title": "中文 / English",
  "scoring": "pedicle" | "burr_target" | "guide_wire",
  "instrument": "drill_3.2mm",
  "plan": {"entry": POINT, "target": POINT},
  "zones": {"target": SPHERE, "protected": SPHERE},      (optional, each optional)
  "requires_tissues": ["nerve"],                          (optional)
  "screw_diameter_mm": 5.0,                               (pedicle only)
  "force_limit_n": 6.0, "time_limit_s": 90, "seed": 1,
  "metrics": {"<metric>": METRIC, ...}
}
METRIC = {"max": x} | {"min": x}                          the pass bound, plus optionally:
         "weight": w       points of the score this metric carries (weights are normalised)
         "ideal": v        the value earning full credit (default 0 for "max"; "min" with a
                           weight must give it)
         "fail_at": v      a critical error at or beyond v (>= v for "max", <= v for "min"):
                           the attempt fails whatever the rest (see ``sim_core.scoring``)
POINT  = {"landmark": NAME, "offset_lps_mm": [x, y, z]?, "toward": NAME?, "distance_mm": d?}
SPHERE = {"centre": POINT, "radius_mm": r}
```

``toward``/``distance_mm`` move the point that far towards another landmark (e.g. 5 mm short of
the femoral head apex). Points are in patient coordinates (LPS, mm) and become case-frame points
through the case's ``case_from_patient_mm``.
"""

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "assets" / "scenarios"

SCORINGS = ("pedicle", "burr_target", "guide_wire", "plane_cut")
TISSUES = {"cortex": 1, "cancellous": 2, "canal": 3, "nerve": 4, "vessel": 5}
TOP_FIELDS = {
    "title",
    "scoring",
    "instrument",
    "plan",
    "zones",
    "requires_tissues",
    "screw_diameter_mm",
    "force_limit_n",
    "time_limit_s",
    "seed",
    "metrics",
    "rehearsal_only",
}
# the landmarks a rehearsal scenario's plan and zones name: a rehearsal fills them with the
# surgeon's planned entry and target (sim_core.rehearsal), so such a scenario runs on any case
PLAN_POINTS = ("plan_entry", "plan_target")
REQUIRED = {"title", "scoring", "instrument", "plan", "force_limit_n", "time_limit_s", "metrics"}
POINT_FIELDS = {"landmark", "offset_lps_mm", "toward", "distance_mm"}
SPHERE_FIELDS = {"centre", "radius_mm"}
# the metrics every scoring computes (see sim_core.scoring), then each scoring's own; a
# threshold on any other is an error
COMMON_METRICS: tuple[str, ...] = (
    "time_s",
    "peak_force_n",
    "mean_contact_force_n",
    "time_above_force_limit_s",
    "nerve_contacts",
    "nerve_contact_s",
    "protected_contacts",
    "protected_contact_s",
    "removed_mm3",
    "lateral_peak_n",
    "torque_peak_n_mm",
    "levering_s",
    "plunge_mm",
    "plunges",
    "plunge_speed_mm_s",
    "power_off_push_s",
    "power_off_peak_n",
    "breaches",
    "redirections",
)
_DRILLED: tuple[str, ...] = (
    "hole_completeness_pct",
    "hole_on_plan_pct",
    "removed_off_track_mm3",
    "depth_mm",
    "angle_deg",
)
METRICS: dict[str, tuple[str, ...]] = {
    "pedicle": (
        *COMMON_METRICS,
        *_DRILLED,
        "gr_grade_index",
        "breach_mm",
        "tip_offset_mm",
        "tail_offset_mm",
    ),
    "burr_target": (
        *COMMON_METRICS,
        "target_removed_pct",
        "removed_outside_mm3",
        "protected_removed_mm3",
    ),
    # tip_offset_mm where the wire aims at the plan's own target (a K-wire), tip_apex_mm where it
    # aims short of a landmark it is measured to (the femoral head's apex)
    "guide_wire": (
        *COMMON_METRICS,
        *_DRILLED,
        "depth_error_mm",
        "tip_apex_mm",
        "tip_offset_mm",
        "tail_offset_mm",
    ),
    # a saw cut along a planned plane (an osteotomy): the blade advances entry -> target in the
    # plane, its flat side along the plan's blade normal
    "plane_cut": (
        *COMMON_METRICS,
        "cut_completeness_pct",
        "cut_angle_deg",
        "cut_offset_mm",
        "removed_off_plane_mm3",
        "depth_error_mm",
        "tip_offset_mm",
        "tail_offset_mm",
        "angle_deg",
    ),
}
METRIC_FIELDS = {"max", "min", "weight", "ideal", "fail_at"}

Vector = npt.NDArray[np.float64]


class ScenarioError(Exception):
    """A scenario file that is missing or invalid, or a case that lacks what it needs."""


@dataclass(frozen=True)
class PointSpec:
    landmark: str
    offset_lps_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    toward: str = ""
    distance_mm: float = 0.0


@dataclass(frozen=True)
class SphereSpec:
    centre: PointSpec
    radius_mm: float


@dataclass(frozen=True)
class Threshold:
    metric: str
    bound: str  # "max" | "min"
    value: float
    weight: float = 0.0  # points of the score (normalised over the scenario's metrics)
    ideal: float | None = None  # full credit here (None: 0 for "max")
    fail_at: float | None = None  # a critical error at or beyond this

    def passes(self, x: float) -> bool:
        return x <= self.value if self.bound == "max" else x >= self.value

    def critical(self, x: float) -> bool:
        """Whether ``x`` is a critical error (fails the attempt whatever the rest)."""
        if self.fail_at is None:
            return False
        return x >= self.fail_at if self.bound == "max" else x <= self.fail_at

    def credit(self, x: float) -> float:
        """Share of this metric's points earned by ``x``: 1 at ``ideal``, ½ at the pass bound,
        0 as far beyond the bound again (linear in between)."""
        ideal = self.ideal if self.ideal is not None else 0.0
        # distance from the ideal towards the bad side, in units of (bound - ideal)
        span = self.value - ideal
        bad = (x - ideal) if self.bound == "max" else (ideal - x)
        span = span if self.bound == "max" else -span
        if span <= 0.0:  # the bound is the ideal (e.g. "no contact"): all or nothing
            return 1.0 if self.passes(x) else 0.0
        u = max(0.0, bad / span)
        return max(0.0, 1.0 - 0.5 * u)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    scoring: str
    instrument: str
    entry: PointSpec
    target: PointSpec
    force_limit_n: float
    time_limit_s: float
    thresholds: tuple[Threshold, ...]
    target_zone: SphereSpec | None = None
    protected_zone: SphereSpec | None = None
    requires_tissues: tuple[str, ...] = ()
    screw_diameter_mm: float = 0.0
    seed: int = 1
    # a scenario only a rehearsal of a plan runs: its points are PLAN_POINTS, which no case has
    rehearsal_only: bool = False


@dataclass(frozen=True)
class Sphere:
    centre_mm: tuple[float, float, float]  # case frame
    radius_mm: float


@dataclass(frozen=True)
class Plan:
    """A scenario's plan on one case, in the case frame (mm)."""

    entry_mm: tuple[float, float, float]
    target_mm: tuple[float, float, float]
    target_zone: Sphere | None = None
    protected_zone: Sphere | None = None
    landmarks_mm: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    # case-frame direction of each patient axis (L, P, S): case_vec = case_from_lps @ lps_vec
    case_from_lps: tuple[tuple[float, float, float], ...] = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
    # a planned cut's plane: its unit normal, normal to the axis (plane_cut scoring only)
    blade_normal: tuple[float, float, float] | None = None

    def case_direction(self, lps: tuple[float, float, float]) -> Vector:
        """A patient-frame direction (LPS) in the case frame, unit length."""
        v = np.asarray(self.case_from_lps, dtype=np.float64) @ np.asarray(lps, dtype=np.float64)
        return np.asarray(v / np.linalg.norm(v), dtype=np.float64)

    @property
    def axis(self) -> Vector:
        """Unit vector from entry to target."""
        v = np.subtract(self.target_mm, self.entry_mm)
        return np.asarray(v / np.linalg.norm(v), dtype=np.float64)

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(np.subtract(self.target_mm, self.entry_mm)))


def _fail(source: str, zh: str, en: str) -> ScenarioError:
    return ScenarioError(f"{source}: {zh} / {en}")


def _check_fields(
    source: str, where: str, data: Any, allowed: set[str], required: set[str]
) -> None:
    if not isinstance(data, dict):
        raise _fail(source, f"{where} 必须是 JSON 对象", f"{where} must be an object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        names = ", ".join(unknown)
        raise _fail(
            source,
            f"{where} 中有未知字段 {names}",
            f"unknown field(s) {names} in {where} (allowed: {', '.join(sorted(allowed))})",
        )
    missing = sorted(required - set(data))
    if missing:
        names = ", ".join(missing)
        raise _fail(source, f"{where} 缺少字段 {names}", f"missing field(s) {names} in {where}")


def _float(source: str, where: str, value: Any, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise _fail(source, f"{where} 必须是数字", f"{where} must be a number")
    if positive and value <= 0:
        raise _fail(source, f"{where} 必须为正数", f"{where} must be positive")
    return float(value)


def _point(source: str, where: str, data: Any) -> PointSpec:
    _check_fields(source, where, data, POINT_FIELDS, {"landmark"})
    offset = data.get("offset_lps_mm", [0.0, 0.0, 0.0])
    if not (isinstance(offset, list) and len(offset) == 3):
        raise _fail(
            source, f"{where}.offset_lps_mm 必须是三个数", f"{where}.offset_lps_mm: 3 numbers"
        )
    xyz = tuple(_float(source, f"{where}.offset_lps_mm", v, positive=False) for v in offset)
    if ("toward" in data) != ("distance_mm" in data):
        raise _fail(
            source,
            f"{where} 的 toward 与 distance_mm 必须同时给出",
            f"{where}: toward and distance_mm go together",
        )
    return PointSpec(
        landmark=str(data["landmark"]),
        offset_lps_mm=(xyz[0], xyz[1], xyz[2]),
        toward=str(data.get("toward", "")),
        distance_mm=_float(
            source, f"{where}.distance_mm", data.get("distance_mm", 0.0), positive=False
        ),
    )


def _sphere(source: str, where: str, data: Any) -> SphereSpec:
    _check_fields(source, where, data, SPHERE_FIELDS, SPHERE_FIELDS)
    return SphereSpec(
        centre=_point(source, f"{where}.centre", data["centre"]),
        radius_mm=_float(source, f"{where}.radius_mm", data["radius_mm"]),
    )


def _threshold(source: str, metric: str, spec: Any) -> Threshold:
    if not isinstance(spec, dict) or len(set(spec) & {"max", "min"}) != 1:
        raise _fail(source, f"指标 {metric} 需要 max 或 min", f"metric {metric}: give max or min")
    unknown = sorted(set(spec) - METRIC_FIELDS)
    if unknown:
        raise _fail(
            source,
            f"指标 {metric} 有未知字段 {', '.join(unknown)}",
            f"metric {metric}: unknown field(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(METRIC_FIELDS))})",
        )
    kind = "max" if "max" in spec else "min"
    where = f"metrics.{metric}"
    value = _float(source, where, spec[kind], positive=False)
    weight = _float(source, f"{where}.weight", spec.get("weight", 0.0), positive=False)
    if weight < 0:
        raise _fail(source, f"{where}.weight 不能为负", f"{where}.weight must not be negative")
    ideal = (
        _float(source, f"{where}.ideal", spec["ideal"], positive=False) if "ideal" in spec else None
    )
    if kind == "min" and weight > 0 and ideal is None:
        raise _fail(
            source, f"{where} 有权重时需要 ideal", f"{where}: a weighted min metric needs ideal"
        )
    fail_at = (
        _float(source, f"{where}.fail_at", spec["fail_at"], positive=False)
        if "fail_at" in spec
        else None
    )
    t = Threshold(metric, kind, value, weight, ideal, fail_at)
    # the ideal passes, and a critical value fails the bound too (never "critical but passed")
    if ideal is not None and not t.passes(ideal):
        raise _fail(source, f"{where}.ideal 不满足阈值", f"{where}.ideal must pass the bound")
    if fail_at is not None and t.passes(fail_at):
        raise _fail(
            source, f"{where}.fail_at 必须超出阈值", f"{where}.fail_at must lie beyond the bound"
        )
    return t


def scenario_from_dict(name: str, data: Any, *, source: str = "") -> Scenario:
    """Validate one scenario object; ``source`` names it in errors (the file)."""
    source = source or name
    _check_fields(source, "scenario", data, TOP_FIELDS, REQUIRED)
    scoring = data["scoring"]
    if scoring not in SCORINGS:
        raise _fail(
            source,
            f"未知评分方式 {scoring!r}",
            f"unknown scoring {scoring!r} ({', '.join(SCORINGS)})",
        )
    _check_fields(source, "plan", data["plan"], {"entry", "target"}, {"entry", "target"})
    zones = data.get("zones", {})
    _check_fields(source, "zones", zones, {"target", "protected"}, set())
    thresholds = []
    metrics = data["metrics"]
    if not isinstance(metrics, dict) or not metrics:
        raise _fail(source, "metrics 不能为空", "metrics must be a non-empty object")
    for metric, bound in metrics.items():
        if metric not in METRICS[scoring]:
            raise _fail(
                source,
                f"评分方式 {scoring} 没有指标 {metric}",
                f"unknown metric {metric!r} for scoring {scoring} "
                f"(known: {', '.join(METRICS[scoring])})",
            )
        thresholds.append(_threshold(source, metric, bound))
    tissues = data.get("requires_tissues", [])
    if not isinstance(tissues, list) or any(t not in TISSUES for t in tissues):
        raise _fail(
            source,
            "requires_tissues 只能包含已知组织",
            f"requires_tissues must list known tissues ({', '.join(TISSUES)})",
        )
    if scoring == "pedicle" and "screw_diameter_mm" not in data:
        raise _fail(
            source, "椎弓根场景需要 screw_diameter_mm", "pedicle scoring needs screw_diameter_mm"
        )
    if scoring == "burr_target" and "target" not in zones:
        raise _fail(source, "磨除场景需要 zones.target", "burr_target scoring needs zones.target")
    seed = data.get("seed", 1)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 < seed < 2**32:
        raise _fail(source, "seed 必须是 1..2³²-1 的整数", "seed must be an integer in 1..2**32-1")
    rehearsal_only = data.get("rehearsal_only", False)
    if not isinstance(rehearsal_only, bool):
        raise _fail(source, "rehearsal_only 须为 true 或 false", "rehearsal_only must be a boolean")
    return Scenario(
        name=name,
        title=str(data["title"]),
        scoring=scoring,
        instrument=str(data["instrument"]),
        entry=_point(source, "plan.entry", data["plan"]["entry"]),
        target=_point(source, "plan.target", data["plan"]["target"]),
        force_limit_n=_float(source, "force_limit_n", data["force_limit_n"]),
        time_limit_s=_float(source, "time_limit_s", data["time_limit_s"]),
        thresholds=tuple(thresholds),
        target_zone=_sphere(source, "zones.target", zones["target"]) if "target" in zones else None,
        protected_zone=(
            _sphere(source, "zones.protected", zones["protected"]) if "protected" in zones else None
        ),
        requires_tissues=tuple(tissues),
        screw_diameter_mm=_float(source, "screw_diameter_mm", data.get("screw_diameter_mm", 1.0)),
        seed=seed,
        rehearsal_only=rehearsal_only,
    )


def load_scenario(name_or_path: str | Path, *, directory: Path = SCENARIO_DIR) -> Scenario:
    """A scenario by name (``assets/scenarios/<name>.json``) or by file path."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = directory / f"{name_or_path}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.json")))
        raise ScenarioError(f"{path}: 没有这个场景 / no such scenario (known: {known or 'none'})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ScenarioError(f"{path}: 不是有效的 JSON / not valid JSON ({exc})") from exc
    return scenario_from_dict(path.stem, data, source=str(path))


def list_scenarios(directory: Path = SCENARIO_DIR, *, rehearsal: bool = False) -> list[str]:
    """The scenarios a session may run on a case; with ``rehearsal``, also those only a
    rehearsal of a plan runs (``Scenario.rehearsal_only``)."""
    names = sorted(p.stem for p in directory.glob("*.json"))
    if rehearsal:
        return names
    return [n for n in names if not load_scenario(n, directory=directory).rehearsal_only]


def resolve_plan(
    scenario: Scenario,
    landmarks_lps_mm: dict[str, Any],
    case_from_patient_mm: Callable[[Vector], Vector],
    *,
    case_name: str = "case",
) -> Plan:
    """The scenario's plan on a case with these landmarks (patient LPS mm → case frame)."""

    def landmark(name: str) -> Vector:
        if name not in landmarks_lps_mm:
            raise ScenarioError(
                f"{case_name}: 病例缺少场景 {scenario.name} 需要的标志点 {name} / the case has no "
                f"landmark {name!r}, which scenario {scenario.name} needs "
                f"(it has: {', '.join(sorted(landmarks_lps_mm)) or 'none'})"
            )
        return np.asarray(landmarks_lps_mm[name], dtype=np.float64)

    def point(spec: PointSpec) -> tuple[float, float, float]:
        p = landmark(spec.landmark) + np.asarray(spec.offset_lps_mm)
        if spec.toward:
            u = landmark(spec.toward) - p
            p = p + spec.distance_mm * u / np.linalg.norm(u)
        c = case_from_patient_mm(p)
        return float(c[0]), float(c[1]), float(c[2])

    def sphere(spec: SphereSpec | None) -> Sphere | None:
        return None if spec is None else Sphere(point(spec.centre), spec.radius_mm)

    names = {scenario.entry.landmark, scenario.target.landmark}
    origin = case_from_patient_mm(np.zeros(3))
    columns = [case_from_patient_mm(np.eye(3)[a]) - origin for a in range(3)]
    rotation = np.column_stack(columns)
    return Plan(
        case_from_lps=tuple((float(r[0]), float(r[1]), float(r[2])) for r in rotation),
        entry_mm=point(scenario.entry),
        target_mm=point(scenario.target),
        target_zone=sphere(scenario.target_zone),
        protected_zone=sphere(scenario.protected_zone),
        landmarks_mm={n: point(PointSpec(n)) for n in sorted(names)},
    )


def other_level(scenario: Scenario, levels: dict[str, str]) -> Scenario:
    """The scenario with its landmarks moved to another level (``{"L4": "L3"}``): the same
    task at the wrong vertebra, to play a wrong-level attempt against the right plan."""

    def move(spec: PointSpec) -> PointSpec:
        def name(n: str) -> str:
            head, sep, tail = n.partition("_")
            return f"{levels.get(head, head)}{sep}{tail}" if n else n

        return replace(spec, landmark=name(spec.landmark), toward=name(spec.toward))

    def sphere(spec: SphereSpec | None) -> SphereSpec | None:
        return None if spec is None else replace(spec, centre=move(spec.centre))

    return replace(
        scenario,
        entry=move(scenario.entry),
        target=move(scenario.target),
        target_zone=sphere(scenario.target_zone),
        protected_zone=sphere(scenario.protected_zone),
    )


def on_trajectory(
    scenario: Scenario,
    plan: Plan,
    entry_mm: tuple[float, float, float],
    target_mm: tuple[float, float, float],
    *,
    screw_diameter_mm: float | None = None,
    blade_normal: tuple[float, float, float] | None = None,
) -> tuple[Scenario, Plan]:
    """The scenario and its plan moved onto a given trajectory (a surgeon's planned element,
    case frame mm): the same task, metrics and thresholds, scored against ``entry_mm`` →
    ``target_mm`` instead of the case's own landmarks; ``screw_diameter_mm`` (pedicle scoring)
    grades the breach for the planned implant. Zones stay where the case's landmarks put them.
    Raises ``ScenarioError`` for points that are not finite or a path shorter than 1 mm."""
    points = np.asarray([entry_mm, target_mm], dtype=np.float64)
    if points.shape != (2, 3) or not np.all(np.isfinite(points)):
        raise ScenarioError(
            f"{scenario.name}: 轨迹坐标无效 / the trajectory's points are not 3 finite numbers"
        )
    if float(np.linalg.norm(points[1] - points[0])) < 1.0:
        raise ScenarioError(f"{scenario.name}: 轨迹过短 / the trajectory is shorter than 1 mm")
    if screw_diameter_mm is not None:
        if not (math.isfinite(screw_diameter_mm) and screw_diameter_mm > 0):
            raise ScenarioError(
                f"{scenario.name}: 螺钉直径无效 / the screw diameter must be a positive number"
            )
        scenario = replace(scenario, screw_diameter_mm=float(screw_diameter_mm))
    entry = (float(points[0, 0]), float(points[0, 1]), float(points[0, 2]))
    target = (float(points[1, 0]), float(points[1, 1]), float(points[1, 2]))
    normal = None
    if scenario.scoring == "plane_cut":
        normal = plane_normal(points[1] - points[0], blade_normal, name=scenario.name)
    return scenario, replace(plan, entry_mm=entry, target_mm=target, blade_normal=normal)


def plane_normal(
    axis: Vector, given: tuple[float, float, float] | None, *, name: str = "plan"
) -> tuple[float, float, float]:
    """The unit normal of a cut's plane that holds ``axis`` (the cut's direction): ``given``
    made normal to the axis; ``ScenarioError`` when it is missing, not finite or along it."""
    n = np.asarray(given if given is not None else (np.nan,) * 3, dtype=np.float64)
    if n.shape != (3,) or not np.all(np.isfinite(n)):
        raise ScenarioError(f"{name}: 截骨平面须给出有效法向 / the cut plane needs a finite normal")
    d = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    # a normal within about 6° of the cut's direction describes no plane a surgeon means
    if float(np.linalg.norm(n - float(n @ d) * d)) < 0.1 * float(np.linalg.norm(n)):
        raise ScenarioError(
            f"{name}: 截骨平面的法向几乎与截骨方向重合 / the plane's normal lies (almost) along "
            "the cut's direction"
        )
    n = n - float(n @ d) * d
    n = n / np.linalg.norm(n)
    return (float(n[0]), float(n[1]), float(n[2]))
