"""``osteon demo`` (what ``make run`` ends with): the demo lumbar case, seen.

``make run`` first writes the demo CT phantom and builds its case (Makefile targets, so
they are skipped when present). Where there is a display the case opens in a Panda3D
window; where there is none it is rendered offscreen and the command says where the PNG is.
"""

from pathlib import Path

from osteon.console import CommandError, emit

ROOT = Path(__file__).resolve().parent.parent
DEMO_CASE = ROOT / "assets" / "cases" / "demo-lumbar"
DEMO_SCREENSHOT = ROOT / "var" / "demo" / "demo-lumbar.png"


def run_demo(case_dir: Path = DEMO_CASE, screenshot: Path = DEMO_SCREENSHOT) -> Path | None:
    """Open ``case_dir``; return the screenshot written when there is no display."""
    from sim_core.case.bundle import BundleError, load_bundle
    from sim_core.view.case_viewer import view_case
    from sim_core.view.display import has_display

    try:
        load_bundle(case_dir)
    except BundleError as exc:
        raise CommandError(
            f"演示病例不可用 / the demo case is not usable ({exc}); run `make run`"
        ) from None
    if has_display():
        view_case(case_dir)
        return None
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    png = view_case(case_dir, screenshot=screenshot)
    emit(
        {"case": str(case_dir), "screenshot": str(png)},
        as_json=False,
        human=f"无显示器：已离屏渲染 / no display: rendered offscreen to {png}",
    )
    return png
