"""The simulated hand: a device driven closed loop by a motor-control model whose score rises
with its skill, whose errors come from the model rather than the plan, and whose sessions
replay bit for bit like a person's."""

import sys
from pathlib import Path

import numpy as np
import pytest

from haptics.device import HapticDevice
from haptics.simulated_hand import HandParams, SimulatedHand, hand_session, run_hand
from sim_core.case.bundle import load_bundle
from sim_core.model import CaseModel, model_from_bundle
from sim_core.replay import play
from sim_core.scoring import ScoreSheet, score
from sim_core.state import state_hash

# the engine tests' phantom builder (and its once-per-process cache) lives beside them
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim_core"))
from synthetic_cases import phantom_case

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def pedicle(tmp_path_factory: pytest.TempPathFactory) -> CaseModel:
    root = tmp_path_factory.getbasetemp() / "phantoms"
    root.mkdir(exist_ok=True)
    return model_from_bundle(load_bundle(phantom_case("lumbar", root)), "pedicle_pilot_hole")


@pytest.fixture(scope="module")
def sheets(pedicle: CaseModel) -> dict[tuple[float, int], ScoreSheet]:
    out = {}
    for skill in (0.0, 1.0):
        for seed in SEEDS:
            state, _, _ = hand_session(pedicle, skill, seed)
            out[skill, seed] = score(pedicle, state)
    return out


def test_skill_lowers_every_error_parameter() -> None:
    low, high = HandParams.from_skill(0.0), HandParams.from_skill(1.0)
    for name in ("aim_sigma_mm", "angle_sigma_deg", "tremor_mm", "feed_mm_s", "reaction_s"):
        assert getattr(high, name) < getattr(low, name), name
    assert high.correction_gain > low.correction_gain


def test_the_score_rises_with_the_hands_skill(sheets: dict[tuple[float, int], ScoreSheet]) -> None:
    novice = [sheets[0.0, s].score for s in SEEDS]
    expert = [sheets[1.0, s].score for s in SEEDS]
    assert min(expert) > max(novice), (novice, expert)
    assert np.mean(expert) - np.mean(novice) >= 30.0
    assert sum(sheets[1.0, s].passed for s in SEEDS) >= 2
    assert not any(sheets[0.0, s].passed for s in SEEDS)


def test_even_the_expert_hand_is_not_the_plan(sheets: dict[tuple[float, int], ScoreSheet]) -> None:
    # the scripted expert scores 0.0 mm and 0.0°; the hand's errors come from its own model
    angles = [sheets[1.0, s].value("angle_deg") for s in SEEDS]
    tips = [sheets[1.0, s].value("tip_offset_mm") for s in SEEDS]
    assert all(a > 0.05 for a in angles) and len(set(np.round(angles, 3))) == len(SEEDS)
    assert all(t > 0.05 for t in tips)


def test_the_hand_feels_the_engines_force_through_the_device_interface(
    pedicle: CaseModel,
) -> None:
    hand = SimulatedHand(pedicle, HandParams.from_skill(0.5), seed=3, max_s=12.0)
    assert isinstance(hand, HapticDevice)
    felt: list[float] = []
    decide = hand.decide

    def spy(tool: np.ndarray, force: np.ndarray) -> bool:
        felt.append(float(np.linalg.norm(hand.channel.latest_force())))
        return decide(tool, force)

    hand.decide = spy  # type: ignore[method-assign]
    state, rows = run_hand(pedicle, hand)
    assert max(felt) > 0.5  # it pushed on bone and felt it through its channel
    assert hand.read().t_s == pytest.approx(rows[-1, 0])  # its last pose was published
    # the session replays bit for bit from its rows, as a recording would
    replayed, _ = play(pedicle, rows)
    assert state_hash(replayed) == state_hash(state)
