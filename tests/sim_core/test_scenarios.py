"""Scenarios on real phantom cases: an expert and a novice script score clearly apart, and
scenario / instrument files and cases that cannot work are refused with a clear error."""

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic_cases import phantom_case

from sim_core.case.bundle import load_bundle
from sim_core.instruments import InstrumentError, list_instruments, load_instrument
from sim_core.model import check_case_has, model_from_bundle
from sim_core.replay import play
from sim_core.scenarios import ScenarioError, list_scenarios, load_scenario
from sim_core.scoring import ScoreSheet, gr_grade
from sim_core.trajectories import scripted_rows

SCENARIO_REGION = {
    "pedicle_pilot_hole": "lumbar",
    "burr_lesion": "lumbar",
    "femoral_neck_guide_wire": "hip",
    "knee_lesion_burr": "knee",
}


@pytest.fixture(scope="module")
def sheets(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], ScoreSheet]:
    root = tmp_path_factory.getbasetemp() / "phantoms"
    root.mkdir(exist_ok=True)
    out = {}
    for name, region in SCENARIO_REGION.items():
        model = model_from_bundle(load_bundle(phantom_case(region, root)), name)
        for skill in ("expert", "novice"):
            _, result = play(model, scripted_rows(model, skill))
            out[name, skill] = result.sheet
    return out


def test_every_scenario_file_loads_and_has_a_phantom_here() -> None:
    assert sorted(list_scenarios()) == sorted(SCENARIO_REGION)


@pytest.mark.parametrize("name", sorted(SCENARIO_REGION))
def test_the_expert_passes_and_the_novice_fails_by_a_wide_margin(
    sheets: dict[tuple[str, str], ScoreSheet], name: str
) -> None:
    expert, novice = sheets[name, "expert"], sheets[name, "novice"]
    assert expert.passed, expert.as_dict()
    assert not novice.passed, novice.as_dict()
    assert expert.score - novice.score >= 25.0
    assert sum(not m.passed for m in novice.graded) >= 2  # more than one way to fail


def test_pedicle_scores_measure_the_misplaced_hole(
    sheets: dict[tuple[str, str], ScoreSheet],
) -> None:
    expert = sheets["pedicle_pilot_hole", "expert"]
    novice = sheets["pedicle_pilot_hole", "novice"]
    assert expert.extras["gr_grade"] == "A"
    assert novice.extras["gr_grade"] in "CDE"  # a medial breach of 2 mm or more
    assert novice.value("angle_deg") == pytest.approx(14.0, abs=0.5)
    assert novice.value("tip_offset_mm") > 3 * expert.value("tip_offset_mm") + 4.0
    assert novice.value("nerve_contacts") >= 1 and expert.value("nerve_contacts") == 0


def test_burr_scores_measure_overreach_and_the_protected_zone(
    sheets: dict[tuple[str, str], ScoreSheet],
) -> None:
    expert = sheets["burr_lesion", "expert"]
    novice = sheets["burr_lesion", "novice"]
    assert expert.value("target_removed_pct") >= 70.0
    assert novice.value("removed_outside_mm3") > 10 * expert.value("removed_outside_mm3")
    assert novice.value("protected_contacts") >= 1 and expert.value("protected_contacts") == 0
    assert novice.value("protected_contact_s") > 0.0
    assert novice.value("peak_force_n") > expert.value("peak_force_n")


def test_guide_wire_scores_measure_depth_plunge_and_redirections(
    sheets: dict[tuple[str, str], ScoreSheet],
) -> None:
    expert = sheets["femoral_neck_guide_wire", "expert"]
    novice = sheets["femoral_neck_guide_wire", "novice"]
    assert expert.value("depth_error_mm") < 1.0 and novice.value("depth_error_mm") > 5.0
    assert expert.value("redirections") == 0 and novice.value("redirections") == 2
    # the plunge past the far cortex itself is measured in test_physics_proxy.py; with the hand
    # spring saturating at a Touch-class device's force, the scripted novice's fast pass stalls
    # in the head before the far cortex, so here only the expert's none is asserted
    assert expert.value("plunge_mm") == 0.0
    assert expert.value("tip_apex_mm") <= 10.0


def test_gertzbein_robbins_grades_follow_the_breach_in_mm() -> None:
    assert [gr_grade(b) for b in (0.0, 0.5, 2.0, 3.9, 4.0, 5.99, 6.0, 12.0)] == list("ABCCDDEE")


def test_every_instrument_file_loads_into_a_tool_row() -> None:
    names = list_instruments()
    assert len(names) >= 10
    for name in names:
        row = load_instrument(name).tool_row(0.5)
        assert np.all(np.isfinite(row))


def test_an_unknown_instrument_field_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "odd_burr.json"
    path.write_text(
        json.dumps(
            {
                "kind": "spherical_burr",
                "label": "x",
                "diameter_mm": 4.0,
                "erosion_g_cm3_per_s": 5.0,
                "sharpness": 3,
            }
        )
    )
    with pytest.raises(InstrumentError, match=r"unknown field.*sharpness"):
        load_instrument(path)
    with pytest.raises(InstrumentError, match="no such instrument"):
        load_instrument("laser_scalpel")


def test_an_unknown_scenario_field_or_metric_is_refused_by_name(tmp_path: Path) -> None:
    from sim_core.scenarios import SCENARIO_DIR

    data = json.loads((SCENARIO_DIR / "pedicle_pilot_hole.json").read_text())
    data["difficulty"] = "hard"
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ScenarioError, match=r"unknown field.*difficulty"):
        load_scenario(path)
    del data["difficulty"]
    data["metrics"]["style_points"] = {"min": 3}
    path.write_text(json.dumps(data))
    with pytest.raises(ScenarioError, match="unknown metric 'style_points'"):
        load_scenario(path)


def test_a_case_without_the_zones_or_landmarks_a_scenario_needs_is_refused(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.getbasetemp() / "phantoms"
    root.mkdir(exist_ok=True)
    hip = load_bundle(phantom_case("hip", root))
    with pytest.raises(ScenarioError, match="no landmark 'L4_pedicle_entry_left'"):
        model_from_bundle(hip, "pedicle_pilot_hole")
    no_nerve = np.where(hip.tissue == 4, 0, hip.tissue).astype(np.uint8)
    with pytest.raises(ScenarioError, match="no nerve zone"):
        check_case_has(load_scenario("pedicle_pilot_hole"), no_nerve, "hip")
