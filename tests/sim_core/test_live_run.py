"""Live sessions in a window (Xvfb): the mouse device drives the 1 kHz engine loop, the view
follows it, and the session replays bit for bit."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from synthetic_cases import phantom_case

ROOT = Path(__file__).resolve().parents[2]

# a child: the window needs the process's one ShowBase, which the test runner must not keep
PUSH_SCRIPT = """
import json, sys
from pathlib import Path
from sim_core.case.bundle import load_bundle
from sim_core.live_run import replayed_result, run_live
from sim_core.model import model_from_bundle
from haptics.mouse import MouseKeyboardDevice

case = Path(sys.argv[1])
model = model_from_bundle(load_bundle(case), "burr_lesion")
device = MouseKeyboardDevice()

def inject(view):
    # half a second in: drill on and push in along the plan ("w" held, 8 mm/s)
    def press(task):
        view.messenger.send("space")
        view.messenger.send("w")
    view.task_mgr.do_method_later(0.5, press, "press")

live = run_live(case, model, device, max_seconds=2.5, size=(480, 300), before_run=inject)
result = replayed_result(model, live)
print(json.dumps({"ticks": len(live.inputs), "frames": live.frames, "loop": live.loop_stats,
                  "metrics": result.sheet.as_dict()["metrics"]}))
"""


def xvfb(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 800x600x24", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "OSTEON_SECRET_KEY": "test"},
        check=False,
    )


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.getbasetemp() / "phantoms"
    root.mkdir(exist_ok=True)
    return phantom_case("lumbar", root)


def test_osteon_sim_run_with_the_mouse_opens_a_window_and_records_a_replayable_session(
    case: Path, tmp_path: Path
) -> None:
    exe = str(Path(sys.executable).with_name("osteon"))
    rec = tmp_path / "live.npz"
    run = [exe, "sim", "run", str(case), "--scenario", "burr_lesion", "--device", "mouse"]
    done = xvfb([*run, "--max-seconds", "1.5", "--record", str(rec), "--json"])
    assert done.returncode == 0, done.stderr[-2000:]
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["device"] == "mouse" and out["frames"] > 0
    assert 1200 < out["ticks"] < 2500 and out["loop"]["rate_hz"] > 900
    replay = subprocess.run(
        [exe, "sim", "replay", str(rec), "--json"], capture_output=True, text=True, check=False
    )
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert json.loads(replay.stdout)["reproduced"] is True


def test_keys_pressed_in_the_window_drive_the_burr_into_the_bone(case: Path) -> None:
    done = xvfb([sys.executable, "-c", PUSH_SCRIPT, str(case)])
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["frames"] > 0 and out["ticks"] > 2000
    metrics = {name: m["value"] for name, m in out["metrics"].items()}
    assert metrics["removed_mm3"] > 1.0 and metrics["peak_force_n"] > 0.0, metrics
