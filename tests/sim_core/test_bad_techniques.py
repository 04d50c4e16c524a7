"""A reviewer's catalog of bad techniques, played through the scripted device on the lumbar
phantom: every one must fail its scenario, the critical ones whatever the rest."""

import pytest
from synthetic_cases import phantom_case

from sim_core.case.bundle import CaseBundle, load_bundle
from sim_core.model import model_from_bundle
from sim_core.replay import play
from sim_core.scenarios import load_scenario, other_level
from sim_core.scoring import CRITICAL_CAP, FAIL_CAP, ScoreSheet
from sim_core.trajectories import BAD_TECHNIQUES, bad_technique_rows, scripted_rows

PEDICLE = "pedicle_pilot_hole"
BURR = "burr_lesion"
# the burr overreach is covered by the scripted novice (below): its raster takes minutes
CASES = [(PEDICLE, b) for b in BAD_TECHNIQUES["pedicle"]] + [
    (BURR, b) for b in BAD_TECHNIQUES["burr_target"] if b != "overreach"
]


@pytest.fixture(scope="module")
def lumbar(tmp_path_factory: pytest.TempPathFactory) -> CaseBundle:
    root = tmp_path_factory.getbasetemp() / "phantoms"
    root.mkdir(exist_ok=True)
    return load_bundle(phantom_case("lumbar", root))


_played: dict[tuple[str, str], ScoreSheet] = {}  # each technique is played once per run


def _play_bad(bundle: CaseBundle, scenario: str, technique: str) -> ScoreSheet:
    if (scenario, technique) not in _played:
        _played[scenario, technique] = _play(bundle, scenario, technique)
    return _played[scenario, technique]


def _play(bundle: CaseBundle, scenario: str, technique: str) -> ScoreSheet:
    model = model_from_bundle(bundle, scenario)
    other = (
        model_from_bundle(bundle, other_level(load_scenario(scenario), {"L4": "L3"}))
        if technique == "wrong_level"
        else None
    )
    _, result = play(model, bad_technique_rows(model, technique, other_level=other))
    return result.sheet


@pytest.mark.parametrize(("scenario", "technique"), CASES)
def test_every_bad_technique_fails(lumbar: CaseBundle, scenario: str, technique: str) -> None:
    sheet = _play_bad(lumbar, scenario, technique)
    assert not sheet.passed, sheet.as_dict()
    assert sheet.score <= FAIL_CAP


def test_a_power_off_push_along_the_plan_makes_no_hole_and_fails_critically(
    lumbar: CaseBundle,
) -> None:
    sheet = _play_bad(lumbar, PEDICLE, "power_off_push")
    assert sheet.value("hole_completeness_pct") < 10.0
    assert "hole_completeness_pct" in sheet.critical_errors
    assert sheet.score <= CRITICAL_CAP


def test_a_plunge_past_the_target_is_measured_and_critical(lumbar: CaseBundle) -> None:
    # 20 mm past the target at 10 mm/s: the far cortex lies a few mm past the target
    sheet = _play_bad(lumbar, PEDICLE, "plunge")
    assert sheet.value("plunge_mm") > 3.0
    assert "plunge_mm" in sheet.critical_errors


def test_a_wrong_level_fails_critically_even_though_the_hole_is_perfect(
    lumbar: CaseBundle,
) -> None:
    sheet = _play_bad(lumbar, PEDICLE, "wrong_level")
    assert sheet.value("hole_completeness_pct") >= 90.0  # a clean hole, one vertebra up
    assert "tip_offset_mm" in sheet.critical_errors
    assert sheet.score <= CRITICAL_CAP


def test_a_redrilled_tract_is_counted_off_the_track(lumbar: CaseBundle) -> None:
    sheet = _play_bad(lumbar, PEDICLE, "redrill")
    assert sheet.value("angle_deg") < 1.0  # the final tract is on the plan ...
    assert not sheet.metric("removed_off_track_mm3").passed  # ... but the first one is there


def test_a_burr_session_cutting_over_500_mm3_outside_the_target_fails(
    lumbar: CaseBundle,
) -> None:
    # the burr session (the scripted novice: ~570 mm³ outside) got 67 of 100
    model = model_from_bundle(lumbar, BURR)
    _, result = play(model, scripted_rows(model, "novice"))
    sheet = result.sheet
    assert sheet.value("removed_outside_mm3") > 500.0
    assert "removed_outside_mm3" in sheet.critical_errors
    assert sheet.score <= CRITICAL_CAP
    assert not sheet.passed


def test_a_wrong_level_is_a_bad_technique_only_where_a_scenario_is_on_a_vertebra() -> None:
    from sim_core.trajectories import bad_techniques

    assert "wrong_level" in bad_techniques(load_scenario(PEDICLE))
    assert "wrong_level" in bad_techniques(load_scenario(BURR))
    # a knee has no level: "the wrong level" there was the expert's own cut, and passed
    knee = bad_techniques(load_scenario("knee_lesion_burr"))
    assert "wrong_level" not in knee and "overreach" in knee
    assert "wrong_level" not in bad_techniques(load_scenario("femoral_neck_guide_wire"))
