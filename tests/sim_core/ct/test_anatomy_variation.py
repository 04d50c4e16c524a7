"""Other people's anatomy: a `Variation` changes the bones a surgeon plans around, its plan
follows each person's own landmarks, and the template (every existing case) is untouched.

The validity study's case variants (``benchmarks/validity.py``) are measured here from the
built case, as the engine sees them, and the scripted expert must still pass on each.
"""

import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from sim_core.case.build import build_case
from sim_core.case.bundle import CaseBundle, TissueLabel, load_bundle
from sim_core.ct.anatomy import TEMPLATE, Variation, anatomy
from sim_core.ct.phantom import make_phantom, write_phantom
from sim_core.model import model_from_bundle
from sim_core.replay import play
from sim_core.trajectories import scripted_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))
from validity import CASE_VARIANTS, MATRIX, SLICES, CaseVariant

VARIANTS = {v.name: v for v in CASE_VARIANTS}
BONE = (TissueLabel.CORTEX, TissueLabel.CANCELLOUS)


def _marks(region: str, variation: Variation = TEMPLATE) -> dict[str, Any]:
    return {m.name: m.lps_mm for m in anatomy(region, variation).landmarks}


def test_the_template_is_todays_anatomy_exactly() -> None:
    # pinned from the anatomy before variation existed: the plans of every built case
    assert _marks("lumbar")["L4_pedicle_entry_left"] == (18.813, 57.929, 3.0)
    assert _marks("lumbar")["L4_pedicle_target_left"] == (3.257, 7.049, 3.0)
    assert _marks("hip")["femoral_head_apex"] == pytest.approx((-72.76600, -3.66320, 54.78412))
    assert _marks("hip")["lateral_cortex_entry"] == pytest.approx((-161.18393, 15.13061, -21.06482))
    assert _marks("knee")["lateral_condyle_centre"] == (-20.0, 8.0, 24.0)
    plain = make_phantom("lumbar", seed=3, slices=16, matrix=64)
    explicit = make_phantom("lumbar", seed=3, slices=16, matrix=64, variation=Variation())
    assert np.array_equal(plain.volume.hu, explicit.volume.hu)
    assert "variation" not in plain.truth  # the sidecar (and the case hash) stay as they were


def test_landmarks_follow_the_anatomy() -> None:
    small = Variation(scale=0.9, pedicle_width_mm=7.0, pedicle_medial_offset_deg=3.0)
    base, other = _marks("lumbar"), _marks("lumbar", small)
    # a smaller spine: the L4 pedicle entry moves towards the origin, L3 comes closer
    assert other["L3_body_centre"][2] == pytest.approx(0.9 * base["L3_body_centre"][2])
    assert other["L4_pedicle_entry_left"] != base["L4_pedicle_entry_left"]
    # a valgus neck (larger neck-shaft angle) raises the apex above the head centre
    varus, valgus = (_marks("hip", Variation(neck_shaft_deg=a)) for a in (122.0, 138.0))
    rise = {
        name: m["femoral_head_apex"][2] - m["femoral_head_centre"][2]
        for name, m in (("varus", varus), ("valgus", valgus))
    }
    assert rise["valgus"] > rise["varus"] + 4.0
    with pytest.raises(ValueError, match="scale"):
        anatomy("lumbar", Variation(scale=0.0))


def _run_mm(bundle: CaseBundle, bone: int, start: npt.ArrayLike, direction: npt.ArrayLike) -> float:
    """Length (mm) of the run of ``bone`` through ``start`` along ``direction`` (patient LPS)."""
    start, direction = np.asarray(start, dtype=np.float64), np.asarray(direction, dtype=float)
    direction = direction / np.linalg.norm(direction)
    steps = np.arange(-40.0, 40.0, 0.1)
    inside = []
    for s in steps:
        i, j, k = bundle.index_of_patient_mm(start + s * direction)
        ok = 0 <= i < bundle.tissue.shape[0] and 0 <= j < bundle.tissue.shape[1]
        ok = ok and 0 <= k < bundle.tissue.shape[2]
        inside.append(ok and bundle.bone_id[i, j, k] == bone and bundle.tissue[i, j, k] in BONE)
    flags = np.asarray(inside)
    mid = int(np.argmin(np.abs(steps)))
    assert flags[mid], "the run must start inside the bone"
    lo = mid - int(np.argmin(flags[mid::-1])) if not flags[: mid + 1].all() else 0
    hi = mid + int(np.argmin(flags[mid:])) if not flags[mid:].all() else len(flags)
    return float((hi - lo) * 0.1)


def measure_lumbar(bundle: CaseBundle) -> dict[str, float]:
    """L4's left pedicle isthmus width and body width and depth, from the built case."""
    marks = {m["name"]: np.asarray(m["lps_mm"]) for m in bundle.meta["landmarks"]}
    bone = 1 + [b["name"] for b in bundle.meta["bones"]].index("L4")
    entry, ant = marks["L4_pedicle_entry_left"], marks["L4_pedicle_left"]
    axis = (ant - entry) / np.linalg.norm(ant - entry)
    across = np.cross(axis, (0.0, 0.0, 1.0))
    widths = [_run_mm(bundle, bone, entry + t * (ant - entry), across) for t in (0.3, 0.4, 0.5)]
    centre = marks["L4_body_centre"]
    return {
        "pedicle_width_mm": min(widths),
        "body_width_mm": _run_mm(bundle, bone, centre, (1.0, 0.0, 0.0)),
        "body_depth_mm": _run_mm(bundle, bone, centre, (0.0, 1.0, 0.0)),
    }


@pytest.fixture(scope="module")
def lumbar_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CaseBundle]:
    root = tmp_path_factory.mktemp("variants")
    out = {}
    for variant in CASE_VARIANTS:
        out[variant.name] = load_bundle(_build(root, variant, "lumbar"))
    return out


def _build(root: Path, variant: CaseVariant, region: str) -> Path:
    series, case = root / f"{region}-{variant.name}-ct", root / f"{region}-{variant.name}"
    phantom = make_phantom(
        region,
        seed=variant.seed,
        slices=SLICES,
        matrix=MATRIX,
        rotation_deg=variant.tilt_deg,
        variation=variant.anatomy(region),
    )
    write_phantom(phantom, series)
    build_case(series, case)
    return case


def test_the_study_variants_are_different_spines(lumbar_cases: dict[str, CaseBundle]) -> None:
    sizes = {name: measure_lumbar(bundle) for name, bundle in lumbar_cases.items()}
    template = {"pedicle_width_mm": 9.2, "body_width_mm": 48.0, "body_depth_mm": 35.0}
    for name, measured in sizes.items():
        v = VARIANTS[name].anatomy("lumbar")
        for key, value in measured.items():
            # relative to the template as built (its approximate ellipse and smooth joins
            # make it a little off its nominal sizes): a voxel or two of 0.5 mm
            wanted = sizes["base"][key] * (getattr(v, key) or template[key] * v.scale)
            wanted /= template[key]
            assert value == pytest.approx(wanted, abs=0.8), (name, key, value, wanted)
    for key in template:
        assert sizes["small"][key] < sizes["base"][key] < sizes["large"][key], (key, sizes)
    assert sizes["large"]["pedicle_width_mm"] - sizes["small"]["pedicle_width_mm"] > 4.0


@pytest.mark.parametrize("scenario", ["pedicle_pilot_hole", "burr_lesion"])
def test_the_scripted_expert_passes_on_every_variant(
    lumbar_cases: dict[str, CaseBundle], scenario: str
) -> None:
    lengths = {}
    for name, bundle in lumbar_cases.items():
        model = model_from_bundle(bundle, scenario)
        _, result = play(model, scripted_rows(model, "expert"))
        assert result.sheet.passed, (name, result.sheet.as_dict())
        lengths[name] = model.plan.length_mm
    if scenario == "pedicle_pilot_hole":
        # each plan is made on its own spine: a larger spine has a longer pedicle trajectory
        assert lengths["small"] + 3.0 < lengths["base"] < lengths["large"] - 3.0, lengths


def test_the_hip_variants_keep_their_landmarks_where_they_belong() -> None:
    for variant in CASE_VARIANTS:
        phantom = make_phantom(
            "hip",
            seed=variant.seed,
            slices=SLICES,
            matrix=MATRIX,
            rotation_deg=variant.tilt_deg,
            variation=variant.anatomy("hip"),
        )
        inv = np.linalg.inv(phantom.volume.patient_from_index)
        for mark in phantom.truth["landmarks"]:
            if mark["tissue"] not in ("cancellous", "canal", "nerve"):
                continue
            ijk = np.rint(inv @ np.append(mark["lps_mm"], 1.0))[:3].astype(int)
            if not all(0 <= ijk[a] < phantom.tissue.shape[a] for a in range(3)):
                continue  # outside this small field of view
            label = TissueLabel[mark["tissue"].upper()]
            assert phantom.tissue[tuple(ijk)] == label, (variant.name, mark["name"])
