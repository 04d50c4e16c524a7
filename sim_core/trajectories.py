"""Scripted device trajectories: waypoints → 1 kHz TickInput rows, trajectory files, and the
"expert" and "novice" scripts of each scenario.

Trajectory files (what ``--device scripted:FILE`` reads) are the scripted device's format,
documented and parsed in ``haptics.scripted``, written and read as rows by
``osteon.trajectory_files`` (sim_core does not import haptics). For ``osteon sim run`` their
coordinates are the *case frame* (mm).
Rows are ``sim_core.slots.TICK_FIELDS`` (the haptics pose row). The tool axis points from the
handle to the tip; the quaternion turns the tool frame (axis along −z, blade normal along +x)
into the case frame.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sim_core.model import CaseModel
from sim_core.rotation import quaternion_from_matrix
from sim_core.scenarios import Scenario, other_level
from sim_core.slots import (
    BUTTON_POWER,
    DT_S,
    I_AXIS,
    I_BUTTONS,
    I_POS,
    I_QUAT,
    I_SPEED,
    I_T,
    I_VEL,
    N_TICK,
)

Rows = npt.NDArray[np.float64]
Vec = Sequence[float] | npt.NDArray[np.float64]


@dataclass(frozen=True)
class Waypoint:
    """The device at time ``t_s``: tip position, axis (handle → tip), power and speed."""

    t_s: float
    pos_mm: Vec
    axis: Vec
    power: bool = False
    speed: float = 1.0


def _unit(v: Vec) -> npt.NDArray[np.float64]:
    a = np.asarray(v, dtype=np.float64)
    return np.asarray(a / np.linalg.norm(a), dtype=np.float64)


def quat_from_axis_normal(axis: Vec, normal: Vec | None = None) -> npt.NDArray[np.float64]:
    """Unit quaternion (w, x, y, z) turning tool −z onto ``axis`` and tool +x onto ``normal``."""
    z = -_unit(axis)
    if normal is None:
        e = np.zeros(3)
        e[int(np.argmin(np.abs(z)))] = 1.0
        normal = np.cross(z, e)
    x = np.asarray(normal, dtype=np.float64) - np.dot(normal, z) * z
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return quaternion_from_matrix(np.column_stack([x, y, z]))


def rows_from_waypoints(waypoints: Sequence[Waypoint], *, normal: Vec | None = None) -> Rows:
    """1 kHz input rows moving linearly between waypoints (axis interpolated, renormalised).

    Power and speed hold from one waypoint until the next. ``normal`` fixes the blade normal.
    """
    if len(waypoints) < 2:
        raise ValueError("a trajectory needs at least two waypoints")
    times = np.array([w.t_s for w in waypoints])
    if np.any(np.diff(times) <= 0):
        raise ValueError("waypoint times must increase")
    n = round((times[-1] - times[0]) / DT_S) + 1
    t = times[0] + np.arange(n) * DT_S
    pos = np.column_stack(
        [np.interp(t, times, [float(w.pos_mm[a]) for w in waypoints]) for a in range(3)]
    )
    axes = np.column_stack(
        [np.interp(t, times, [float(_unit(w.axis)[a]) for w in waypoints]) for a in range(3)]
    )
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    seg = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(waypoints) - 1)
    rows = np.zeros((n, N_TICK), dtype=np.float64)
    rows[:, I_T] = t
    rows[:, I_POS : I_POS + 3] = pos
    rows[:, I_AXIS : I_AXIS + 3] = axes
    # the axis is constant over most of a script: one quaternion per distinct axis
    distinct, which = np.unique(axes, axis=0, return_inverse=True)
    quats = np.array([quat_from_axis_normal(a, normal) for a in distinct])
    rows[:, I_QUAT : I_QUAT + 4] = quats[which.reshape(-1)]
    rows[1:, I_VEL : I_VEL + 3] = np.diff(pos, axis=0) / DT_S
    rows[:, I_BUTTONS] = [BUTTON_POWER if waypoints[i].power else 0 for i in seg]
    rows[:, I_SPEED] = [waypoints[i].speed if waypoints[i].power else 0.0 for i in seg]
    return rows


# --- scripted surgeons -------------------------------------------------------------------------
# Each script is built on the model's plan (case frame), so it runs on any case with the plan.
# The expert goes where the plan says at a pace the bone allows; the novice makes the classic
# mistakes of each procedure (wrong angle, pushing ahead of the cut, overshooting, retrying).


def _rotate(v: npt.NDArray[np.float64], about: npt.NDArray[np.float64], deg: float) -> Rows:
    # Rodrigues: v turned by `deg` about the unit axis `about`
    k = about / np.linalg.norm(about)
    a = np.radians(deg)
    out = v * np.cos(a) + np.cross(k, v) * np.sin(a) + k * np.dot(k, v) * (1 - np.cos(a))
    return np.asarray(out, dtype=np.float64)


def _side_axis(plan_axis: npt.NDArray[np.float64], toward: npt.NDArray[np.float64]) -> Rows:
    # the rotation axis that tilts plan_axis toward `toward`
    k = np.cross(plan_axis, toward)
    return np.asarray(k / np.linalg.norm(k), dtype=np.float64)


def _medial(model: CaseModel) -> npt.NDArray[np.float64]:
    # towards the midline: pedicle axes converge medially, so the plan's own left-right
    # component says which way that is
    plan = model.plan
    left = plan.case_direction((1.0, 0.0, 0.0))
    return np.asarray(np.sign(np.dot(plan.axis, left)) * left, dtype=np.float64)


def _bone_depth_mm(model: CaseModel, entry: Rows, axis: Rows, max_mm: float) -> float:
    # how far along `axis` from `entry` the first bone voxel of the case lies (0 if none): a
    # planned entry may sit on the bone or out in the soft tissue lateral to it
    s = model.spacing_mm
    depths = np.arange(-5.0, max_mm, 0.25)
    idx = np.rint((entry[None, :] + depths[:, None] * axis[None, :]) / s).astype(np.int64)
    inside = np.all((idx >= 0) & (idx < np.asarray(model.shape)), axis=1)
    hits = np.zeros(len(depths), dtype=bool)
    hits[inside] = model.density0[tuple(idx[inside].T)] > 0
    return float(depths[np.argmax(hits)]) if hits.any() else 0.0


def _drill_script(
    model: CaseModel,
    entry: Rows,
    axis: Rows,
    depth_mm: float,
    speed_mm_s: float,
    *,
    start_s: float = 0.0,
) -> list[Waypoint]:
    # approach in the air to 2 mm off the bone, drill to depth at a steady pace, dwell,
    # pull back out along the same line
    surface = min(_bone_depth_mm(model, entry, axis, depth_mm), depth_mm)
    back = entry + (surface - 12.0) * axis
    t = start_s
    points = [Waypoint(t, back, axis, False)]
    t += 1.0
    points.append(Waypoint(t, entry + (surface - 2.0) * axis, axis, True))
    t += (depth_mm - surface + 2.0) / speed_mm_s
    points.append(Waypoint(t, entry + depth_mm * axis, axis, True))
    t += 2.0
    points.append(Waypoint(t, entry + depth_mm * axis, axis, True))
    t += 2.0
    points.append(Waypoint(t, back, axis, False))
    return points


def _pedicle(model: CaseModel, skill: str) -> Rows:
    plan = model.plan
    entry = np.asarray(plan.entry_mm)
    axis = plan.axis
    if skill == "expert":
        return rows_from_waypoints(_drill_script(model, entry, axis, plan.length_mm, 3.0))
    # novice: starts 3 mm medial and aims 14° too far medially, pushing fast
    medial = _medial(model)
    medial = medial - np.dot(medial, axis) * axis
    medial /= np.linalg.norm(medial)
    wrong = _rotate(axis, _side_axis(axis, medial), 14.0)
    start = entry + 3.0 * medial
    return rows_from_waypoints(_drill_script(model, start, wrong, plan.length_mm, 8.0))


def _burr_layers(
    centre: Rows,
    axis: Rows,
    reach_mm: float,
    depth_extra_mm: float,
    speed_mm_s: float,
    step_mm: float,
) -> list[tuple[Rows, float]]:
    # (point, seconds to get there): circles in slices across the target, near side first
    u = np.cross(axis, [1.0, 0.0, 0.0])
    if np.linalg.norm(u) < 0.1:
        u = np.cross(axis, [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    path: list[tuple[Rows, float]] = []
    last = centre - reach_mm * axis
    for a in np.arange(-reach_mm, reach_mm + depth_extra_mm + 1e-9, step_mm):
        r_slice = np.sqrt(max(reach_mm**2 - min(a, reach_mm) ** 2, 0.0))
        for ring in np.arange(0.0, r_slice + 1e-9, step_mm):
            for ang in np.linspace(0.0, 2 * np.pi, max(int(ring * 5), 1) + 1):
                p = centre + a * axis + ring * (np.cos(ang) * u + np.sin(ang) * v)
                path.append((p, float(np.linalg.norm(p - last)) / speed_mm_s + 0.02))
                last = p
    return path


def _burr(model: CaseModel, skill: str) -> Rows:
    plan = model.plan
    zone = plan.target_zone
    if zone is None:
        raise ValueError(f"scenario {model.scenario.name} has no target zone")
    axis = plan.axis
    centre = np.asarray(zone.centre_mm)
    burr_r = model.instrument.radius_mm
    entry = np.asarray(plan.entry_mm)
    if skill == "expert":
        # the burr's edge takes the lesion's wall with a 0.2 mm margin; slow, even strokes
        reach, extra, speed, step = zone.radius_mm - burr_r + 0.2, 0.0, 3.0, 0.8
    else:
        # overshoots the lesion's wall by 2 mm all round and 3 mm deep, in a hurry
        reach, extra, speed, step = zone.radius_mm - burr_r + 2.0, 3.0, 12.0, 1.5
    t = 0.0
    points = [Waypoint(t, entry - 5.0 * axis, axis, False)]
    t += 1.0
    points.append(Waypoint(t, entry, axis, True))
    start = centre - reach * axis
    t += float(np.linalg.norm(start - entry)) / (2.0 if skill == "expert" else 6.0)
    points.append(Waypoint(t, start, axis, True))
    for p, dt in _burr_layers(centre, axis, reach, extra, speed, step):
        t += dt
        # the novice leans on the burr: the hand runs 2 mm ahead of the path into the bone
        points.append(Waypoint(t, p + (2.0 * axis if skill == "novice" else 0.0), axis, True))
    t += 1.0
    points.append(Waypoint(t, centre, axis, True))
    t += 2.0
    points.append(Waypoint(t, entry - 5.0 * axis, axis, False))
    return rows_from_waypoints(points)


def _guide_wire(model: CaseModel, skill: str) -> Rows:
    plan = model.plan
    entry = np.asarray(plan.entry_mm)
    axis = plan.axis
    if skill == "expert":
        return rows_from_waypoints(_drill_script(model, entry, axis, plan.length_mm, 4.0))
    # novice: two false starts tilted on the lateral cortex, then a fast pass that overshoots
    # the apex
    surface = _bone_depth_mm(model, entry, axis, plan.length_mm)
    pivot = entry + surface * axis
    up = plan.case_direction((0.0, 0.0, 1.0))
    up = up - np.dot(up, axis) * axis
    up /= np.linalg.norm(up)
    side = np.cross(axis, up)
    points: list[Waypoint] = []
    t = 0.0
    for tilt, about in ((9.0, side), (-8.0, up)):
        wrong = _rotate(axis, about, tilt)
        start = pivot - surface * wrong
        points += _drill_script(model, start, wrong, surface + 20.0, 5.0, start_s=t)
        t = points[-1].t_s + 0.5
    points += _drill_script(model, entry, axis, plan.length_mm + 10.0, 9.0, start_s=t)
    return rows_from_waypoints(points)


def _plane_cut(model: CaseModel, skill: str) -> Rows:
    # the blade flat in the planned plane, advanced along it to the target; the novice tilts
    # the blade 10° out of the plane and pushes 6 mm past the target, fast
    plan = model.plan
    assert plan.blade_normal is not None
    entry, axis = np.asarray(plan.entry_mm), plan.axis
    normal = np.asarray(plan.blade_normal)
    if skill == "expert":
        points = _drill_script(model, entry, axis, plan.length_mm, 2.0)
        return rows_from_waypoints(points, normal=normal)
    tilted = _rotate(normal, axis, 10.0)
    points = _drill_script(model, entry, axis, plan.length_mm + 6.0, 6.0)
    return rows_from_waypoints(points, normal=tilted)


def scripted_rows(model: CaseModel, skill: str) -> Rows:
    """The scripted "expert" or "novice" rows of the model's scenario, on its plan."""
    scripts = {
        "pedicle": _pedicle,
        "burr_target": _burr,
        "guide_wire": _guide_wire,
        "plane_cut": _plane_cut,
    }
    if skill not in ("expert", "novice"):
        raise ValueError(f"skill must be expert or novice, got {skill!r}")
    return scripts[model.scenario.scoring](model, skill)


# --- bad techniques --------------------------------------------------------------------------
# Deliberately bad ways to do each scenario, each isolating one error a reviewer would try; the
# score must fail every one of them (tests/sim_core/test_bad_techniques.py, benchmarks/validity).


def _drill_rows(
    model: CaseModel,
    entry: Rows,
    axis: Rows,
    depth_mm: float,
    speed_mm_s: float = 3.0,
    *,
    power: bool = True,
) -> list[Waypoint]:
    points = _drill_script(model, entry, axis, depth_mm, speed_mm_s)
    if not power:
        points = [Waypoint(w.t_s, w.pos_mm, w.axis, False, w.speed) for w in points]
    return points


def _across(model: CaseModel) -> tuple[Rows, Rows]:
    # two unit directions across the plan: towards the patient's head, and the other one
    plan = model.plan
    axis = plan.axis
    up = plan.case_direction((0.0, 0.0, 1.0))
    up = up - np.dot(up, axis) * axis
    up /= np.linalg.norm(up)
    return up, np.asarray(np.cross(axis, up), dtype=np.float64)


def _lever(model: CaseModel, degrees: float) -> Rows:
    # on the plan to full depth, then pivot the tool about its tip, ± degrees, power on
    plan = model.plan
    entry, axis = np.asarray(plan.entry_mm), plan.axis
    up, _ = _across(model)
    points = _drill_script(model, entry, axis, plan.length_mm, 3.0)
    tip = entry + plan.length_mm * axis
    withdraw = points.pop()
    t = points[-1].t_s
    for deg in (degrees, -degrees, 0.0):
        t += 1.5
        tilted = _rotate(axis, np.cross(axis, up), deg)
        points.append(Waypoint(t, tip, tilted, True))
    points.append(Waypoint(t + 2.0, withdraw.pos_mm, axis, False))
    return rows_from_waypoints(points)


def _bad_drill(model: CaseModel, name: str) -> Rows:
    plan = model.plan
    entry, axis, length = np.asarray(plan.entry_mm), plan.axis, plan.length_mm
    up, side = _across(model)
    if name == "wrong_angle":
        wrong = _rotate(axis, side, 10.0)
        return rows_from_waypoints(_drill_rows(model, entry, wrong, length))
    if name == "wrong_entry":
        return rows_from_waypoints(_drill_rows(model, entry + 5.0 * up, axis, length))
    if name == "levering":
        return _lever(model, 15.0)
    if name == "plunge":
        # 20 mm past the target at 10 mm/s (through the far cortex)
        return rows_from_waypoints(_drill_rows(model, entry, axis, length + 20.0, 10.0))
    if name == "power_off_push":
        return rows_from_waypoints(_drill_rows(model, entry, axis, length, power=False))
    if name == "redrill":
        wrong = _rotate(axis, side, 12.0)
        first = _drill_rows(model, entry, wrong, length)
        second = _drill_script(model, entry, axis, length, 3.0, start_s=first[-1].t_s + 0.5)
        return rows_from_waypoints(first + second)
    raise ValueError(f"unknown bad technique {name!r}")


def _bad_burr(model: CaseModel, name: str) -> Rows:
    plan = model.plan
    zone = plan.target_zone
    if zone is None:
        raise ValueError(f"scenario {model.scenario.name} has no target zone")
    axis, entry = plan.axis, np.asarray(plan.entry_mm)
    centre = np.asarray(zone.centre_mm)
    burr_r = model.instrument.radius_mm
    up, _ = _across(model)
    reach = zone.radius_mm - burr_r + 0.2

    def sweep(c: Rows, r: float, extra: float, power: bool = True) -> Rows:
        t = 1.0
        points = [Waypoint(0.0, entry - 5.0 * axis, axis, False), Waypoint(t, entry, axis, power)]
        start = c - r * axis
        t += float(np.linalg.norm(start - entry)) / 2.0
        points.append(Waypoint(t, start, axis, power))
        for p, dt in _burr_layers(c, axis, r, extra, 3.0, 0.8):
            t += dt
            points.append(Waypoint(t, p, axis, power))
        points.append(Waypoint(t + 2.0, entry - 5.0 * axis, axis, False))
        return rows_from_waypoints(points)

    if name == "overreach":
        return sweep(centre, reach + 2.5, 0.0)
    if name == "plunge":
        # through the lesion's floor into the posterior wall (the protected zone)
        return sweep(centre, reach, zone.radius_mm + 4.0)
    if name == "power_off_push":
        return sweep(centre, reach, 0.0, power=False)
    if name == "wrong_entry":
        return sweep(centre + 5.0 * up, reach, 0.0)
    raise ValueError(f"unknown bad technique {name!r}")


BAD_TECHNIQUES: dict[str, tuple[str, ...]] = {
    "pedicle": (
        "wrong_angle",
        "wrong_entry",
        "levering",
        "plunge",
        "power_off_push",
        "redrill",
        "wrong_level",
    ),
    "guide_wire": ("wrong_angle", "wrong_entry", "levering", "plunge", "power_off_push", "redrill"),
    "burr_target": ("overreach", "plunge", "power_off_push", "wrong_entry", "wrong_level"),
}


def bad_techniques(scenario: Scenario) -> tuple[str, ...]:
    """The catalog's bad techniques that exist for ``scenario``: a wrong level only where the
    scenario is written on a vertebral level (a knee has no level to mistake)."""
    names = BAD_TECHNIQUES[scenario.scoring]
    if other_level(scenario, WRONG_LEVEL) == scenario:
        names = tuple(n for n in names if n != "wrong_level")
    return names


# the level a wrong-level attempt goes to instead (benchmarks/validity, the tests)
WRONG_LEVEL = {"L4": "L3"}


def bad_technique_rows(
    model: CaseModel, name: str, *, other_level: CaseModel | None = None
) -> Rows:
    """Rows of one bad technique (``BAD_TECHNIQUES[scoring]``) on the model's plan.

    ``wrong_level`` does the expert's script on ``other_level``: a model of the same case whose
    scenario names the next level's landmarks (``sim_core.scenarios.other_level``); its rows
    are then played on the model of the right level.
    """
    if name not in BAD_TECHNIQUES[model.scenario.scoring]:
        raise ValueError(f"{name!r} is not a bad technique of {model.scenario.scoring}")
    if name == "wrong_level":
        if other_level is None:
            raise ValueError("wrong_level needs the plan of the other level (other_level)")
        return scripted_rows(other_level, "expert")
    if model.scenario.scoring == "burr_target":
        return _bad_burr(model, name)
    return _bad_drill(model, name)
