"""A still of a simulated session, for ``osteon sim run --screenshot`` and for reports."""

from pathlib import Path

import numpy as np
import numpy.typing as npt

from sim_core.case.bundle import TISSUE_CANCELLOUS, TISSUE_CORTEX, load_bundle
from sim_core.view.case_viewer import DEFAULT_SIZE, SCREENSHOT_FRAMES
from sim_core.view.offscreen import (
    ViewError,
    replace_atomically,
    run_in_fresh_process,
    temporary_sibling,
)
from sim_core.view.snapshot import SnapshotMailbox, Vec3, ViewSnapshot


def render_scene_png(
    case_dir: Path,
    snapshots: list[ViewSnapshot],
    trajectory: tuple[Vec3, Vec3] | None,
    out_png: Path,
    *,
    density_override: npt.NDArray[np.float32] | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
) -> Path:
    """Render the session after ``snapshots`` offscreen (in a fresh process) to a PNG.

    ``density_override`` is the session's bone density grid (float32 g/cm^3, the case grid's
    shape) as it stands after the snapshots; without it the case's intact bone is shown.
    ``trajectory`` is the planned (entry, target) in the case frame (mm), or None.
    """
    out_png = Path(out_png).resolve()
    if out_png.suffix.lower() != ".png":
        raise ValueError(f"{out_png}: a screenshot must be a .png file")
    if density_override is not None:
        density_override = np.ascontiguousarray(density_override, dtype=np.float32)
    partial = temporary_sibling(out_png)
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        run_in_fresh_process(
            _render_scene,
            Path(case_dir).resolve(),
            list(snapshots),
            trajectory,
            partial,
            density_override,
            size,
        )
        if not partial.is_file():
            raise ViewError(f"{out_png}: the renderer finished without writing an image")
        return replace_atomically(partial, out_png)
    finally:
        partial.unlink(missing_ok=True)


def intact_bone_density(
    density_g_cm3: npt.NDArray[np.float32], tissue: npt.NDArray[np.uint8]
) -> npt.NDArray[np.float32]:
    """The case's density on bone tissue only (cortex, cancellous): what a session starts from."""
    bone = (tissue == TISSUE_CORTEX) | (tissue == TISSUE_CANCELLOUS)
    return np.where(bone, density_g_cm3, np.float32(0.0)).astype(np.float32)


def _render_scene(
    case_dir: Path,
    snapshots: list[ViewSnapshot],
    trajectory: tuple[Vec3, Vec3] | None,
    out_png: Path,
    density: npt.NDArray[np.float32] | None,
    size: tuple[int, int],
) -> None:
    # runs in the child process: the only ShowBase this process will ever have
    from sim_core.view.scene_view import SceneView

    bundle = load_bundle(case_dir)
    if density is None:
        density = intact_bone_density(bundle.density_g_cm3, bundle.tissue)
    mailbox = SnapshotMailbox()
    view = SceneView(offscreen=True, size=size, mailbox=mailbox)
    try:
        view.setup_case(bundle, density=density, trajectory=trajectory)
        for snapshot in snapshots:
            mailbox.publish(snapshot)
        view.render_frames(SCREENSHOT_FRAMES)
        view.save_png(out_png)
    finally:
        view.destroy()
