"""Checks of a planned element: what the planner shows before anything is drilled.

A synthetic "pedicle" (a cylinder of known width into a block of known depth) pins the width
and depth numbers; the lumbar CT phantom, built through the real case builder, pins the grade
and the distance to the dural sac on a real trajectory, and how fast a check is. The planner's
breach (a per-case index) is the simulator's (distance transforms per call) on many spans of the
phantom, on a grid at a spacing that is not a power of two, and on grids of one kind only.
"""

import math
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from synthetic_cases import phantom_case

from sim_core.case.bundle import load_bundle
from sim_core.implants import ImplantError, get_implant, load_catalog, parse_catalog
from sim_core.model import CaseModel
from sim_core.plan_checks import (
    PlanCheckError,
    cached_planning_model,
    check_element,
    index_of,
    planned_breach_mm,
    planning_index,
    planning_model,
)
from sim_core.scoring import gr_grade, screw_breach_mm

SPACING_MM = 0.5
SHAFT_RADIUS_MM = 3.0  # the "isthmus": 6 mm wide
BLOCK_DEPTH_MM = 30.0


class _Grids:
    """The bundle fields planning_model reads."""

    def __init__(self, tissue: npt.NDArray[np.uint8], spacing_mm: float = SPACING_MM) -> None:
        self.tissue = tissue
        self.density_g_cm3 = np.where(tissue > 0, 1.0, 0.0).astype(np.float32)
        self.spacing_mm = spacing_mm
        self.content_hash = "sha256:synthetic"
        self.path = "synthetic"


@pytest.fixture(scope="module")
def pedicle_block() -> CaseModel:
    """Along axis 0: 20 mm of a 6 mm cylinder (x 5..25 mm) into a 30 mm block (x 25..55 mm),
    bone all through (cortex outside, cancellous inside); a nerve voxel line at z = 20 + 8 mm."""
    shape = (130, 80, 80)
    i, j, k = np.ogrid[: shape[0], : shape[1], : shape[2]]
    x, y, z = i * SPACING_MM, j * SPACING_MM, k * SPACING_MM
    r = np.sqrt((y - 20.0) ** 2 + (z - 20.0) ** 2)
    shaft = (x >= 5.0) & (x < 25.0) & (r <= SHAFT_RADIUS_MM)
    block = (x >= 25.0) & (x < 25.0 + BLOCK_DEPTH_MM) & (np.abs(y - 20.0) <= 15.0)
    block = block & (np.abs(z - 20.0) <= 12.0)
    tissue = np.zeros(shape, dtype=np.uint8)
    tissue[np.broadcast_to(shaft | block, shape)] = 2
    nerve = np.broadcast_to((np.abs(y - 20.0) < 0.3) & (np.abs(z - 34.0) < 0.3), shape)
    tissue[nerve & (tissue == 0)] = 4
    return planning_model(_Grids(tissue))


ENTRY = (4.5, 20.0, 20.0)
TARGET = (40.0, 20.0, 20.0)


def test_the_narrowest_bone_across_the_path_is_the_isthmus(pedicle_block: CaseModel) -> None:
    checks = check_element(
        pedicle_block,
        kind="pedicle_screw",
        entry_mm=ENTRY,
        target_mm=TARGET,
        diameter_mm=4.5,
        length_mm=35.0,
    )
    assert checks.bone_width_mm == pytest.approx(2 * SHAFT_RADIUS_MM, abs=0.75)
    assert checks.bone_width_at_mm is not None and checks.bone_width_at_mm < 20.5
    assert "wider_than_bone" not in checks.flags
    wide = check_element(
        pedicle_block,
        kind="pedicle_screw",
        entry_mm=ENTRY,
        target_mm=TARGET,
        diameter_mm=7.5,
        length_mm=35.0,
    )
    assert "wider_than_bone" in wide.flags


def test_a_screw_longer_than_the_bone_along_its_path_is_flagged(pedicle_block: CaseModel) -> None:
    # entry 0.5 mm before the bone; bone ends 50.5 mm further on
    kw = {"kind": "pedicle_screw", "entry_mm": ENTRY, "target_mm": TARGET, "diameter_mm": 4.5}
    fits = check_element(pedicle_block, length_mm=45.0, **kw)  # type: ignore[arg-type]
    assert fits.bone_depth_mm == pytest.approx(50.5, abs=0.5)
    assert "longer_than_bone" not in fits.flags
    too_long = check_element(pedicle_block, length_mm=55.0, **kw)  # type: ignore[arg-type]
    assert "longer_than_bone" in too_long.flags
    assert too_long.span_end_mm == pytest.approx((59.5, 20.0, 20.0))


def test_the_clearance_to_a_nerve_is_the_implant_surface_distance(pedicle_block: CaseModel) -> None:
    # the nerve line runs 14 mm above the axis: surface clearance 14 - radius - half a voxel
    checks = check_element(
        pedicle_block,
        kind="k_wire",
        entry_mm=ENTRY,
        target_mm=TARGET,
        diameter_mm=2.0,
    )
    assert checks.zones["nerve"].clearance_mm == pytest.approx(14.0 - 1.0 - 0.25, abs=0.3)
    assert checks.zones["vessel"].clearance_mm is None
    assert checks.gr_grade is None  # graded for pedicle screws only
    assert checks.breach_mm is not None


@pytest.mark.parametrize(
    ("entry", "target", "code"),
    [
        ((4.5, 20.0, 20.0), (4.5, 20.0, 20.0), "zero_length_path"),
        ((4.5, 20.0, math.nan), TARGET, "non_finite_point"),
        ((4.5, math.inf, 20.0), TARGET, "non_finite_point"),
        ((-3.0, 20.0, 20.0), TARGET, "point_outside_volume"),
        (ENTRY, (40.0, 20.0, 400.0), "point_outside_volume"),
        ((1.0, 2.0), TARGET, "invalid_point"),
    ],
)
def test_it_refuses_an_element_it_cannot_check(
    pedicle_block: CaseModel, entry: tuple[float, ...], target: tuple[float, ...], code: str
) -> None:
    with pytest.raises(PlanCheckError) as refused:
        check_element(
            pedicle_block,
            kind="pedicle_screw",
            entry_mm=entry,
            target_mm=target,
            diameter_mm=6.5,
            length_mm=45.0,
        )
    assert refused.value.code == code


def test_a_screw_needs_a_length_and_a_known_kind(pedicle_block: CaseModel) -> None:
    with pytest.raises(PlanCheckError, match="length"):
        check_element(
            pedicle_block, kind="pedicle_screw", entry_mm=ENTRY, target_mm=TARGET, diameter_mm=6.5
        )
    with pytest.raises(PlanCheckError) as refused:
        check_element(pedicle_block, kind="rivet", entry_mm=ENTRY, target_mm=TARGET)
    assert refused.value.code == "unknown_kind"


def test_the_catalog_holds_every_size_and_refuses_a_bad_file() -> None:
    catalog = load_catalog()
    screws = [i for i in catalog if i.kind == "pedicle_screw"]
    assert {i.diameter_mm for i in screws} == {4.5, 5.5, 6.5, 7.5}
    assert {i.length_mm for i in screws} == {30.0, 35.0, 40.0, 45.0, 50.0, 55.0}
    assert {i.diameter_mm for i in catalog if i.kind == "k_wire"} == {1.6, 2.0, 2.5}
    assert {i.diameter_mm for i in catalog if i.kind == "guide_wire"} == {2.8, 3.2}
    assert any(i.kind == "drill_bit" for i in catalog)
    assert get_implant("pedicle_screw_6.5x45").length_mm == 45.0
    with pytest.raises(ImplantError):
        get_implant("pedicle_screw_9x90")
    row = {
        "id": "x",
        "kind": "k_wire",
        "name_zh": "克氏针",
        "name_en": "K-wire",
        "diameter_mm": 2.0,
        "length_mm": 150.0,
    }
    parse_catalog({"format": 1, "implants": [row]})
    for bad in (
        {"format": 1, "implants": [row, row]},
        {"format": 2, "implants": [row]},
        {"format": 1, "implants": [{**row, "diameter_mm": -1}]},
        {"format": 1, "implants": [{**row, "diameter_mm": True}]},
        {"format": 1, "implants": [{**row, "kind": "nail"}]},
        {"format": 1, "implants": [{**row, "colour": "red"}]},
    ):
        with pytest.raises(ImplantError):
            parse_catalog(bad)


@pytest.fixture(scope="module")
def lumbar(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    case = phantom_case("lumbar", tmp_path_factory.mktemp("plan-checks"))
    bundle = load_bundle(case)
    marks = {m["name"]: bundle.case_from_patient_mm(m["lps_mm"]) for m in bundle.meta["landmarks"]}
    return case, marks


def _medial_shift(marks: dict[str, np.ndarray], mm: float) -> np.ndarray:
    # towards the canal, across the pedicle's axis
    axis = marks["L4_pedicle_target_left"] - marks["L4_pedicle_entry_left"]
    towards = marks["L4_canal_centre"] - marks["L4_pedicle_entry_left"]
    across = towards - axis * np.dot(towards, axis) / np.dot(axis, axis)
    return np.asarray(mm * across / np.linalg.norm(across))


def test_a_screw_down_the_pedicle_is_grade_a_and_moved_into_the_canal_it_breaches(
    lumbar: tuple[Path, dict[str, np.ndarray]],
) -> None:
    case, marks = lumbar
    model = cached_planning_model(case, load_bundle(case).content_hash)
    entry, target = marks["L4_pedicle_entry_left"], marks["L4_pedicle_target_left"]
    screw = get_implant("pedicle_screw_6.5x45")
    kw = {"kind": "pedicle_screw", "diameter_mm": 6.5, "length_mm": 45.0}
    good = check_element(model, entry_mm=entry, target_mm=target, **kw)  # type: ignore[arg-type]
    assert good.gr_grade == "A" and good.breach_mm == 0.0
    assert good.zones["nerve"].clearance_mm is not None and good.zones["nerve"].clearance_mm > 0
    assert good.flags == ()
    # the grade is the simulator's own: the same function on the same span
    tip = entry + 45.0 * (target - entry) / np.linalg.norm(target - entry)
    assert good.breach_mm == round(screw_breach_mm(model, entry, tip, screw.radius_mm), 2)

    shift = _medial_shift(marks, 5.0)
    bad = check_element(model, entry_mm=entry + shift, target_mm=target + shift, **kw)  # type: ignore[arg-type]
    assert bad.breach_mm is not None and bad.breach_mm >= 2.0
    assert bad.gr_grade in ("C", "D", "E") and bad.gr_grade == gr_grade(bad.breach_mm)
    assert bad.zones["nerve"].clearance_mm is not None and bad.zones["nerve"].clearance_mm <= 0
    assert {"cortical_breach", "protected_zone_contact"} <= set(bad.flags)


def test_the_model_is_loaded_once_per_case(lumbar: tuple[Path, dict[str, np.ndarray]]) -> None:
    case, _ = lumbar
    digest = load_bundle(case).content_hash
    model = cached_planning_model(case, digest)
    assert cached_planning_model(case, digest) is model
    # its planning index is computed with it and kept beside it
    assert index_of(model) is index_of(model)
    with pytest.raises(PlanCheckError) as refused:
        cached_planning_model(case, "sha256:another")
    assert refused.value.code == "case_changed"


def test_a_check_takes_well_under_a_second(lumbar: tuple[Path, dict[str, np.ndarray]]) -> None:
    # a loose bound for a shared test machine; benchmarks/planning_checks.py measures the goal
    case, marks = lumbar
    model = cached_planning_model(case, load_bundle(case).content_hash)
    entry, target = marks["L4_pedicle_entry_left"], marks["L4_pedicle_target_left"]
    started = time.perf_counter()
    check_element(
        model,
        kind="pedicle_screw",
        entry_mm=entry,
        target_mm=target,
        diameter_mm=6.5,
        length_mm=45.0,
    )
    assert time.perf_counter() - started < 1.0


def _agreement_bound_mm(radius_mm: float, spacing_mm: float) -> float:
    # below this the planner's breach is the simulator's (plan_checks.planned_breach_mm)
    return 2 * radius_mm + 10.0 - (1.5 + math.sqrt(3.0)) * spacing_mm


def _assert_same_breach(
    model: CaseModel, tail: np.ndarray, tip: np.ndarray, radius_mm: float, *, exact: bool
) -> float:
    scored = screw_breach_mm(model, tail, tip, radius_mm)
    planned = planned_breach_mm(model, index_of(model), tail, tip, radius_mm)
    bound = _agreement_bound_mm(radius_mm, model.spacing_mm)
    if scored < 10.0 or min(scored, planned) <= bound:
        if exact:
            assert planned == scored
        else:
            assert planned == pytest.approx(scored, rel=0.0, abs=1e-9)
    else:
        assert scored > bound and planned > bound
    assert gr_grade(planned) == gr_grade(scored)
    return scored


def test_the_planned_breach_is_the_simulators_on_the_lumbar_phantom(
    lumbar: tuple[Path, dict[str, np.ndarray]],
) -> None:
    case, marks = lumbar
    model = cached_planning_model(case, load_bundle(case).content_hash)
    radii = (1.0, 2.25, 3.25, 3.75)  # a 2 mm wire and the catalog's screws: bound >= 10.4 mm
    scored: list[float] = []
    n = 0
    for level in ("L3", "L4", "L5"):
        for side in ("left", "right"):
            entry = marks[f"{level}_pedicle_entry_{side}"]
            target = marks[f"{level}_pedicle_target_{side}"]
            axis = target - entry
            towards = marks[f"{level}_canal_centre"] - entry
            across = towards - axis * np.dot(towards, axis) / np.dot(axis, axis)
            across /= np.linalg.norm(across)
            # down the pedicle, then moved towards the canal
            for shift_mm in (0.0, 1.0, 2.0, 3.0, 4.0, 6.0):
                radius = radii[n % len(radii)]
                n += 1
                e, t = entry + shift_mm * across, target + shift_mm * across
                # the span as check_element makes it, and the check's own breach and grade
                u = (t - e) / float(np.linalg.norm(t - e))
                tip = e + 45.0 * u
                scored.append(_assert_same_breach(model, e, tip, radius, exact=True))
                checks = check_element(
                    model,
                    kind="pedicle_screw",
                    entry_mm=e,
                    target_mm=t,
                    diameter_mm=2 * radius,
                    length_mm=45.0,
                )
                assert checks.breach_mm == round(scored[-1], 2)
                assert checks.gr_grade == gr_grade(scored[-1])
            # backwards out of the body into the air, past the edge of the volume
            for radius in (1.0, 3.25):
                tip = entry - 150.0 * axis / np.linalg.norm(axis)
                scored.append(_assert_same_breach(model, target, tip, radius, exact=True))
    # along the first face of the volume, grazing nothing and clamped to the grid
    shape_mm = np.asarray(model.shape) * model.spacing_mm
    for radius in (1.0, 3.75):
        tail = np.array([0.0, 0.3, 0.5]) * shape_mm
        tip = tail + np.array([0.0, 60.0, 0.0])
        scored.append(_assert_same_breach(model, tail, tip, radius, exact=True))
    # every grade, from inside the pedicle to the air, was compared
    assert {gr_grade(b) for b in scored} == set("ABCDE")


@pytest.fixture(scope="module")
def blobs() -> CaseModel:
    """Bone as a few overlapping balls and a slab with a hole, at 0.3 mm (not a power of two)."""
    spacing = 0.3
    shape = (90, 80, 70)
    i, j, k = np.ogrid[: shape[0], : shape[1], : shape[2]]
    x, y, z = i * spacing, j * spacing, k * spacing
    bone = (x - 10.0) ** 2 + (y - 12.0) ** 2 + (z - 10.0) ** 2 < 6.0**2
    bone = bone | ((x - 16.0) ** 2 + (y - 9.0) ** 2 + (z - 11.0) ** 2 < 4.5**2)
    slab = (np.abs(x - 22.0) < 2.0) & ((y - 12.0) ** 2 + (z - 10.0) ** 2 > 2.5**2) & (z > 0.0)
    tissue = np.zeros(shape, dtype=np.uint8)
    tissue[np.broadcast_to(bone | slab, shape)] = 2
    tissue[
        np.broadcast_to(((x - 10.0) ** 2 + (y - 12.0) ** 2 + (z - 10.0) ** 2 < 5.0**2), shape)
    ] = 1
    return planning_model(_Grids(tissue, spacing_mm=spacing))


def test_the_planned_breach_is_the_simulators_at_any_spacing(blobs: CaseModel) -> None:
    rng = np.random.default_rng(7)
    extent = np.asarray(blobs.shape) * blobs.spacing_mm
    scored = []
    for _ in range(40):
        tail = rng.uniform(0.0, 1.0, 3) * extent
        tip = rng.uniform(-0.1, 1.1, 3) * extent  # some beyond the grid
        radius = float(rng.choice([0.8, 1.6, 3.25]))
        scored.append(_assert_same_breach(blobs, tail, tip, radius, exact=False))
    assert min(scored) == 0.0 and max(scored) > 0.0


@pytest.mark.parametrize("fill", ["none", "all", "corner"])
def test_on_a_grid_or_box_of_one_kind_the_planned_breach_is_the_simulators(fill: str) -> None:
    # no bone, nothing but bone, and bone only in a far corner: no surface to search, or none
    # in the simulator's box, where its distance transform reads no real voxel of the other kind
    tissue = np.zeros((60, 50, 40), dtype=np.uint8)
    if fill == "all":
        tissue[:] = 2
    elif fill == "corner":
        tissue[-6:, -6:, -6:] = 2
    model = planning_model(_Grids(tissue))
    index = planning_index(model)
    if fill != "corner":
        assert index.bone_surface is None and index.other_surface is None
    for tail, tip, radius in (
        ((1.0, 1.0, 1.0), (20.0, 6.0, 3.0), 3.25),
        ((0.0, 0.0, 0.0), (29.5, 24.5, 19.5), 1.0),
        ((5.0, 2.0, 2.0), (5.0, 20.0, 2.0), 2.25),
    ):
        a, b = np.asarray(tail), np.asarray(tip)
        scored = screw_breach_mm(model, a, b, radius)
        assert planned_breach_mm(model, index, a, b, radius) == scored
        checks = check_element(
            model, kind="k_wire", entry_mm=a, target_mm=b, diameter_mm=2 * radius
        )
        assert checks.breach_mm == round(scored, 2)
