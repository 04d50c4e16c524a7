"""A scenario rehearsed on a surgeon's planned trajectory: the model a station runs, and the
same model rebuilt for the replay that verifies its recording.

A rehearsal is the scenario of its element's kind (a pedicle pilot hole for a pedicle screw or
a drill hole) with the plan's entry and target in place of the case's landmarks
(``sim_core.scenarios.on_trajectory``) and the breach graded for the planned implant's
diameter. The model's digest covers the trajectory, so a recording replays only on the very
trajectory it was made on: the replay has to be told it (``model_for_rehearsal_recording``).
"""

from pathlib import Path
from typing import Any

import numpy as np

from sim_core.case.bundle import BundleError, load_bundle
from sim_core.instruments import Instrument, load_instrument
from sim_core.model import (
    CaseModel,
    DeviceLimits,
    check_case_has,
    check_zone_in_bone,
    model_from_grids,
)
from sim_core.replay import Recording, RecordingError
from sim_core.scenarios import (
    Plan,
    Scenario,
    ScenarioError,
    load_scenario,
    on_trajectory,
    resolve_plan,
)
from sim_core.state import make_state, state_hash

Point = tuple[float, float, float]


def _case_plan(scenario: Scenario, bundle: Any, name: str) -> Plan:
    # the scenario's own plan where the case has its landmarks; a case without them (a real
    # CT planned in the shell) still gives the patient axes, enough for a scenario with no
    # zones, whose plan is all the trajectory
    marks = {m["name"]: m["lps_mm"] for m in bundle.meta.get("landmarks", [])}
    try:
        return resolve_plan(scenario, marks, bundle.case_from_patient_mm, case_name=name)
    except ScenarioError:
        if scenario.target_zone is not None or scenario.protected_zone is not None:
            raise
    origin = bundle.case_from_patient_mm(np.zeros(3))
    columns = [bundle.case_from_patient_mm(np.eye(3)[a]) - origin for a in range(3)]
    rotation = np.column_stack(columns)
    return Plan(
        entry_mm=(0.0, 0.0, 0.0),
        target_mm=(0.0, 0.0, 1.0),
        case_from_lps=tuple((float(r[0]), float(r[1]), float(r[2])) for r in rotation),
    )


def landmarks_needed(scenario: Scenario | str) -> set[str]:
    """The case landmarks a rehearsal of ``scenario`` reads (its plan's points and zones,
    ``resolve_plan``): the guide wire's tip-apex distance, for one, is measured to the case's
    femoral head, whatever trajectory was planned."""
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    specs = [scenario.entry, scenario.target]
    specs += [z.centre for z in (scenario.target_zone, scenario.protected_zone) if z is not None]
    return {n for spec in specs for n in (spec.landmark, spec.toward) if n}


def rehearsal_model(
    bundle: Any,
    scenario: Scenario | str,
    *,
    entry_mm: Point,
    target_mm: Point,
    diameter_mm: float,
    instrument: Instrument | str | None = None,
    device: DeviceLimits | None = None,
) -> CaseModel:
    """The model of ``scenario`` on a ``CaseBundle`` with its plan on entry → target (case
    frame, mm) and a screw of ``diameter_mm``. Raises ``ScenarioError`` (a trajectory that is
    not finite, leaves the volume or is too short; a case without a tissue the scenario
    needs)."""
    if isinstance(scenario, str):
        scenario = load_scenario(scenario)
    if isinstance(instrument, str):
        instrument = load_instrument(instrument)
    name = str(getattr(bundle, "path", "case"))
    check_case_has(scenario, bundle.tissue, name)
    scenario, plan = on_trajectory(
        scenario,
        _case_plan(scenario, bundle, name),
        entry_mm,
        target_mm,
        screw_diameter_mm=diameter_mm if scenario.scoring == "pedicle" else None,
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
        tissue=bundle.tissue,
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
) -> CaseModel:
    """``sim_core.replay.model_for_recording`` for a rehearsal's recording: the model rebuilt
    on the trajectory the shell sent; ``RecordingError`` when the case, the trajectory or
    anything else in the model differs from the recording's (its model digest)."""
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
