"""The long-lived offscreen view process: it follows cuts published into shared memory."""

import os
import time
from pathlib import Path

import numpy as np
import pytest
from view_pixels import bone_pixels, load_rgb, scene_only

from sim_core.case.bundle import load_bundle
from sim_core.view.chunk_mesher import CHUNK_VOXELS
from sim_core.view.live_offscreen import LiveOffscreenView
from sim_core.view.offscreen import ViewError
from sim_core.view.session_screenshot import intact_bone_density
from sim_core.view.snapshot import ViewSnapshot


def _snapshot(chunks: tuple[tuple[int, int, int], ...]) -> ViewSnapshot:
    return ViewSnapshot(
        tick=10,
        tool_tip_mm=(0.0, 0.0, 0.0),
        tool_axis=(0.0, 0.0, -1.0),
        tool_radius_mm=2.0,
        tool_kind="spherical_burr",
        force_n=(0.0, 0.0, 1.0),
        force_limit_n=4.0,
        elapsed_s=0.01,
        removed_chunks=chunks,
    )


def test_the_view_process_redraws_the_bone_where_a_cut_was_published(
    spine_case: Path, tmp_path: Path
) -> None:
    bundle = load_bundle(spine_case)
    density = intact_bone_density(bundle.density_g_cm3, bundle.tissue)
    view = LiveOffscreenView(spine_case, density, size=(480, 300), fps=30.0)
    try:
        assert view.pid not in (-1, os.getpid()) and not view.closed()
        before = view.screenshot(tmp_path / "before.png")
        # the engine cut away the upper half of the grid's bone; it flagged those chunks
        cut = density.copy()
        half = cut.shape[2] // 2
        cut[:, :, half:] = 0.0
        chunks = tuple(
            (i, j, k)
            for i in range(-(-cut.shape[0] // CHUNK_VOXELS))
            for j in range(-(-cut.shape[1] // CHUNK_VOXELS))
            for k in range((half - 3) // CHUNK_VOXELS, -(-cut.shape[2] // CHUNK_VOXELS))
        )
        view.publish(_snapshot(chunks), cut)
        time.sleep(0.5)  # frames go on meanwhile
        after = view.screenshot(tmp_path / "after.png")
    finally:
        stats = view.close()
    bone_before = scene_only(bone_pixels(load_rgb(before))).sum()
    bone_after = scene_only(bone_pixels(load_rgb(after))).sum()
    assert bone_before > 2000 and bone_after < 0.8 * bone_before
    assert stats.frames >= 2 and stats.frame_ms_max > 0.0


def test_a_view_that_cannot_start_says_why_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ViewError, match="failed: ") as caught:
        LiveOffscreenView(tmp_path / "no-such-case", np.zeros((4, 4, 4), np.float32))
    assert "\n" not in str(caught.value)
