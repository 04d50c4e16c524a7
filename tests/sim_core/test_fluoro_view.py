"""The C-arm in the live view: ``c`` turns it, ``f`` takes a shot that shows in the HUD and is
kept for the session (offscreen; the window's keys are the same with every device)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from synthetic_cases import phantom_case

ROOT = Path(__file__).resolve().parents[2]

# a child: one ShowBase per process, which the test runner must not keep
SCRIPT = """
import json, sys
from pathlib import Path
import numpy as np
from osteon.live_run import engine_snapshot
from sim_core.case.bundle import load_bundle
from sim_core.fluoro import Fluoroscope
from sim_core.model import model_from_bundle
from sim_core.replay import play
from sim_core.trajectories import scripted_rows
from sim_core.view.fluoro_panel import FluoroPanel
from sim_core.view.scene_view import SceneView

case, png = Path(sys.argv[1]), Path(sys.argv[2])
bundle = load_bundle(case)
model = model_from_bundle(bundle, "pedicle_pilot_hole")
state, _ = play(model, scripted_rows(model, "expert")[:16000])
view = SceneView(offscreen=True, size=(960, 600))
view.setup_case(bundle, density=state.density,
                trajectory=(model.plan.entry_mm, model.plan.target_mm))
panel = FluoroPanel(view, Fluoroscope.for_case(bundle, model.plan, model.instrument))
view.show_snapshot(engine_snapshot(model, state))
view.render_frames(2)
view.messenger.send("c")
view.messenger.send("f")
view.render_frames(3)
view.save_png(png)
print(json.dumps({"shots": [[s.tick, s.view] for s in panel.shots], "tick": state.tick,
                  "instrument_px": int((panel.last.instrument > 0).sum())}))
"""


@pytest.fixture(scope="module")
def lumbar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.getbasetemp() / "phantoms"
    root.mkdir(exist_ok=True)
    return phantom_case("lumbar", root)


def test_the_f_key_takes_a_shot_shown_in_the_hud_and_kept_for_the_session(
    lumbar: Path, tmp_path: Path
) -> None:
    from PIL import Image

    png = tmp_path / "view.png"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(lumbar), str(png)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "OSTEON_SECRET_KEY": "test"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # c turned the C-arm from AP to lateral; f took one shot at the snapshot's tick
    assert out["shots"] == [[out["tick"], "lateral"]]
    assert out["instrument_px"] > 0  # the drill is in the picture
    with Image.open(png) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.int16)
    height, width = rgb.shape[:2]
    # the image card sits at the left, centred vertically: grey (R = G = B), with bone
    # brighter than the dark soft tissue, over a bluish background that is not grey
    card = rgb[height // 2 - 100 : height // 2 + 100, 40:220]
    grey = np.abs(card[..., 0] - card[..., 2]) <= 2
    assert grey.mean() > 0.95
    assert card[..., 0].max() - np.percentile(card[..., 0], 10) > 80
    outside = rgb[height // 2 - 100 : height // 2 + 100, width // 2 : width // 2 + 40]
    assert (np.abs(outside[..., 0] - outside[..., 2]) > 2).mean() > 0.2
