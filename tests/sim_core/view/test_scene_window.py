"""The windowed view on a real X server (Xvfb), and the fallback when no window can open."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from view_pixels import bone_pixels, load_rgb

# run in a child: a window needs the process's one ShowBase, which the test runner must not keep
WINDOW_SCRIPT = """
import sys
from pathlib import Path
from panda3d.core import ClockObject
from sim_core.case.bundle import load_bundle
from sim_core.view.scene_view import SceneView

view = SceneView(offscreen=False, size=(480, 300))
assert type(view.win).__name__ == "GraphicsWindow", type(view.win).__name__
bundle = load_bundle(sys.argv[1])
# a second case replaces the first: one scene, one overlay; teardown leaves nothing behind
for _ in range(2):
    view.setup_case(bundle)
    view.render_frames(1)
assert len(view.render.find_all_matches("**/bones")) == 1
assert len(view.aspect2d.find_all_matches("**/title")) == 1
view.teardown_case()
assert view.render.find_all_matches("**/bones").get_num_paths() == 0
assert view.aspect2d.find_all_matches("**/title").get_num_paths() == 0
view.setup_case(bundle)
view.render_frames(3)
view.save_png(Path(sys.argv[2]) / "before.png")
# a forced clock: every frame is 50 ms, however fast the machine draws
view.clock.set_mode(ClockObject.M_forced)
view.clock.set_frame_rate(20)
view.messenger.send("arrow_left")  # held: the frame task orbits while it is down
view.render_frames(20)
view.messenger.send("arrow_left-up")
view.render_frames(2)
view.save_png(Path(sys.argv[2]) / "after.png")
view.messenger.send("escape")
view.run()  # returns at once: escape asked the frame task to stop the loop
view.destroy()
print("closed after escape")
"""


def test_a_window_opens_on_an_x_display_and_the_arrow_keys_orbit(
    spine_case: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            "xvfb-run",
            "-a",
            "-s",
            "-screen 0 800x600x24",
            sys.executable,
            "-c",
            WINDOW_SCRIPT,
            str(spine_case),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "closed after escape" in done.stdout
    before, after = load_rgb(tmp_path / "before.png"), load_rgb(tmp_path / "after.png")
    assert bone_pixels(before).mean() > 0.02
    changed = (abs(before - after).max(axis=-1) > 30).mean()
    assert changed > 0.02


def test_it_falls_back_to_a_screenshot_when_the_named_display_cannot_open(
    long_bone_case: Path, tmp_path: Path
) -> None:
    script = (
        "import sys; from pathlib import Path; from sim_core.view.case_viewer import view_case; "
        "print(view_case(Path(sys.argv[1])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(long_bone_case)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "DISPLAY": ":97"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    png = tmp_path / "long-bone-view.png"
    assert done.stdout.strip().endswith(str(png))
    assert bone_pixels(load_rgb(png)).mean() > 0.02


pytestmark = pytest.mark.timeout(180)
