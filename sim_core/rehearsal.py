"""A scenario rehearsed on a surgeon's planned trajectory: the model a station runs, and the
same model rebuilt for the replay that verifies its recording.

A rehearsal is the scenario of its element's kind (a pedicle pilot hole for a pedicle screw or
a drill hole) with the plan's entry and target in place of the case's landmarks
(``sim_core.scenarios.on_trajectory``) and the breach graded for the planned implant's
diameter. The model's digest covers the trajectory, so a recording replays only on the very
trajectory it was made on: the replay has to be told it (``model_for_rehearsal_recording``).

A case built from a real CT has no nerve or vessel of its own: the segmentation finds bone, not
nerves. The protected tubes the surgeon confirmed on the case (``sim_core.case.annotations``)
become nerve and vessel voxels of the model (``with_protected_tubes``), so touching them counts
as a nerve contact exactly as on a phantom; the surgeon's confirmed landmarks stand in for the
case's own where a scenario measures to one (the guide wire's femoral head apex). Both are part
of the model and so of its digest: the replay is told them too.
"""

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sim_core.case.annotations import Tube, tube_voxels
from sim_core.case.bundle import BundleError, load_bundle
from sim_core.instruments import Instrument, load_instrument
from sim_core.model import (
    TISSUE_NAMES,
    CaseModel,
    DeviceLimits,
    check_case_has,
    check_zone_in_bone,
    model_from_grids,
)
from sim_core.replay import Recording, RecordingError
from sim_core.scenarios import (
    PLAN_POINTS,
    Plan,
    Scenario,
    ScenarioError,
    load_scenario,
    on_trajectory,
    resolve_plan,
)
from sim_core.state import make_state, state_hash

Point = tuple[float, float, float]


def _case_plan(scenario: Scenario, bundle: Any, name: str, confirmed: Mapping[str, Point]) -> Plan:
    # the scenario's own plan where the case has its landmarks (its own, or ones the surgeon
    # confirmed); otherwise the patient axes and the landmarks the scoring still reads, which is
    # enough for a scenario with no zones, whose plan is all the trajectory
    marks: dict[str, Any] = {m["name"]: m["lps_mm"] for m in bundle.meta.get("landmarks", [])}
    patient_from_case = np.asarray(bundle.meta["patient_from_case"], dtype=np.float64)
    for mark, point in confirmed.items():
        marks[mark] = (patient_from_case @ np.append(np.asarray(point, dtype=np.float64), 1.0))[:3]
    try:
        return resolve_plan(scenario, marks, bundle.case_from_patient_mm, case_name=name)
    except ScenarioError:
        if scenario.target_zone is not None or scenario.protected_zone is not None:
            raise
    missing = sorted(landmarks_needed(scenario) - set(marks))
    if missing:
        raise ScenarioError(
            f"{name}: 病例缺少演练所需的标志点 {', '.join(missing)} / the case lacks the "
            f"landmarks {', '.join(missing)}, which a rehearsal of {scenario.name} measures to"
        )
    origin = bundle.case_from_patient_mm(np.zeros(3))
    columns = [bundle.case_from_patient_mm(np.eye(3)[a]) - origin for a in range(3)]
    rotation = np.column_stack(columns)
    return Plan(
        entry_mm=(0.0, 0.0, 0.0),
        target_mm=(0.0, 0.0, 1.0),
        case_from_lps=tuple((float(r[0]), float(r[1]), float(r[2])) for r in rotation),
        landmarks_mm={n: _case_point(bundle, marks[n]) for n in sorted(landmarks_needed(scenario))},
    )


def _case_point(bundle: Any, lps_mm: Any) -> Point:
    c = bundle.case_from_patient_mm(lps_mm)
    return float(c[0]), float(c[1]), float(c[2])


def landmarks_needed(scenario: Scenario | str) -> set[str]:
    """The case landmarks a rehearsal of ``scenario`` reads: its zones' centres, and the
    landmark its scoring measures to (the guide wire's tip-apex distance is to the femoral
    head's apex, whatever trajectory was planned). The entry and target are the plan's, not
    the case's."""
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    specs = [z.centre for z in (scenario.target_zone, scenario.protected_zone) if z is not None]
    names = {n for spec in specs for n in (spec.landmark, spec.toward) if n}
    if scenario.scoring == "guide_wire":
        names.add(scenario.target.landmark)
    return names - set(PLAN_POINTS)


# the tissue labels a tube may take over: soft tissue and air (0), a low-density space enclosed
# by bone (the segmentation's canal: a spinal canal is one, where the dural sac lies), and what
# already is nerve or vessel; bone stays bone, so a tube drawn a little wide does not hollow the
# pedicle
_PAINTABLE = (0, TISSUE_NAMES["canal"], TISSUE_NAMES["nerve"], TISSUE_NAMES["vessel"])


def with_protected_tubes(
    tissue: npt.NDArray[np.uint8], tubes: tuple[Tube, ...], spacing_mm: float
) -> npt.NDArray[np.uint8]:
    """``tissue`` with the voxels inside ``tubes`` that are not bone labelled nerve or vessel
    (a copy; the input unchanged). A vessel tube crossing a nerve tube leaves the crossing a
    nerve: contact with either is a critical error, and a nerve is the one to name."""
    if not tubes:
        return tissue
    out = np.array(tissue, dtype=np.uint8, copy=True)
    paintable = np.isin(out, _PAINTABLE)
    voxels = tube_voxels(tubes, out.shape, spacing_mm)
    for kind in ("vessel", "nerve"):
        ijk = voxels[kind]
        if ijk.size == 0:
            continue
        idx = (ijk[:, 0], ijk[:, 1], ijk[:, 2])
        out[idx] = np.where(paintable[idx], np.uint8(TISSUE_NAMES[kind]), out[idx])
    return out


def rehearsal_model(
    bundle: Any,
    scenario: Scenario | str,
    *,
    entry_mm: Point,
    target_mm: Point,
    diameter_mm: float,
    tubes: tuple[Tube, ...] = (),
    landmarks: Mapping[str, Point] | None = None,
    normal: Point | None = None,
    instrument: Instrument | str | None = None,
    device: DeviceLimits | None = None,
) -> CaseModel:
    """The model of ``scenario`` on a ``CaseBundle`` with its plan on entry → target (case
    frame, mm) and a screw of ``diameter_mm``, the surgeon's confirmed ``tubes`` as nerve and
    vessel and their confirmed ``landmarks`` (case frame, mm) beside the case's own; a cut's
    plane by its ``normal`` (plane_cut scoring: an osteotomy). Raises
    ``ScenarioError`` (a trajectory that is not finite, leaves the volume or is too short; a
    case without a tissue or a landmark the scenario needs)."""
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    if isinstance(instrument, str):
        instrument = load_instrument(instrument)
    name = str(getattr(bundle, "path", "case"))
    tissue = with_protected_tubes(bundle.tissue, tubes, bundle.spacing_mm)
    check_case_has(scenario, tissue, name)
    if scenario.rehearsal_only and scenario.target_zone is not None:
        # a planned region (a burr region): the zone is the element's, its diameter given
        scenario = replace(
            scenario, target_zone=replace(scenario.target_zone, radius_mm=0.5 * diameter_mm)
        )
    # a rehearsal scenario's points (PLAN_POINTS) are the planned entry and target
    given = {**(landmarks or {}), PLAN_POINTS[0]: entry_mm, PLAN_POINTS[1]: target_mm}
    scenario, plan = on_trajectory(
        scenario,
        _case_plan(scenario, bundle, name, given),
        entry_mm,
        target_mm,
        screw_diameter_mm=diameter_mm if scenario.scoring == "pedicle" else None,
        blade_normal=normal,
    )
    # the volume spans voxel centres 0 .. n-1, half a voxel either side
    extent = (np.asarray(bundle.tissue.shape, dtype=np.float64) - 0.5) * bundle.spacing_mm
    for point in (entry_mm, target_mm):
        p = np.asarray(point, dtype=np.float64)
        if np.any(p < -0.5 * bundle.spacing_mm) or np.any(p > extent):
            raise ScenarioError(
                f"{name}: 轨迹在影像范围之外 / the trajectory leaves the case volume"
            )
    model = model_from_grids(
        density_g_cm3=bundle.density_g_cm3,
        tissue=tissue,
        spacing_mm=bundle.spacing_mm,
        scenario=scenario,
        instrument=instrument or load_instrument(scenario.instrument),
        plan=plan,
        device=device,
        case_name=name,
        case_hash=bundle.content_hash,
    )
    check_zone_in_bone(model)
    return model


def model_for_rehearsal_recording(
    rec: Recording,
    *,
    case_path: Path,
    entry_mm: Point,
    target_mm: Point,
    diameter_mm: float,
    tubes: tuple[Tube, ...] = (),
    landmarks: Mapping[str, Point] | None = None,
    normal: Point | None = None,
) -> CaseModel:
    """``sim_core.replay.model_for_recording`` for a rehearsal's recording: the model rebuilt
    on the trajectory, tubes and landmarks the shell sent; ``RecordingError`` when the case,
    the trajectory or anything else in the model differs from the recording's (its model
    digest)."""
    try:
        bundle = load_bundle(case_path)
    except BundleError as exc:
        raise RecordingError(
            f"{case_path}: 无法读取记录所用病例 / cannot load the recorded case ({exc})"
        ) from exc
    if bundle.content_hash != rec.meta["case"]["content_hash"]:
        raise RecordingError(
            f"{case_path}: 病例与记录时不同 / this case differs from the one recorded"
        )
    device = rec.meta["device"]
    try:
        model = rehearsal_model(
            bundle,
            rec.meta["scenario"],
            entry_mm=entry_mm,
            target_mm=target_mm,
            diameter_mm=diameter_mm,
            tubes=tubes,
            landmarks=landmarks,
            normal=normal,
            instrument=rec.meta["instrument"],
            device=DeviceLimits(
                device["max_force_n"],
                device["max_stiffness_n_per_mm"],
                device.get("max_torque_n_mm", 0.0),
            ),
        )
    except ScenarioError as exc:
        raise RecordingError(f"{case_path}: {exc}") from exc
    if model.digest != rec.meta["model_digest"]:
        raise RecordingError(
            f"{case_path}: 规划轨迹、场景、器械或引擎参数与记录时不同 / the planned trajectory, "
            "scenario, instrument or engine parameters differ from the recording "
            "(model digest mismatch)"
        )
    if state_hash(make_state(model)) != rec.meta["initial_state_hash"]:
        raise RecordingError(f"{case_path}: 初始状态不同 / initial state hash mismatch")
    return model
