"""The case viewer, judged by the pixels of its offscreen screenshots."""

from pathlib import Path

import numpy as np
import pytest
from panda3d.core import TextNode
from view_pixels import (
    background_pixels,
    bone_pixels,
    load_rgb,
    red_pixels,
    scene_only,
    yellow_pixels,
)

from sim_core.case.bundle import BundleError
from sim_core.view.case_viewer import render_case_views, view_case
from sim_core.view.hud import load_cjk_font

SIZE = (480, 300)


@pytest.fixture(scope="module")
def spine_views(spine_case: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("spine-views")
    views = {name: out / f"{name}.png" for name in ("frontal", "posterior", "left", "anterior")}
    return render_case_views(spine_case, views, size=SIZE)


@pytest.fixture(scope="module")
def femur_png(long_bone_case: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("femur") / "shots" / "femur.png"
    png = view_case(long_bone_case, screenshot=out, size=SIZE)
    assert png == out.resolve()
    return png


def test_it_writes_a_screenshot_with_bone_in_the_centre_and_background_around(
    femur_png: Path,
) -> None:
    png = femur_png
    rgb = load_rgb(png)
    assert rgb.shape == (SIZE[1], SIZE[0], 3)
    h, w = rgb.shape[:2]
    centre = bone_pixels(rgb[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3])
    assert centre.mean() > 0.2
    # the side strips away from the HUD text hold only background
    sides = np.concatenate(
        [rgb[h // 4 : 3 * h // 4, : w // 10], rgb[h // 4 : 3 * h // 4, -w // 10 :]]
    )
    assert background_pixels(sides).mean() > 0.98
    assert not list(png.parent.glob(".*partial*"))


def test_it_shows_superior_up_and_the_anterior_face_towards_the_camera(
    spine_views: dict[str, Path],
) -> None:
    frontal = load_rgb(spine_views["frontal"])
    h, w = frontal.shape[:2]
    # the wider bone is superior: more bone per row in the upper half of the picture
    bone = bone_pixels(frontal) | red_pixels(frontal)
    assert bone[: h // 2].sum() > 1.3 * bone[h // 2 :].sum()
    # the vessel lies in front of the bones: seen from the front, hidden from behind
    front_red = scene_only(red_pixels(frontal))
    back_red = scene_only(red_pixels(load_rgb(spine_views["posterior"])))
    assert front_red.mean() > 0.005
    assert back_red.sum() < 0.05 * front_red.sum()
    # it lies left of the midline: the patient's left is on the viewer's right
    assert np.nonzero(front_red)[1].mean() > w / 2


def test_it_tints_protected_zones_and_only_where_a_case_has_them(
    spine_views: dict[str, Path], femur_png: Path
) -> None:
    spine = load_rgb(spine_views["posterior"])
    assert scene_only(yellow_pixels(spine)).mean() > 0.003  # the nerve column behind the bones

    femur = load_rgb(femur_png)
    assert scene_only(yellow_pixels(femur)).sum() == 0
    assert scene_only(red_pixels(femur)).sum() == 0


def test_different_cases_and_cameras_give_different_pictures(
    spine_views: dict[str, Path], femur_png: Path
) -> None:
    images = {name: load_rgb(path) for name, path in spine_views.items()}
    images["femur"] = load_rgb(femur_png)
    names = sorted(images)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            changed = np.abs(images[a] - images[b]).max(axis=-1) > 30
            assert changed.mean() > 0.02, (a, b)


def test_without_a_display_it_writes_the_screenshot_in_the_working_directory(
    long_bone_case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.chdir(tmp_path)

    png = view_case(long_bone_case, size=SIZE)

    assert png == tmp_path / "long-bone-view.png"
    assert bone_pixels(load_rgb(png)).mean() > 0.02


def test_it_rejects_a_missing_case_before_rendering(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a case bundle"):
        view_case(tmp_path / "nowhere", screenshot=tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_it_rejects_an_unknown_camera_view(long_bone_case: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="camera view"):
        view_case(long_bone_case, screenshot=tmp_path / "x.png", camera_view="sideways")


def test_the_overlay_font_draws_every_chinese_character_it_shows() -> None:
    font = load_cjk_font()
    assert font is not None, "no font with Chinese glyphs: install fonts-noto-cjk"
    node = TextNode("probe")
    node.set_font(font)
    for text in ("病例骨块上头侧前面朝向观察者", "神经血管标志点", "方向键旋转滚轮缩放视图"):
        missing = [c for c in text if not node.has_exact_character(c)]
        assert missing == []


def test_it_renders_with_the_software_renderer_when_gl_is_unavailable(
    long_bone_case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a display module that cannot load stands for a machine without EGL
    monkeypatch.setenv("OSTEON_VIEW_DISPLAY", "p3no-such-display")
    monkeypatch.delenv("DISPLAY", raising=False)

    png = view_case(long_bone_case, screenshot=tmp_path / "soft.png", size=SIZE)

    assert png is not None
    assert bone_pixels(load_rgb(png)).mean() > 0.02
