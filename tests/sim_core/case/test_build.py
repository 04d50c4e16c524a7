"""The case builder against the phantom's ground truth, and against every bad input."""

import json
import shutil
from pathlib import Path
from typing import Any

import data_store
import numpy as np
import pydicom
import pytest
from osteon_cli import CliRunner

from sim_core.case import build as build_module
from sim_core.case.build import CaseBuildError, build_case
from sim_core.case.bundle import BundleError, TissueLabel, load_bundle
from sim_core.case.validate import compare_with_truth
from sim_core.ct.errors import SeriesError
from sim_core.ct.phantom import make_phantom, write_phantom

ROTATION_DEG = (10.0, -5.0, 25.0)


def _phantom_case(root: Path, **kwargs: Any) -> tuple[Path, Path, dict[str, Any]]:
    series, case = root / "series", root / "case"
    write_phantom(make_phantom("lumbar", seed=3, slices=120, **kwargs), series)
    return series, case, build_case(series, case)


@pytest.fixture(scope="module")
def axial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    return _phantom_case(tmp_path_factory.mktemp("axial"))


@pytest.fixture(scope="module")
def oblique(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """The same anatomy scanned with a patient tilted about all three axes."""
    return _phantom_case(tmp_path_factory.mktemp("oblique"), rotation_deg=ROTATION_DEG)


@pytest.mark.parametrize("scan", ["axial", "oblique"])
def test_segmentation_and_mesh_match_the_phantom_truth(
    scan: str, request: pytest.FixtureRequest
) -> None:
    series, case, _ = request.getfixturevalue(scan)
    found = compare_with_truth(case, series)
    assert found["dice"] >= 0.95, found
    assert abs(found["mesh_volume_error"]) <= 0.03, found


def test_bones_are_named_and_the_nerve_zone_is_labelled(
    axial: tuple[Path, Path, dict[str, Any]],
) -> None:
    _, case, summary = axial
    assert sorted(b["name"] for b in summary["bones"]) == ["L3", "L4", "L5"]
    assert summary["zones_source"] == "phantom truth"
    bundle = load_bundle(case)
    assert np.count_nonzero(bundle.tissue == TissueLabel.NERVE) > 1000
    for name in ("hu", "density_g_cm3", "tissue", "bone_id"):
        assert getattr(bundle, name).shape == tuple(bundle.meta["shape"])
    bone = bundle.bone_id > 0
    assert bundle.density_g_cm3[bone].min() > 0 and bundle.density_g_cm3[~bone].max() == 0
    cortex = bundle.density_g_cm3[bundle.tissue == TissueLabel.CORTEX]
    cancellous = bundle.density_g_cm3[bundle.tissue == TissueLabel.CANCELLOUS]
    assert np.median(cortex) > 2 * np.median(cancellous)


def test_case_json_records_its_source_and_settings(
    axial: tuple[Path, Path, dict[str, Any]],
) -> None:
    series, case, _ = axial
    meta = json.loads((case / "case.json").read_text(encoding="utf-8"))
    first = pydicom.dcmread(sorted(series.glob("*.dcm"))[0], stop_before_pixels=True)
    assert meta["source"]["series_uid"] == first.SeriesInstanceUID
    assert meta["source"]["study_uid"] == first.StudyInstanceUID
    assert meta["spacing_mm"] == 0.5
    assert meta["threshold"] == {"hu": 200.0, "mode": "fixed"}
    assert meta["software"]["name"] == "osteon"
    assert meta["content_hash"].startswith("sha256:") and len(meta["content_hash"]) == 71


@pytest.mark.parametrize("scan", ["axial", "oblique"])
def test_a_landmark_in_patient_coordinates_lands_on_its_voxel(
    scan: str, request: pytest.FixtureRequest
) -> None:
    _, case, _ = request.getfixturevalue(scan)
    bundle = load_bundle(case)
    if scan == "oblique":
        assert not np.allclose(bundle.patient_from_case[:3, :3], np.eye(3))
    checked = 0
    for mark in bundle.meta["landmarks"]:
        if mark["tissue"] not in ("cancellous", "nerve"):
            continue
        index = bundle.index_of_patient_mm(mark["lps_mm"])
        # the voxel's centre, mapped back, lies within half a voxel diagonal of the landmark
        centre = bundle.patient_from_case @ np.append(np.asarray(index) * bundle.spacing_mm, 1)
        distance = np.linalg.norm(centre[:3] - np.asarray(mark["lps_mm"]))
        assert distance <= bundle.spacing_mm * np.sqrt(3) / 2 + 1e-6
        assert TissueLabel(int(bundle.tissue[index])).name.lower() == mark["tissue"], mark
        checked += 1
    assert checked >= 8


def test_the_same_series_builds_to_the_same_hash(
    axial: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    series, case, summary = axial
    again = build_case(series, tmp_path / "again")
    assert again["content_hash"] == summary["content_hash"]
    assert load_bundle(tmp_path / "again").content_hash == load_bundle(case).content_hash


def test_a_tampered_bundle_is_refused(
    axial: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(axial[1], copy)
    meta = json.loads((copy / "case.json").read_text(encoding="utf-8"))
    meta["spacing_mm"] = 0.4
    (copy / "case.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(BundleError, match="hash"):
        load_bundle(copy)


def test_a_failed_build_leaves_nothing_at_out(
    axial: tuple[Path, Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_mesher(*args: object, **kwargs: object) -> None:
        raise MemoryError("simulated failure while meshing")

    monkeypatch.setattr(build_module, "bone_meshes", broken_mesher)
    with pytest.raises(MemoryError):
        build_case(axial[0], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_a_volume_above_the_memory_budget_is_refused_before_building(
    axial: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    # the series itself fits (about 50 MB); the isotropic case grid at 0.2 mm does not
    with pytest.raises(CaseBuildError, match="memory budget"):
        build_case(axial[0], tmp_path / "out", spacing_mm=0.2, memory_budget_bytes=400 * 2**20)
    with pytest.raises(SeriesError, match="memory budget"):
        build_case(axial[0], tmp_path / "out", memory_budget_bytes=10 * 2**20)
    assert not (tmp_path / "out").exists()


def test_cli_builds_a_case_and_reports_json(
    axial: tuple[Path, Path, dict[str, Any]], tmp_path: Path, osteon_cli: CliRunner
) -> None:
    out = tmp_path / "cli-case"
    done = osteon_cli("case", "build", str(axial[0]), str(out), "--threshold", "auto", "--json")
    assert done.exit_code == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["content_hash"] == load_bundle(out).content_hash
    # Otsu over the body separates bone from soft tissue, within the allowed range
    assert 130 <= result["threshold_hu"] <= 700
    assert {"read", "resample", "segment", "mesh", "write"} <= set(result["timings_s"])
    again = osteon_cli("case", "build", str(axial[0]), str(out))
    assert again.exit_code != 0 and "--force" in again.stderr


def _bad_inputs(root: Path, good_series: Path) -> dict[str, tuple[Path, str]]:
    """Directories of bad input, each with the words its error must contain."""
    cases: dict[str, tuple[Path, str]] = {}
    empty = root / "empty"
    empty.mkdir(parents=True)
    cases["empty"] = (empty, "empty")
    text = root / "text"
    text.mkdir()
    (text / "notes.txt").write_text("不是 DICOM / not DICOM", encoding="utf-8")
    (text / "image.dcm").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    cases["non-DICOM"] = (text, "no DICOM")
    radiograph = root / "radiograph"
    radiograph.mkdir()
    shutil.copy(Path(data_store.__file__).parent / "data" / "RG3_UNCR.dcm", radiograph)
    cases["radiograph"] = (radiograph, "RG3_UNCR.dcm")
    files = sorted(good_series.glob("*.dcm"))
    single = root / "single"
    single.mkdir()
    shutil.copy(files[40], single)
    cases["single slice"] = (single, "single")
    truncated = root / "truncated"
    shutil.copytree(good_series, truncated)
    victim = truncated / files[30].name
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    cases["truncated"] = (truncated, files[30].name)
    no_pixels = root / "no-pixels"
    shutil.copytree(good_series, no_pixels)
    ds = pydicom.dcmread(no_pixels / files[20].name)
    del ds.PixelData
    ds.save_as(no_pixels / files[20].name)
    cases["missing pixel data"] = (no_pixels, files[20].name)
    spacing = root / "spacing"
    shutil.copytree(good_series, spacing)
    ds = pydicom.dcmread(spacing / files[50].name)
    ds.PixelSpacing = [0.9, 0.9]
    ds.save_as(spacing / files[50].name)
    cases["inconsistent spacing"] = (spacing, "spacing")
    return cases


def test_every_bad_input_gets_a_clear_error_and_no_case(
    axial: tuple[Path, Path, dict[str, Any]], tmp_path: Path, osteon_cli: CliRunner
) -> None:
    for problem, (series, words) in _bad_inputs(tmp_path / "in", axial[0]).items():
        out = tmp_path / f"out-{problem}"
        result = osteon_cli("case", "build", str(series), str(out))
        assert result.exit_code != 0, problem
        assert words.lower() in result.stderr.lower(), (problem, result.stderr)
        assert "Traceback" not in result.stderr
        assert not out.exists(), problem
    stray = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert stray == []


def test_settings_out_of_range_are_refused(
    axial: tuple[Path, Path, dict[str, Any]], tmp_path: Path, osteon_cli: CliRunner
) -> None:
    for args, words in (
        (["--threshold", "90"], "130-400"),
        (["--threshold", "bone"], "auto"),
        (["--spacing", "5"], "0.2-2.0"),
    ):
        result = osteon_cli("case", "build", str(axial[0]), str(tmp_path / "x"), *args)
        assert result.exit_code != 0 and words in result.stderr, (args, result.stderr)
    assert not (tmp_path / "x").exists()


def test_a_label_map_gives_the_protected_zones_of_a_series_without_truth(
    axial: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    series = tmp_path / "plain"
    series.mkdir()
    for dcm in axial[0].glob("*.dcm"):
        (series / dcm.name).hardlink_to(dcm)
    shape = load_bundle(axial[1]).meta["source"]["slices"], 512, 512
    zones = np.zeros(shape, dtype=np.uint8)
    zones[40:80, 300:330, 240:270] = TissueLabel.VESSEL  # in front of the vertebral bodies
    np.savez(tmp_path / "zones.npz", zones=zones)
    summary = build_case(series, tmp_path / "case", zones_path=tmp_path / "zones.npz")
    assert summary["zones_source"] == "label map zones.npz"
    bundle = load_bundle(tmp_path / "case")
    assert np.count_nonzero(bundle.tissue == TissueLabel.VESSEL) > 0
    assert np.count_nonzero(bundle.tissue == TissueLabel.NERVE) == 0
    zones[0, 0, 0] = TissueLabel.CORTEX
    np.savez(tmp_path / "bad-values.npz", zones=zones)
    np.savez(tmp_path / "bad-shape.npz", zones=zones[1:])
    for name, words in (("bad-values.npz", "must be 0, 4"), ("bad-shape.npz", "differs")):
        with pytest.raises(CaseBuildError, match=words):
            build_case(series, tmp_path / "refused", zones_path=tmp_path / name)
    assert not (tmp_path / "refused").exists()


def test_bone_names_from_a_hostile_sidecar_do_not_become_paths(
    axial: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    series = tmp_path / "series"
    shutil.copytree(axial[0], series)
    truth_path = series / "phantom_truth.json"
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    truth["bones"][0]["name"] = "../../escaped"
    truth_path.write_text(json.dumps(truth), encoding="utf-8")
    summary = build_case(series, tmp_path / "case")
    names = sorted(b["name"] for b in summary["bones"])
    assert "../../escaped" not in names and len(names) == 3
    assert not (tmp_path / "escaped.npz").exists()
    assert sorted(p.stem for p in (tmp_path / "case" / "meshes").iterdir()) == names


@pytest.mark.parametrize(
    "damage",
    [
        lambda truth: "{not json",
        lambda truth: json.dumps({**truth, "landmarks": [{"name": "x", "lps_mm": ["a", 1, 2]}]}),
        lambda truth: json.dumps({**truth, "bones": [{"id": "1", "name": 5}]}),
    ],
    ids=["not JSON", "landmark", "bone"],
)
def test_a_malformed_truth_sidecar_is_a_clear_error(
    axial: tuple[Path, Path, dict[str, Any]], tmp_path: Path, damage: Any
) -> None:
    series = tmp_path / "series"
    shutil.copytree(axial[0], series)
    truth_path = series / "phantom_truth.json"
    truth_path.write_text(damage(json.loads(truth_path.read_text(encoding="utf-8"))))
    with pytest.raises(CaseBuildError, match="sidecar"):
        build_case(series, tmp_path / "case")
    assert not (tmp_path / "case").exists()


def _rehashed_copy(case: Path, out: Path, edit: Any) -> Path:
    """A copy of ``case`` changed by ``edit(meta, grids, meshes)``, with a matching hash, so
    only the content checks can refuse it."""
    from sim_core.case.bundle import Mesh, content_hash

    bundle = load_bundle(case)
    meta = dict(bundle.meta)
    grids = {n: np.array(getattr(bundle, n)) for n in ("hu", "density_g_cm3", "tissue", "bone_id")}
    meshes = [Mesh(m.name, np.array(m.vertices_mm), np.array(m.faces)) for m in bundle.meshes]
    edit(meta, grids, meshes)
    shutil.copytree(case, out)
    np.savez(out / "volume.npz", **grids)
    for mesh in meshes:
        np.savez(
            out / "meshes" / f"{mesh.name}.npz", vertices_mm=mesh.vertices_mm, faces=mesh.faces
        )
    meta.pop("content_hash")
    meta["content_hash"] = content_hash(meta, grids, meshes)
    (out / "case.json").write_text(json.dumps(meta), encoding="utf-8")
    return out


def _face_out_of_range(meta: Any, grids: Any, meshes: Any) -> None:
    meshes[0].faces[0, 0] = len(meshes[0].vertices_mm) + 5


def _grid_of_another_type(meta: Any, grids: Any, meshes: Any) -> None:
    grids["tissue"] = grids["tissue"].astype(np.int64)


def _nan_vertex(meta: Any, grids: Any, meshes: Any) -> None:
    meshes[0].vertices_mm[3] = np.nan


@pytest.mark.parametrize("edit", [_face_out_of_range, _grid_of_another_type, _nan_vertex])
def test_a_bundle_with_a_valid_hash_but_broken_content_is_refused(
    axial: tuple[Path, Path, dict[str, Any]], tmp_path: Path, edit: Any
) -> None:
    broken = _rehashed_copy(axial[1], tmp_path / "broken", edit)
    with pytest.raises(BundleError, match="corrupt"):
        load_bundle(broken)
