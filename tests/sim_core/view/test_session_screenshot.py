"""The session view, judged by the pixels of offscreen stills."""

from pathlib import Path

import numpy as np
import pytest
from view_cases import PATIENT_FROM_CASE
from view_pixels import load_rgb, scene_only, yellow_pixels

from sim_core.case.bundle import load_bundle
from sim_core.view.chunk_mesher import chunks_touching
from sim_core.view.session_screenshot import intact_bone_density, render_scene_png
from sim_core.view.snapshot import ChunkIndex, SnapshotMailbox, ViewSnapshot

SIZE = (480, 300)
CASE_FROM_PATIENT = np.linalg.inv(PATIENT_FROM_CASE)


def _case_mm(lps: tuple[float, float, float]) -> tuple[float, float, float]:
    p = CASE_FROM_PATIENT @ np.append(np.asarray(lps, dtype=np.float64), 1.0)
    return float(p[0]), float(p[1]), float(p[2])


def _snapshot(
    tip_lps: tuple[float, float, float],
    *,
    force_n: float,
    nearest_mm: float,
    chunks: tuple[ChunkIndex, ...] = (),
) -> ViewSnapshot:
    axis = CASE_FROM_PATIENT[:3, :3] @ np.array([0.0, 1.0, 0.0])  # advancing posteriorly
    return ViewSnapshot(
        tick=1000,
        tool_tip_mm=_case_mm(tip_lps),
        tool_axis=(float(axis[0]), float(axis[1]), float(axis[2])),
        tool_radius_mm=2.0,
        tool_kind="spherical_burr",
        force_n=(0.0, force_n, 0.0),
        force_limit_n=4.0,
        elapsed_s=3.5,
        metrics={"bone_removed_mm3": 42.0},
        nearest_protected_mm=nearest_mm,
        removed_chunks=chunks,
    )


def _cancellous_pixels(rgb: np.ndarray) -> np.ndarray:
    # lit marrow red-pink: clearly redder than ivory cortex, not the saturated force-bar red
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (r > 80) & (g < 0.72 * r) & (g > 0.3 * r) & (b < 0.72 * r)


def _bar(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    return rgb[int(h * 0.86) : int(h * 0.95), int(w * 0.78) : int(w * 0.98)]


def _green(rgb: np.ndarray) -> np.ndarray:
    return (
        (rgb[..., 1] > 150) & (rgb[..., 0] < 0.6 * rgb[..., 1]) & (rgb[..., 2] < 0.6 * rgb[..., 1])
    )


def _red(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] > 180) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)


@pytest.fixture(scope="module")
def femur_stills(long_bone_case: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("femur-stills")
    trajectory = (_case_mm((10.0, -14.0, 18.0)), _case_mm((10.0, 0.0, 18.0)))
    bundle = load_bundle(long_bone_case)
    # the burr has cut a crater into the front of the femoral head
    density = intact_bone_density(bundle.density_g_cm3, bundle.tissue)
    centre = np.asarray(_case_mm((10.0, -7.5, 18.0)))
    crater = np.linalg.norm(np.indices(density.shape).transpose(1, 2, 3, 0) - centre, axis=-1) < 4.0
    density[crater] = 0.0
    box = np.argwhere(crater)
    chunks = tuple(chunks_touching(box.min(axis=0), box.max(axis=0), density.shape))
    quiet = render_scene_png(
        long_bone_case,
        [_snapshot((10.0, -16.0, 18.0), force_n=0.3, nearest_mm=float("inf"))],
        trajectory,
        out / "quiet.png",
        size=SIZE,
    )
    cut = render_scene_png(
        long_bone_case,
        [_snapshot((10.0, -9.0, 18.0), force_n=3.9, nearest_mm=float("inf"), chunks=chunks)],
        trajectory,
        out / "cut.png",
        density_override=density,
        size=SIZE,
    )
    return {"quiet": quiet, "cut": cut}


def test_cut_bone_shows_cancellous_colour_where_intact_bone_shows_none(
    femur_stills: dict[str, Path],
) -> None:
    quiet = scene_only(_cancellous_pixels(load_rgb(femur_stills["quiet"])))
    cut = scene_only(_cancellous_pixels(load_rgb(femur_stills["cut"])))
    assert quiet.sum() < 20
    assert cut.sum() > 150


def test_the_force_bar_runs_green_when_light_and_red_near_the_limit(
    femur_stills: dict[str, Path],
) -> None:
    quiet = _bar(load_rgb(femur_stills["quiet"]))
    cut = _bar(load_rgb(femur_stills["cut"]))
    assert _green(quiet).sum() > 20 and _red(quiet).sum() == 0
    assert _red(cut).sum() > 150 and _green(cut).sum() == 0


def test_the_instrument_is_drawn_at_the_tool_pose(femur_stills: dict[str, Path]) -> None:
    # the burr's gold head, outside the bone in the quiet still (the case has no yellow zone)
    assert scene_only(yellow_pixels(load_rgb(femur_stills["quiet"]))).sum() > 30


def test_protected_zones_change_colour_as_the_tool_closes_in(
    spine_case: Path, tmp_path: Path
) -> None:
    trajectory = (_case_mm((-8.0, 40.0, 12.0)), _case_mm((-8.0, 5.0, 12.0)))
    far = render_scene_png(
        spine_case,
        [_snapshot((-8.0, 40.0, 12.0), force_n=0.5, nearest_mm=30.0)],
        trajectory,
        tmp_path / "far.png",
        size=SIZE,
    )
    near = render_scene_png(
        spine_case,
        [_snapshot((-8.0, 40.0, 12.0), force_n=0.5, nearest_mm=0.5)],
        trajectory,
        tmp_path / "near.png",
        size=SIZE,
    )
    far_yellow = scene_only(yellow_pixels(load_rgb(far))).sum()
    near_yellow = scene_only(yellow_pixels(load_rgb(near))).sum()
    assert far_yellow > 200
    assert near_yellow < 0.3 * far_yellow


def test_the_mailbox_hands_over_the_newest_snapshot_with_every_changed_chunk() -> None:
    mailbox = SnapshotMailbox()
    assert mailbox.take() is None
    mailbox.publish(_snapshot((0.0, 0.0, 0.0), force_n=1.0, nearest_mm=9.0, chunks=((0, 0, 1),)))
    mailbox.publish(
        _snapshot((1.0, 0.0, 0.0), force_n=2.0, nearest_mm=8.0, chunks=((0, 0, 1), (2, 0, 0)))
    )
    latest = mailbox.take()
    assert latest is not None
    assert latest.force_n == (0.0, 2.0, 0.0)
    assert latest.removed_chunks == ((0, 0, 1), (2, 0, 0))
    assert mailbox.take() is None


def test_a_snapshot_rejects_an_unknown_tool() -> None:
    with pytest.raises(ValueError, match="tool_kind"):
        ViewSnapshot(1, (0, 0, 0), (0, 0, 1), 2.0, "laser", (0, 0, 0), 4.0, 0.0)


def test_the_planned_trajectory_is_drawn(femur_stills: dict[str, Path]) -> None:
    for still in femur_stills.values():
        rgb = load_rgb(still)
        h = rgb.shape[0]
        plan = scene_only(_green(rgb))[: int(h * 0.8)]  # above the force bar
        assert plan.sum() > 40
