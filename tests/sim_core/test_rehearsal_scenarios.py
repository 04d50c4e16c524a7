"""The scenarios only a plan's rehearsal runs (K-wire, burr region, osteotomy), on the lumbar CT
phantom: they are written on the plan's own points, judged against what was planned, and a
badly cut plane fails. The saw's scoring isolates one error at a time: the same path with the
blade tilted out of the plane, the same plane pushed past its target."""

from typing import Any

import numpy as np
import pytest
from synthetic_cases import phantom_case

from sim_core.case.bundle import CaseBundle, load_bundle
from sim_core.model import model_from_bundle
from sim_core.rehearsal import rehearsal_model
from sim_core.scenarios import ScenarioError, list_scenarios
from sim_core.scoring import ScoreSheet, score
from sim_core.state import make_state
from sim_core.step import input_rows, run
from sim_core.trajectories import _drill_script, _rotate, rows_from_waypoints, scripted_rows

REHEARSAL_ONLY = {"k_wire_on_plan", "burr_region_on_plan", "osteotomy_on_plan"}


@pytest.fixture(scope="module")
def lumbar(tmp_path_factory: pytest.TempPathFactory) -> CaseBundle:
    return load_bundle(phantom_case("lumbar", tmp_path_factory.mktemp("rehearsal-scenarios")))


def _case_point(bundle: CaseBundle, name: str, lps_offset: tuple[float, float, float]) -> Any:
    [lps] = [m["lps_mm"] for m in bundle.meta["landmarks"] if m["name"] == name]
    return tuple(float(x) for x in bundle.case_from_patient_mm(np.add(lps, lps_offset)))


def _cut_plan(bundle: CaseBundle) -> dict[str, Any]:
    # an axial cut into the L4 body from in front, the blade flat in the plane normal to S
    entry = _case_point(bundle, "L4_body_centre", (0.0, -21.0, 0.0))
    target = _case_point(bundle, "L4_body_centre", (0.0, -2.0, 0.0))
    up = np.subtract(_case_point(bundle, "L4_body_centre", (0.0, 0.0, 1.0)), target)
    return {"entry_mm": entry, "target_mm": target, "normal": tuple(float(x) for x in up)}


def _played(model: Any, rows: Any) -> ScoreSheet:
    state = make_state(model)
    run(model, state, input_rows(rows))
    return score(model, state)


def _values(sheet: ScoreSheet) -> dict[str, float]:
    return {m.name: m.value for m in sheet.metrics}


def test_rehearsal_scenarios_are_listed_and_run_only_for_a_rehearsal(lumbar: CaseBundle) -> None:
    assert set(list_scenarios(rehearsal=True)) >= REHEARSAL_ONLY
    assert not REHEARSAL_ONLY & set(list_scenarios())
    for name in REHEARSAL_ONLY:
        with pytest.raises(ScenarioError, match="only rehearses"):
            model_from_bundle(lumbar, name)


def test_a_saw_cut_in_the_planned_plane_passes_and_one_tilted_out_of_it_fails(
    lumbar: CaseBundle,
) -> None:
    plan = _cut_plan(lumbar)
    model = rehearsal_model(lumbar, "osteotomy_on_plan", diameter_mm=0.6, **plan)
    assert model.plan.blade_normal is not None
    expert = _values(_played(model, scripted_rows(model, "expert")))
    assert expert["cut_completeness_pct"] >= 95.0
    assert expert["cut_angle_deg"] < 1.0 and expert["cut_offset_mm"] < 0.5
    assert expert["removed_off_plane_mm3"] < 5.0
    assert _played(model, scripted_rows(model, "expert")).passed
    # the same path, the blade turned 10° about it: only the plane differs
    axis, entry = model.plan.axis, np.asarray(model.plan.entry_mm)
    tilted = _rotate(np.asarray(model.plan.blade_normal), axis, 10.0)
    path = _drill_script(model, entry, axis, model.plan.length_mm, 2.0)
    sheet = _played(model, rows_from_waypoints(path, normal=tilted))
    values = _values(sheet)
    assert 8.0 < values["cut_angle_deg"] < 12.0, values["cut_angle_deg"]
    assert values["cut_completeness_pct"] < 50.0
    assert not sheet.passed
    # the same plane pushed 6 mm past its target: the depth error says so
    deep = _drill_script(model, entry, axis, model.plan.length_mm + 6.0, 2.0)
    values = _values(_played(model, rows_from_waypoints(deep, normal=model.plan.blade_normal)))
    assert values["cut_angle_deg"] < 1.0 and values["depth_error_mm"] > 5.0


def test_a_plane_whose_normal_lies_along_its_cut_is_refused(lumbar: CaseBundle) -> None:
    plan = _cut_plan(lumbar)
    along = tuple(np.subtract(plan["target_mm"], plan["entry_mm"]) + 0.01)
    with pytest.raises(ScenarioError, match="along"):
        rehearsal_model(lumbar, "osteotomy_on_plan", diameter_mm=0.6, **{**plan, "normal": along})
    with pytest.raises(ScenarioError, match="normal"):
        rehearsal_model(lumbar, "osteotomy_on_plan", diameter_mm=0.6, **{**plan, "normal": None})


def test_the_planes_normal_is_part_of_the_model(lumbar: CaseBundle) -> None:
    plan = _cut_plan(lumbar)
    one = rehearsal_model(lumbar, "osteotomy_on_plan", diameter_mm=0.6, **plan)
    # turned about the cut's direction (the plane's left-right tilt): another plane
    across = np.cross(np.subtract(plan["target_mm"], plan["entry_mm"]), plan["normal"])
    other_normal = tuple(np.add(plan["normal"], 0.3 * across / np.linalg.norm(across)))
    other = rehearsal_model(
        lumbar, "osteotomy_on_plan", diameter_mm=0.6, **{**plan, "normal": other_normal}
    )
    assert one.digest != other.digest


def test_a_k_wire_is_judged_by_its_tip_to_its_own_target_not_a_tip_apex_distance(
    lumbar: CaseBundle,
) -> None:
    entry = _case_point(lumbar, "L4_pedicle_entry_left", (0.0, 0.0, 0.0))
    target = _case_point(lumbar, "L4_pedicle_target_left", (0.0, 0.0, 0.0))
    model = rehearsal_model(
        lumbar, "k_wire_on_plan", entry_mm=entry, target_mm=target, diameter_mm=2.0
    )
    expert = _played(model, scripted_rows(model, "expert"))
    values = _values(expert)
    assert "tip_apex_mm" not in values and values["tip_offset_mm"] < 0.5 and expert.passed
    novice = _played(model, scripted_rows(model, "novice"))
    assert _values(novice)["tip_offset_mm"] > 5.0 and not novice.passed


def test_a_burr_regions_zone_is_the_planned_sphere(lumbar: CaseBundle) -> None:
    entry = _case_point(lumbar, "L4_body_centre", (0.0, -21.0, 0.0))
    target = _case_point(lumbar, "L4_body_centre", (0.0, -12.0, 0.0))
    small = rehearsal_model(
        lumbar, "burr_region_on_plan", entry_mm=entry, target_mm=target, diameter_mm=6.0
    )
    large = rehearsal_model(
        lumbar, "burr_region_on_plan", entry_mm=entry, target_mm=target, diameter_mm=10.0
    )
    assert small.plan.target_zone is not None and large.plan.target_zone is not None
    assert small.plan.target_zone.radius_mm == 3.0 and large.plan.target_zone.radius_mm == 5.0
    assert np.allclose(small.plan.target_zone.centre_mm, target)
    assert _played(large, scripted_rows(large, "expert")).passed
