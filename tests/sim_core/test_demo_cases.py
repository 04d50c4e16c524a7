"""Every scenario has a demo case (lumbar, hip, knee) and runs on it: from Python, from the
command line, and as a case the shell offers when a session is started.

The cases are the tests' own: each region's phantom at the demo field of view, coarser
(160² matrix, 80 slices, 1 mm voxels) so all three build in a few seconds.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from osteon_cli import CliRunner

from osteon.demo import DEMO_REGIONS, SCENARIO_REGION, demo_case_for
from sim_core.case.bundle import load_bundle
from sim_core.model import model_from_bundle
from sim_core.replay import play
from sim_core.scenarios import list_scenarios
from sim_core.slots import S_CONTACT_TICKS
from sim_core.trajectories import scripted_rows

ROOT = Path(__file__).resolve().parents[2]
MATRIX = 160
SHORT_TICKS = 12_000  # 12 s of a scripted session: every expert script is in bone by then


@pytest.fixture(scope="module")
def demo_cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``demo-<region>`` case bundles, as ``make run`` names them, under one folder."""
    from sim_core.case.build import build_case
    from sim_core.ct.anatomy import anatomy
    from sim_core.ct.phantom import make_phantom, write_phantom

    root = tmp_path_factory.mktemp("demo-cases")
    for region in DEMO_REGIONS:
        pixel_mm = anatomy(region).pixel_mm * 512 / MATRIX  # the demo's field of view
        phantom = make_phantom(region, seed=1, slices=80, matrix=MATRIX, pixel_mm=pixel_mm)
        write_phantom(phantom, root / f"ct-{region}")
        build_case(root / f"ct-{region}", root / f"demo-{region}", spacing_mm=1.0)
    return root


def test_every_scenario_has_a_demo_case_that_make_run_builds() -> None:
    assert set(SCENARIO_REGION) == set(list_scenarios())
    assert set(SCENARIO_REGION.values()) == set(DEMO_REGIONS)
    makefile = (ROOT / "Makefile").read_text()
    regions = re.search(r"^DEMO_REGIONS := (.+)$", makefile, re.MULTILINE)
    assert regions is not None and tuple(regions.group(1).split()) == DEMO_REGIONS
    assert re.search(r"^run: .*\$\(DEMO_CASES\)", makefile, re.MULTILINE)
    assert demo_case_for("femoral_neck_guide_wire").name == "demo-hip"
    assert demo_case_for("knee_lesion_burr").name == "demo-knee"


@pytest.mark.parametrize("scenario", sorted(SCENARIO_REGION))
def test_each_scenario_runs_a_short_scripted_session_on_its_demo_case(
    scenario: str, demo_cases: Path
) -> None:
    case = demo_case_for(scenario, demo_cases)
    model = model_from_bundle(load_bundle(case), scenario)
    rows = scripted_rows(model, "expert")[:SHORT_TICKS]
    state, result = play(model, rows)
    assert result.ticks == len(rows)
    # the instrument reached the bone the scenario is about, and cut or pushed into it
    assert state.st[S_CONTACT_TICKS] > 0
    assert result.sheet.value("removed_mm3") > 0.0
    assert np.all(np.isfinite([m.value for m in result.sheet.metrics]))


def test_the_knee_lesion_scenario_passes_with_the_expert_and_spares_the_physeal_side(
    demo_cases: Path, osteon_cli: CliRunner
) -> None:
    case = demo_case_for("knee_lesion_burr", demo_cases)
    done = osteon_cli(
        "sim", "run", str(case), "--scenario", "knee_lesion_burr", "--device", "scripted:expert",
        "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr
    out = json.loads(done.stdout)
    metrics = out["metrics"]
    assert out["passed"] is True
    assert metrics["target_removed_pct"]["value"] >= 70.0
    assert metrics["protected_contacts"]["value"] == 0.0
    novice = osteon_cli(
        "sim", "run", str(case), "--scenario", "knee_lesion_burr", "--device", "scripted:novice",
        "--json",
    )  # fmt: skip
    assert novice.exit_code == 0, novice.stderr
    worse = json.loads(novice.stdout)["metrics"]
    assert worse["removed_outside_mm3"]["value"] > metrics["removed_outside_mm3"]["value"]


@pytest.mark.django_db
def test_the_shell_offers_every_demo_case_for_a_session(
    demo_cases: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clinical_shell.stations import selectors

    monkeypatch.setattr(selectors, "ASSET_CASE_DIR", demo_cases)
    offered = dict(selectors.known_cases())
    assert {f"demo-{r}" for r in DEMO_REGIONS} <= set(offered)
    for scenario in SCENARIO_REGION:
        case = demo_case_for(scenario, demo_cases)
        # what a session started from the shell resolves its case hash to
        assert selectors.case_path_for_hash(offered[case.name]) == case
