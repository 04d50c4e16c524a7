"""Virtual fluoroscopy: the DRR shows bone, holes the tool drilled, and the instrument where it
is; the compiled ray caster agrees with its numpy twin."""

from pathlib import Path

import numpy as np
import pytest
from synthetic_cases import phantom_case

from sim_core import fluoro
from sim_core.case.bundle import load_bundle
from sim_core.instruments import load_instrument
from sim_core.model import model_from_bundle
from sim_core.replay import play
from sim_core.scenarios import Plan
from sim_core.slots import S_DEEPEST_DIR, S_DEEPEST_TIP, S_DIR, S_TOOL
from sim_core.trajectories import scripted_rows

SPACING = 1.0
SHAPE = (48, 40, 44)


def _block() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Water-like soft tissue (HU 40) with a cortical bone rod along the first axis."""
    hu = np.full(SHAPE, 40, dtype=np.int16)
    tissue = np.zeros(SHAPE, dtype=np.uint8)
    density = np.zeros(SHAPE, dtype=np.float32)
    j, k = np.ogrid[: SHAPE[1], : SHAPE[2]]
    rod = (j - 20) ** 2 + (k - 22) ** 2 <= 6**2
    tissue[:, rod] = 1
    density[:, rod] = 1.8
    hu[:, rod] = 1200
    return hu, tissue, density


def _plan() -> Plan:
    centre = (23.5, 20.0, 22.0)
    return Plan(entry_mm=centre, target_mm=(23.5, 20.0, 30.0))


def _small(view: str = "ap", pixels: int = 48) -> fluoro.Geometry:
    carm = fluoro.CArm(detector_mm=120.0, pixels=pixels)
    return fluoro.shot_geometry(_plan(), fluoro.View.parse(view), carm)


def test_bone_is_brighter_than_soft_tissue_on_a_synthetic_block() -> None:
    hu, tissue, density = _block()
    mu = fluoro.attenuation(fluoro.soft_tissue_mu(hu, tissue), density)
    geometry = _small("ap")
    total, metal = fluoro.drr(mu, SPACING, geometry)
    assert not metal.any()
    rod_u, rod_v = geometry.project((23.5, 20.0, 22.0))
    soft_u, soft_v = geometry.project((23.5, 20.0, 36.0))
    rod = total[round(rod_v), round(rod_u)]
    soft = total[round(soft_v), round(soft_u)]
    # the AP ray through the rod's axis crosses 12 mm of cortex instead of 12 mm of water
    assert rod - soft == pytest.approx(12.0 * fluoro.MU_BONE_PER_G_CM3 * 1.8, rel=0.1)
    image = fluoro.Radiograph(total, metal, fluoro.View("ap")).image()
    assert image[round(rod_v), round(rod_u)] > image[round(soft_v), round(soft_u)] + 30


@pytest.mark.parametrize(
    ("instrument", "view"),
    [
        ("burr_sphere_4mm", "ap"),
        ("drill_3.2mm", "lateral"),
        ("saw_oscillating_10mm", "oblique:-25"),
    ],
)
def test_numba_kernel_equals_its_numpy_twin(instrument: str, view: str) -> None:
    hu, tissue, density = _block()
    density[10:20, 18:22, 20:24] = 0.4  # a half-eroded patch
    mu = fluoro.attenuation(fluoro.soft_tissue_mu(hu, tissue), density)
    parts = fluoro.instrument_parts(
        load_instrument(instrument), (20.0, 18.0, 24.0), (0.3, 0.2, 0.9), (1.0, 0.0, 0.0)
    )
    geometry = _small(view, pixels=40)
    compiled, metal = fluoro.drr(mu, SPACING, geometry, parts, step_mm=0.7)
    twin = fluoro.line_integrals_numpy(mu, SPACING, geometry, parts, 0.7)
    assert metal.max() > 0.5  # the instrument is in the picture
    np.testing.assert_allclose(compiled, twin, rtol=1e-6, atol=1e-9)


def test_the_instrument_shows_where_it_is_with_its_real_length() -> None:
    hu, tissue, density = _block()
    mu = fluoro.attenuation(fluoro.soft_tissue_mu(hu, tissue), density)
    wire = load_instrument("k_wire_2.0mm")
    geometry = _small("ap", pixels=96)
    tip = np.array([14.0, 20.0, 30.0])
    axis = np.array([1.0, 0.0, 0.0])  # across the AP beam, towards +x: the wire lies behind
    _, metal = fluoro.drr(mu, SPACING, geometry, fluoro.instrument_parts(wire, tip, axis, axis))
    u, v = geometry.project(tip - 5.0 * axis)
    # through the wire's axis the beam crosses its full diameter of steel
    assert metal[round(v), round(u)] == pytest.approx(2.0 * fluoro.MU_STEEL, rel=0.15)
    u_ahead, v_ahead = geometry.project(tip + 4.0 * axis)
    assert metal[round(v_ahead), round(u_ahead)] == 0.0
    # moved 10 mm superior, the shadow moves with it
    _, moved = fluoro.drr(
        mu,
        SPACING,
        geometry,
        fluoro.instrument_parts(wire, tip + np.array([0, 0, 10.0]), axis, axis),
    )
    assert moved[round(v), round(u)] == 0.0
    u2, v2 = geometry.project(tip + np.array([0, 0, 10.0]) - 5.0 * axis)
    assert moved[round(v2), round(u2)] > 1.0


def test_views_follow_the_patient_frame() -> None:
    left, post, sup = np.eye(3)
    beam, up, right = fluoro.beam_lps(fluoro.View.parse("ap"))
    assert np.allclose(beam, -post) and np.allclose(up, sup) and np.allclose(right, left)
    beam, _, _ = fluoro.beam_lps(fluoro.View.parse("lateral"))
    assert np.allclose(beam, left)
    inlet, _, _ = fluoro.beam_lps(fluoro.View.parse("inlet"))
    outlet, _, _ = fluoro.beam_lps(fluoro.View.parse("outlet:30"))
    assert inlet[2] < 0 < outlet[2]  # towards the feet / towards the head
    assert np.degrees(np.arccos(-inlet @ post)) == pytest.approx(40.0)
    plus, _, _ = fluoro.beam_lps(fluoro.View.parse("oblique:20"))
    minus, _, _ = fluoro.beam_lps(fluoro.View.parse("oblique", -20.0))
    assert plus[0] == pytest.approx(-minus[0]) and abs(plus[0]) > 0.3
    with pytest.raises(fluoro.FluoroError):
        fluoro.View.parse("axial")


@pytest.fixture(scope="module")
def lumbar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.getbasetemp() / "phantoms"
    root.mkdir(exist_ok=True)
    return phantom_case("lumbar", root)


def test_a_drilled_pedicle_hole_shows_as_a_darker_channel(lumbar: Path) -> None:
    bundle = load_bundle(lumbar)
    model = model_from_bundle(bundle, "pedicle_pilot_hole")
    scope = fluoro.Fluoroscope.for_case(bundle, model.plan, model.instrument)
    view = fluoro.View.parse("lateral")
    before = scope.shot(model.density0, None, view)
    state, _ = play(model, scripted_rows(model, "expert"))
    after = scope.shot(state.density, None, view)
    geometry = fluoro.shot_geometry(model.plan, view)
    entry, target = np.asarray(model.plan.entry_mm), np.asarray(model.plan.target_mm)
    # along the drilled path (its middle 60 %) every pixel lost attenuation ...
    along = [geometry.project(entry + f * (target - entry)) for f in np.linspace(0.2, 0.8, 7)]
    drop = [before.line_integral[round(v), round(u)] - after.line_integral[round(v), round(u)]
            for u, v in along]  # fmt: skip
    assert min(drop) > 0.02
    # ... and far from it nothing changed
    assert before.line_integral[10, 10] == after.line_integral[10, 10]
    window = before.auto_window()
    for u, v in along:
        assert after.image(window)[round(v), round(u)] < before.image(window)[round(v), round(u)]
    # the drill put back at its deepest point covers the channel again, brighter than bone
    st = state.st.copy()
    st[S_TOOL : S_TOOL + 3] = st[S_DEEPEST_TIP : S_DEEPEST_TIP + 3]
    st[S_DIR : S_DIR + 3] = st[S_DEEPEST_DIR : S_DEEPEST_DIR + 3]
    with_tool = scope.shot(state.density, st, view)
    for u, v in along:
        assert with_tool.instrument[round(v), round(u)] > 1.0
        assert (
            with_tool.line_integral[round(v), round(u)] > before.line_integral[round(v), round(u)]
        )
    assert with_tool.image()[round(v), round(u)] == 255  # steel saturates


def test_a_shot_is_written_as_a_png(tmp_path: Path) -> None:
    hu, tissue, density = _block()
    mu = fluoro.attenuation(fluoro.soft_tissue_mu(hu, tissue), density)
    total, metal = fluoro.drr(mu, SPACING, _small("ap"))
    out = fluoro.write_png(
        tmp_path / "shot.png", fluoro.Radiograph(total, metal, fluoro.View("ap")).image(), "ap"
    )
    from PIL import Image

    with Image.open(out) as im:
        assert im.size == (48, 48) and im.mode == "L"
        assert im.info["Title"] == "ap"
