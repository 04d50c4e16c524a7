"""Every metric a scenario scores has a Chinese and English label for the screen."""

import json
from pathlib import Path

from sim_core.metric_labels import METRIC_LABELS, metric_label

SCENARIOS = Path(__file__).resolve().parents[2] / "assets" / "scenarios"


def test_every_scenario_metric_has_a_bilingual_label() -> None:
    files = sorted(SCENARIOS.glob("*.json"))
    assert files
    for path in files:
        for name in json.loads(path.read_text(encoding="utf-8"))["metrics"]:
            label = METRIC_LABELS.get(name)
            assert label is not None, f"{path.name}: metric {name} has no label"
            chinese, _, english = label.partition(" / ")
            assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese), label
            assert english.strip(), label


def test_an_unknown_metric_shows_its_key() -> None:
    assert metric_label("not_a_metric") == "not_a_metric"
