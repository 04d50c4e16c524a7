"""Looking at a built case: a window on a desktop, a PNG on a server or on request.

``view_case`` is what ``osteon case view CASE [--screenshot PNG]`` calls.
"""

from pathlib import Path

from sim_core.case.bundle import load_bundle
from sim_core.view.camera_rig import CAMERA_VIEWS, DEFAULT_VIEW
from sim_core.view.display import has_display
from sim_core.view.offscreen import (
    ViewError,
    replace_atomically,
    run_in_fresh_process,
    temporary_sibling,
)

DEFAULT_SIZE = (1280, 800)
# frames drawn before a screenshot: the first frame of a fresh buffer may still be blank
SCREENSHOT_FRAMES = 3


def default_screenshot_path(case_dir: Path) -> Path:
    """Where a screenshot goes when there is no display and none was named: ./<case>-view.png."""
    return Path.cwd() / f"{Path(case_dir).resolve().name}-view.png"


def view_case(
    case_dir: Path,
    *,
    screenshot: Path | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
    camera_view: str = DEFAULT_VIEW,
) -> Path | None:
    """Show a case: a window if there is a display and no ``screenshot``, else write a PNG.

    Returns the PNG's path, or None after the window was closed. Raises ``BundleError`` for a
    missing or damaged case and ``ViewError`` when nothing could render it.
    """
    case_dir = Path(case_dir)
    if camera_view not in CAMERA_VIEWS:
        raise ValueError(f"camera view {camera_view!r}: expected one of {sorted(CAMERA_VIEWS)}")
    # read the case here first, so a broken bundle is reported before any window opens
    bundle = load_bundle(case_dir)
    if screenshot is None and has_display():
        from sim_core.view.scene_view import SceneView

        try:
            view = SceneView(offscreen=False, size=size)
        except Exception:  # Panda3D raises bare Exception when the named display cannot open
            view = None  # then the screenshot below is the answer, as with no display
        if view is not None:
            try:
                view.setup_case(bundle, camera_view=camera_view)
                view.run()  # until escape or the window is closed
            finally:
                view.destroy()
            return None
    out = Path(screenshot) if screenshot is not None else default_screenshot_path(case_dir)
    return render_case_png(case_dir, out, size=size, camera_view=camera_view)


def render_case_png(
    case_dir: Path,
    out_png: Path,
    *,
    size: tuple[int, int] = DEFAULT_SIZE,
    camera_view: str = DEFAULT_VIEW,
) -> Path:
    """Render a case offscreen (in a fresh process) and write it as a PNG; return its path."""
    return render_case_views(case_dir, {camera_view: out_png}, size=size)[camera_view]


def render_case_views(
    case_dir: Path, outputs: dict[str, Path], *, size: tuple[int, int] = DEFAULT_SIZE
) -> dict[str, Path]:
    """Render one case from several named camera views (one process, one ShowBase) to PNGs."""
    finals = {view: Path(png).resolve() for view, png in outputs.items()}
    for view, png in finals.items():
        if view not in CAMERA_VIEWS:
            raise ValueError(f"camera view {view!r}: expected one of {sorted(CAMERA_VIEWS)}")
        if png.suffix.lower() != ".png":
            raise ValueError(f"{png}: a screenshot must be a .png file")
    partials = {view: temporary_sibling(png) for view, png in finals.items()}
    try:
        run_in_fresh_process(_render_case, Path(case_dir).resolve(), partials, size)
        for view, partial in partials.items():
            if not partial.is_file():
                raise ViewError(f"{finals[view]}: the renderer finished without writing an image")
        return {view: replace_atomically(partials[view], png) for view, png in finals.items()}
    finally:
        for partial in partials.values():
            partial.unlink(missing_ok=True)


def _render_case(case_dir: Path, outputs: dict[str, Path], size: tuple[int, int]) -> None:
    # runs in the child process: the only ShowBase this process will ever have
    from sim_core.view.scene_view import SceneView

    bundle = load_bundle(case_dir)
    view = SceneView(offscreen=True, size=size)
    try:
        for camera_view, png in outputs.items():
            view.setup_case(bundle, camera_view=camera_view)
            view.render_frames(SCREENSHOT_FRAMES)
            view.save_png(png)
            view.teardown_case()
    finally:
        view.destroy()
