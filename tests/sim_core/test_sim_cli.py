"""``osteon sim run`` and ``osteon sim replay`` through the real command line."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from synthetic_cases import phantom_case

from osteon.trajectory_files import write_trajectory
from sim_core.case.bundle import load_bundle
from sim_core.model import model_from_bundle
from sim_core.trajectories import scripted_rows

ROOT = Path(__file__).resolve().parents[2]


def osteon(*args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("osteon")
    return subprocess.run(
        [str(exe), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "OSTEON_SECRET_KEY": "test"},
    )


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.getbasetemp() / "phantoms"
    root.mkdir(exist_ok=True)
    case = phantom_case("lumbar", root)
    out = tmp_path_factory.mktemp("cli")
    model = model_from_bundle(load_bundle(case), "pedicle_pilot_hole")
    script = out / "expert.csv"
    write_trajectory(script, scripted_rows(model, "expert"))
    rec, png = out / "session.npz", out / "shot.png"
    done = osteon(
        "sim", "run", str(case), "--scenario", "pedicle_pilot_hole",
        "--device", f"scripted:{script}", "--offscreen",
        "--screenshot", str(png), "--record", str(rec), "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return {"case": case, "rec": rec, "png": png, "out": json.loads(done.stdout), "dir": out}


def test_run_scores_records_and_screenshots_a_scripted_session(ran: dict[str, Any]) -> None:
    out = ran["out"]
    assert out["scenario"] == "pedicle_pilot_hole" and out["passed"] is True
    assert out["gr_grade"] == "A" and out["metrics"]["gr_grade_index"]["passed"] is True
    assert out["state_hash"].startswith("sha256:")
    assert ran["rec"].is_file() and out["recording"] == str(ran["rec"])
    assert ran["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ran["png"].stat().st_size > 50_000


def test_replay_reproduces_the_run_bit_for_bit(ran: dict[str, Any]) -> None:
    done = osteon("sim", "replay", str(ran["rec"]), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["reproduced"] is True
    assert out["state_hash"] == ran["out"]["state_hash"]
    assert out["result"]["metrics"] == ran["out"]["metrics"]
    assert out["speedup"] > 1.0  # faster than real time; `osteon sim bench` measures how much


def test_replay_of_a_damaged_recording_is_a_clear_error(ran: dict[str, Any]) -> None:
    bad = ran["dir"] / "cut.npz"
    bad.write_bytes(ran["rec"].read_bytes()[:5000])
    done = osteon("sim", "replay", str(bad), "--json")
    assert done.returncode != 0
    assert "damaged or truncated" in done.stderr and "Traceback" not in done.stderr


def test_run_with_an_unknown_scenario_or_device_is_a_clear_error(ran: dict[str, Any]) -> None:
    done = osteon("sim", "run", str(ran["case"]), "--scenario", "appendectomy", "--json")
    assert done.returncode != 0 and "no such scenario" in done.stderr
    assert "Traceback" not in done.stderr
    done = osteon(
        "sim",
        "run",
        str(ran["case"]),
        "--scenario",
        "pedicle_pilot_hole",
        "--device",
        "mouse",
        "--offscreen",
    )
    assert done.returncode != 0 and "needs a window" in done.stderr
    assert "Traceback" not in done.stderr
    done = osteon(
        "sim", "run", str(ran["case"]), "--scenario", "pedicle_pilot_hole", "--device", "tablet"
    )
    assert done.returncode != 0 and "unknown device 'tablet'" in done.stderr
    assert "Traceback" not in done.stderr
