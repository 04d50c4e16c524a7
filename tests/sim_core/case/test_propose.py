"""Proposing a case's parts from its segmentation, on a phantom CT whose truth sidecar was
removed (what a real CT gives the builder), and the confirmed annotations' checks."""

import itertools
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sim_core.case.annotations import AnnotationError, parse_annotations, tube_voxels
from sim_core.case.build import build_case
from sim_core.case.bundle import CaseBundle, load_bundle
from sim_core.case.propose import propose_parts
from sim_core.ct.errors import SeriesError
from sim_core.ct.phantom import TRUTH_JSON, TRUTH_NPZ, make_phantom, write_phantom

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ct"))
from ct_dicom_fixtures import copy_real

CANAL_TOLERANCE_MM = 3.0
LEVEL_TOLERANCE_MM = 5.0


def build_without_sidecar(root: Path) -> tuple[CaseBundle, dict[str, Any]]:
    """The lumbar phantom (L3-L5) built after its truth sidecar was removed; and that truth."""
    series = root / "series"
    write_phantom(make_phantom("lumbar", seed=1, slices=80, matrix=128), series)
    truth = json.loads((series / TRUTH_JSON).read_text(encoding="utf-8"))
    (series / TRUTH_JSON).unlink()
    (series / TRUTH_NPZ).unlink()
    summary = build_case(series, root / "case")
    assert summary["zones_source"] == "none"
    return load_bundle(root / "case"), truth


@pytest.fixture(scope="module")
def no_sidecar(tmp_path_factory: pytest.TempPathFactory) -> tuple[CaseBundle, dict[str, Any]]:
    return build_without_sidecar(tmp_path_factory.mktemp("no-sidecar"))


def _marks(bundle: CaseBundle, truth: dict[str, Any], suffix: str) -> dict[str, np.ndarray]:
    return {
        m["name"].split("_")[0]: bundle.case_from_patient_mm(m["lps_mm"])
        for m in truth["landmarks"]
        if m["name"].endswith(suffix)
    }


def _distance_to_polyline(p: np.ndarray, points: np.ndarray) -> float:
    best = math.inf
    for a, b in itertools.pairwise(points):
        ab = b - a
        t = float(np.clip((p - a) @ ab / (ab @ ab), 0.0, 1.0))
        best = min(best, float(np.linalg.norm(p - (a + t * ab))))
    return best


def test_it_finds_the_phantoms_levels_canal_and_components(
    no_sidecar: tuple[CaseBundle, dict[str, Any]],
) -> None:
    bundle, truth = no_sidecar
    assert [b["name"] for b in bundle.meta["bones"]] == ["bone_1", "bone_2", "bone_3"]
    found = propose_parts(bundle.hu, bundle.bone_id, bundle.spacing_mm, bundle.patient_from_case)

    # three levels, cranial to caudal, each at its vertebral body's centre height
    bodies = _marks(bundle, truth, "_body_centre")
    assert [lv.name for lv in found.levels] == ["V1", "V2", "V3"]
    si = found.axes.si
    for level, name in zip(found.levels, ("L3", "L4", "L5"), strict=True):
        assert abs(level.centre_mm[si] - bodies[name][si]) <= LEVEL_TOLERANCE_MM, (level, name)
        assert 0.0 < level.confidence < 1.0 and "disc" in level.reason
        assert "椎间隙" in level.reason_zh
        assert len(level.bone_ids) == 1
    assert len({lv.bone_ids for lv in found.levels}) == 3

    # the canal's centre line passes within a few mm of the truth's canal centres
    assert found.canal is not None
    line = np.asarray(found.canal.points_mm)
    for name, centre in _marks(bundle, truth, "_canal_centre").items():
        assert _distance_to_polyline(centre, line) <= CANAL_TOLERANCE_MM, name
    # the bony canal is an 11 x 8.5 mm (semi-axes) ellipse: equivalent radius 9.7 mm
    assert 8.0 <= found.canal.radius_mm <= 11.5
    assert 0.0 < found.canal.confidence < 1.0

    # components: the three vertebrae, with their volumes and boxes
    assert [c.id for c in found.components] == [1, 2, 3]
    assert all(c.volume_mm3 > 30_000 and c.confidence < 1.0 for c in found.components)
    assert any("surgeon" in en and "医生" in zh for zh, en in found.notes)
    json.dumps(found.as_dict())


def test_without_bone_around_a_canal_no_levels_are_claimed(
    no_sidecar: tuple[CaseBundle, dict[str, Any]],
) -> None:
    bundle, _ = no_sidecar
    # the bodies alone (everything posterior of the canal's front removed): no canal, no levels
    bone_id = np.array(bundle.bone_id)
    ap_axis = 1
    bone_id[:, int(35 / bundle.spacing_mm) :, :] = 0
    found = propose_parts(bundle.hu, bone_id, bundle.spacing_mm, bundle.patient_from_case)
    assert ap_axis == found.axes.ap
    assert found.canal is None and found.levels == ()
    assert any("no spinal canal" in en and "未找到椎管" in zh for zh, en in found.notes)


def test_the_real_ct_of_pydicom_data_is_one_slice_and_is_refused(tmp_path: Path) -> None:
    # pydicom-data's real CT is one axial slice (693_UNCR, 693_J2KR and 693_UNCI are that slice
    # in three encodings): not enough for a volume, and the builder says so
    series = tmp_path / "real"
    copy_real("693_UNCR.dcm", series)
    with pytest.raises(SeriesError, match="only one slice"):
        build_case(series, tmp_path / "case")
    assert not (tmp_path / "case").exists()
    for name in ("693_J2KR.dcm", "693_UNCI.dcm"):
        copy_real(name, series)
    with pytest.raises(SeriesError, match="same position"):
        build_case(series, tmp_path / "case")
    assert not (tmp_path / "case").exists()
    shutil.rmtree(series)


SHAPE = (40, 30, 20)


def _parse(data: dict[str, Any]) -> Any:
    return parse_annotations(data, shape=SHAPE, spacing_mm=0.5, bone_ids={1, 2})


@pytest.mark.parametrize(
    ("data", "code", "field"),
    [
        (
            {"landmarks": [{"name": "a", "point_mm": [1, 1, 30]}]},
            "point_outside_volume",
            "landmarks[0].point_mm",
        ),
        (
            {"landmarks": [{"name": "a", "point_mm": [1, float("nan"), 3]}]},
            "non_finite_point",
            "landmarks[0].point_mm",
        ),
        (
            {"landmarks": [{"name": "a", "point_mm": [1, 2]}]},
            "invalid_point",
            "landmarks[0].point_mm",
        ),
        (
            {"zones": [{"name": "c", "kind": "nerve", "radius_mm": -1, "points_mm": [[1, 1, 1]]}]},
            "invalid_radius",
            "zones[0].radius_mm",
        ),
        (
            {
                "zones": [
                    {
                        "name": "c",
                        "kind": "nerve",
                        "radius_mm": float("inf"),
                        "points_mm": [[1, 1, 1]],
                    }
                ]
            },
            "invalid_radius",
            "zones[0].radius_mm",
        ),
        (
            {"zones": [{"name": "c", "kind": "bone", "radius_mm": 2, "points_mm": [[1, 1, 1]]}]},
            "unknown_zone_kind",
            "zones[0].kind",
        ),
        (
            {"zones": [{"name": "c", "kind": "nerve", "radius_mm": 2, "points_mm": []}]},
            "invalid_points",
            "zones[0].points_mm",
        ),
        (
            {
                "levels": [
                    {"name": "L4", "centre_mm": [1, 1, 1], "bone_ids": [1]},
                    {"name": "l4", "centre_mm": [2, 2, 2], "bone_ids": [2]},
                ]
            },
            "duplicate_level",
            "levels[1].name",
        ),
        (
            {"levels": [{"name": "L4", "centre_mm": [1, 1, 1], "bone_ids": [7]}]},
            "unknown_bone",
            "levels[0]",
        ),
        ({"bones": [{"id": 1, "name": " "}]}, "name_required", "bones[0].name"),
    ],
)
def test_bad_annotations_are_refused_with_code_and_field(
    data: dict[str, Any], code: str, field: str
) -> None:
    with pytest.raises(AnnotationError) as caught:
        _parse(data)
    assert (caught.value.code, caught.value.field) == (code, field)


def test_a_tube_holds_the_voxels_within_its_radius_of_the_polyline() -> None:
    parsed = _parse(
        {
            "zones": [
                {
                    "name": "canal",
                    "kind": "nerve",
                    "radius_mm": 2.0,
                    "points_mm": [[2.0, 5.0, 5.0], [15.0, 5.0, 5.0]],
                }
            ]
        }
    )
    voxels = tube_voxels(parsed.zones, SHAPE, 0.5)
    assert len(voxels["vessel"]) == 0
    centres = voxels["nerve"] * 0.5
    # every listed voxel within 2 mm of the segment, and a voxel on the axis is listed
    seg = np.clip(centres[:, 0], 2.0, 15.0)
    d = np.sqrt((centres[:, 0] - seg) ** 2 + (centres[:, 1] - 5) ** 2 + (centres[:, 2] - 5) ** 2)
    assert d.max() <= 2.0
    assert [16, 10, 10] in voxels["nerve"].tolist()
    # the count matches a capsule's volume within a voxel shell
    expected = (math.pi * 4 * 13 + 4 / 3 * math.pi * 8) / 0.125
    assert abs(len(centres) - expected) / expected < 0.1


def test_the_plan_checks_measure_confirmed_tubes_only_for_their_case(
    no_sidecar: tuple[CaseBundle, dict[str, Any]],
) -> None:
    from sim_core import plan_checks
    from sim_core.case.annotations import Tube

    bundle, truth = no_sidecar
    marks = {m["name"]: bundle.case_from_patient_mm(m["lps_mm"]) for m in truth["landmarks"]}
    found = propose_parts(bundle.hu, bundle.bone_id, bundle.spacing_mm, bundle.patient_from_case)
    assert found.canal is not None
    canal = Tube("canal", "nerve", found.canal.points_mm, found.canal.radius_mm)

    def nerve(tubes: Any) -> Any:
        model = plan_checks.cached_planning_model(bundle.path, bundle.content_hash, tubes=tubes)
        checks = plan_checks.check_element(
            model,
            kind="pedicle_screw",
            entry_mm=marks["L4_pedicle_entry_left"],
            target_mm=marks["L4_pedicle_target_left"],
            diameter_mm=6.5,
            length_mm=45.0,
        )
        return checks.zones["nerve"].clearance_mm

    assert nerve(None) is None
    with_canal = nerve(("case1-v1", (canal,)))
    # lateral to the bony canal, which the proposed tube fills: clear, by about a millimetre
    assert with_canal is not None and 0.0 < with_canal < 5.0
    # another case on the same bundle without annotations still has no nerve
    assert nerve(None) is None
    assert nerve(("case2-v1", ())) is None
