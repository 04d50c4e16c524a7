"""The score is clinically weighted, critical errors fail an attempt whatever the rest, and the
trajectory is read from the whole session, not the last insertion."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from synthetic_cases import block_model

from sim_core.bench_cases import block_plan
from sim_core.model import model_from_grids
from sim_core.scenarios import ScenarioError, Threshold, load_scenario, scenario_from_dict
from sim_core.scoring import CRITICAL_CAP, FAIL_CAP, MetricResult, ScoreSheet, score
from sim_core.slots import (
    S_DEEPEST_DIR,
    S_DEEPEST_TIP,
    S_DEPTH_MAX_MM,
    S_INS_DEEPEST_DIR,
    S_INS_DEEPEST_TIP,
    S_INSERTIONS,
)
from sim_core.state import make_state

SCENARIOS = Path(__file__).resolve().parents[2] / "assets" / "scenarios"


def _sheet(thresholds: list[Threshold], values: dict[str, float]) -> ScoreSheet:
    total = sum(t.weight for t in thresholds)
    return ScoreSheet(
        "s",
        tuple(
            MetricResult(
                t.metric,
                values[t.metric],
                t.bound,
                t.value,
                t.passes(values[t.metric]),
                100.0 * t.weight / total,
                t.credit(values[t.metric]),
                t.critical(values[t.metric]),
            )
            for t in thresholds
        ),
        {},
    )


def test_credit_is_full_at_the_ideal_half_at_the_bound_and_none_far_beyond() -> None:
    t = Threshold("tip_offset_mm", "max", 4.0, weight=10, ideal=0.0)
    assert t.credit(0.0) == 1.0
    assert t.credit(4.0) == pytest.approx(0.5)
    assert t.credit(8.0) == 0.0
    assert t.credit(2.0) > t.credit(3.0) > t.credit(5.0)
    m = Threshold("target_removed_pct", "min", 70.0, weight=10, ideal=95.0)
    assert m.credit(95.0) == 1.0 and m.credit(70.0) == pytest.approx(0.5)
    assert m.credit(45.0) == 0.0


def test_the_score_weighs_metrics_not_counts_them() -> None:
    heavy = Threshold("removed_outside_mm3", "max", 250.0, weight=40)
    light = Threshold("time_s", "max", 180.0, weight=5, ideal=60.0)
    others = [Threshold(f"m{i}", "max", 1.0, weight=10) for i in range(4)]
    ts = [heavy, light, *others]
    base = {t.metric: 0.0 for t in others}
    slow = _sheet(ts, {**base, "removed_outside_mm3": 0.0, "time_s": 400.0})
    outside = _sheet(ts, {**base, "removed_outside_mm3": 600.0, "time_s": 60.0})
    # one failed metric each, so a share-of-metrics score would rate them the same
    assert sum(not m.passed for m in slow.graded) == sum(not m.passed for m in outside.graded)
    assert outside.raw_score < slow.raw_score - 25.0


def test_a_critical_error_fails_the_attempt_even_with_everything_else_perfect() -> None:
    ts = [
        Threshold("gr_grade_index", "max", 1.0, weight=25, fail_at=2.0),
        Threshold("nerve_contacts", "max", 0.0, weight=1, fail_at=1.0),
        Threshold("angle_deg", "max", 5.0, weight=10),
    ]
    clean = _sheet(ts, {"gr_grade_index": 0.0, "nerve_contacts": 0.0, "angle_deg": 0.0})
    touched = _sheet(ts, {"gr_grade_index": 0.0, "nerve_contacts": 1.0, "angle_deg": 0.0})
    assert clean.passed and clean.score == 100.0
    assert touched.raw_score > 95.0  # the nerve carries 1 point of 36 ...
    assert not touched.passed  # ... and still fails the attempt
    assert touched.critical_errors == ("nerve_contacts",)
    assert touched.score <= CRITICAL_CAP
    assert touched.as_dict()["critical_errors"] == ["nerve_contacts"]


def test_a_failed_bound_caps_the_score_below_a_pass() -> None:
    ts = [Threshold("a", "max", 1.0, weight=90), Threshold("b", "max", 1.0, weight=10)]
    sheet = _sheet(ts, {"a": 0.0, "b": 1.5})
    assert sheet.raw_score > 80.0 and not sheet.passed and sheet.score == FAIL_CAP


def test_every_scenario_weights_its_metrics_and_names_critical_errors() -> None:
    for path in sorted(SCENARIOS.glob("*.json")):
        scenario = load_scenario(path)
        weights = {t.metric: t.weight for t in scenario.thresholds}
        assert sum(weights.values()) > 0, path.name
        critical = {t.metric for t in scenario.thresholds if t.fail_at is not None}
        assert "nerve_contacts" in critical, path.name
        if scenario.scoring == "plane_cut":
            # a saw's hole is its cut: done, and in the planned plane
            assert {"cut_completeness_pct", "cut_angle_deg", "plunge_mm"} <= critical, path.name
            assert "peak_force_n" in weights and "levering_s" in weights, path.name
        elif scenario.scoring != "burr_target":
            assert {"hole_completeness_pct", "plunge_mm"} <= critical, path.name
            assert "peak_force_n" in weights and "levering_s" in weights, path.name
        if scenario.scoring == "pedicle":
            t = next(t for t in scenario.thresholds if t.metric == "gr_grade_index")
            assert t.critical(2.0) and not t.critical(1.0)  # grade C or worse


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"max": 4.0, "fail_at": 3.0}, "fail_at"),
        ({"min": 70.0, "weight": 5}, "ideal"),
        ({"max": 4.0, "ideal": 5.0}, "ideal"),
        ({"max": 4.0, "weight": -1}, "weight"),
        ({"max": 4.0, "bogus": 1}, "bogus"),
    ],
)
def test_inconsistent_metric_specs_are_refused(spec: dict[str, float], message: str) -> None:
    data = json.loads((SCENARIOS / "pedicle_pilot_hole.json").read_text(encoding="utf-8"))
    data["metrics"] = {"tip_offset_mm": spec}
    with pytest.raises(ScenarioError, match=message):
        scenario_from_dict("x", data)


def test_the_trajectory_is_the_deepest_point_of_the_session_not_of_the_last_insertion() -> None:
    # a deep first insertion on the plan, then a shallow second one 20 mm off: the state's
    # session slots keep the first, the per-insertion slots hold the second
    model = block_model("drill_3.2mm")
    plan = block_plan()
    assert model.plan.entry_mm == plan.entry_mm
    state = make_state(model)
    st = state.st
    target = np.asarray(plan.target_mm)
    st[S_INSERTIONS] = 2.0
    st[S_DEPTH_MAX_MM] = model.plan.length_mm
    st[S_DEEPEST_TIP : S_DEEPEST_TIP + 3] = target
    st[S_DEEPEST_DIR : S_DEEPEST_DIR + 3] = model.plan.axis
    st[S_INS_DEEPEST_TIP : S_INS_DEEPEST_TIP + 3] = np.add(plan.entry_mm, (20.0, 0.0, -3.0))
    st[S_INS_DEEPEST_DIR : S_INS_DEEPEST_DIR + 3] = model.plan.axis
    sheet = score(model, state)
    assert sheet.value("redirections") == 1.0
    # the block scenario scores as a burr: read the trajectory through a pedicle scoring
    pedicle = model_from_grids(
        density_g_cm3=model.density0,
        tissue=model.tissue(),
        spacing_mm=model.spacing_mm,
        scenario=replace(model.scenario, scoring="pedicle"),
        instrument=model.instrument,
        plan=model.plan,
    )
    sheet = score(pedicle, state)
    assert sheet.value("tip_offset_mm") == pytest.approx(0.0, abs=1e-9)
    assert sheet.value("angle_deg") == pytest.approx(0.0, abs=1e-6)
