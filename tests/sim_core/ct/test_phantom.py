"""CT phantoms: realistic attenuation per tissue, real DICOM, deterministic, truthful sidecar."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from osteon_cli import CliRunner
from scipy import ndimage

from sim_core.case.bundle import TissueLabel
from sim_core.ct.phantom import TRUTH_JSON, Phantom, make_phantom, read_truth, write_phantom

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(scope="module")
def lumbar() -> Phantom:
    return make_phantom("lumbar", seed=11, slices=48)


@pytest.fixture(scope="module")
def osteoporotic_lumbar() -> Phantom:
    return make_phantom("lumbar", seed=11, slices=48, osteoporotic=True)


def _deep(phantom: Phantom, label: TissueLabel, depth: int = 2) -> np.ndarray[Any, Any]:
    """HU of voxels of one truth tissue, ``depth`` voxels away from any other tissue."""
    core = ndimage.binary_erosion(phantom.tissue == label, iterations=depth)
    return phantom.volume.hu[core].astype(np.float64)


def test_bone_tissues_have_clinical_attenuation(
    lumbar: Phantom, osteoporotic_lumbar: Phantom
) -> None:
    # cortex is one to three voxels thick: only its core is free of partial volume
    cortex = _deep(lumbar, TissueLabel.CORTEX, depth=1)
    cancellous = _deep(lumbar, TissueLabel.CANCELLOUS)
    assert cortex.size > 1000 and cancellous.size > 10_000
    assert np.percentile(cortex, 5) >= 1000 and np.percentile(cortex, 95) <= 1800
    assert np.percentile(cancellous, 5) >= 150 and np.percentile(cancellous, 95) <= 400
    # the osteoporosis screening cut-off: L1-L4 trabecular bone at or below 110 HU
    weak = _deep(osteoporotic_lumbar, TissueLabel.CANCELLOUS)
    assert np.median(weak) <= 110 and np.median(weak) > 50


def test_soft_tissue_and_air_have_clinical_attenuation(lumbar: Phantom) -> None:
    hu = lumbar.volume.hu
    corner = hu[:, :12, :12].astype(np.float64)
    assert abs(corner.mean() + 1000) < 25  # air outside the body (clipped at -1024 below)
    truth = json.loads(json.dumps(lumbar.truth))
    assert truth["hu"]["noise_sd"] > 0
    # a histogram of the body shows a fat peak near -100 HU and a muscle peak near +45 HU
    body = hu[(hu > -300) & (hu < 120)].astype(np.float64)
    counts, edges = np.histogram(body, bins=84, range=(-300, 120))
    centres = (edges[:-1] + edges[1:]) / 2
    fat_peak = centres[np.argmax(np.where(centres < -30, counts, 0))]
    muscle_peak = centres[np.argmax(np.where(centres > 0, counts, 0))]
    assert -130 <= fat_peak <= -70
    assert 25 <= muscle_peak <= 65


def test_edges_are_partial_volume_not_a_binary_step(lumbar: Phantom) -> None:
    bone = np.isin(lumbar.tissue, (TissueLabel.CORTEX, TissueLabel.CANCELLOUS))
    rim = ndimage.binary_dilation(bone) & ~bone
    rim_hu = lumbar.volume.hu[rim].astype(np.float64)
    # voxels just outside the bone are part bone: between soft tissue and cortex
    assert np.mean((rim_hu > 150) & (rim_hu < 1000)) > 0.2


def test_lumbar_has_three_vertebrae_and_a_nerve_zone_in_the_canal(lumbar: Phantom) -> None:
    names = [b["name"] for b in lumbar.truth["bones"]]
    assert names == ["L3", "L4", "L5"]
    assert np.count_nonzero(lumbar.tissue == TissueLabel.NERVE) > 1000
    affine_inv = np.linalg.inv(lumbar.volume.patient_from_index)
    for mark in lumbar.truth["landmarks"]:
        if mark["tissue"] not in ("nerve", "cancellous"):
            continue
        idx = np.rint(affine_inv @ np.append(mark["lps_mm"], 1.0))[:3].astype(int)
        if not all(0 <= i < n for i, n in zip(idx, lumbar.tissue.shape, strict=True)):
            continue
        got = TissueLabel(int(lumbar.tissue[tuple(idx)])).name.lower()
        assert got == mark["tissue"], mark["name"]


@pytest.mark.parametrize(
    ("region", "bones"),
    [("hip", {"femur", "pelvis"}), ("knee", {"femur", "tibia"})],
)
def test_hip_and_knee_hold_their_bones(region: str, bones: set[str]) -> None:
    phantom = make_phantom(region, seed=2, slices=24, matrix=192)
    names = {b["name"] for b in phantom.truth["bones"]}
    assert bones <= names
    present = set(np.unique(phantom.bone_id).tolist())
    for bone in phantom.truth["bones"]:
        if bone["name"] in bones:
            assert bone["id"] in present and bone["volume_mm3"] > 10_000, bone


def test_truth_volume_agrees_with_the_label_map(lumbar: Phantom) -> None:
    voxel_mm3 = float(np.prod(lumbar.volume.spacing_mm))
    labelled = np.count_nonzero(
        np.isin(lumbar.tissue, (TissueLabel.CORTEX, TissueLabel.CANCELLOUS))
    )
    # the truth integrates partial voxels, the label map counts voxel centres: close, not equal
    assert labelled * voxel_mm3 == pytest.approx(lumbar.truth["bone_volume_mm3"], rel=0.03)


def test_same_seed_same_series_other_seed_other_noise(tmp_path: Path) -> None:
    a = make_phantom("knee", seed=5, slices=6, matrix=96)
    b = make_phantom("knee", seed=5, slices=6, matrix=96)
    c = make_phantom("knee", seed=6, slices=6, matrix=96)
    assert np.array_equal(a.volume.hu, b.volume.hu)
    assert not np.array_equal(a.volume.hu, c.volume.hu)
    files_a = write_phantom(a, tmp_path / "a")
    files_b = write_phantom(b, tmp_path / "b")
    assert [f.read_bytes() for f in files_a] == [f.read_bytes() for f in files_b]


def test_written_series_is_real_ct_with_a_chinese_name(tmp_path: Path) -> None:
    phantom = make_phantom(
        "lumbar", seed=4, slices=5, matrix=64, pixel_mm=4.0, rotation_deg=(0, 0, 20)
    )
    files = write_phantom(phantom, tmp_path / "series")
    assert len(files) == 5
    series_uids = set()
    for path in files:
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == CT_IMAGE_STORAGE
        assert ds.Modality == "CT"
        assert ds.SpecificCharacterSet == "ISO_IR 192"
        assert str(ds.PatientName) == phantom.truth["patient_name"]
        assert any("\u4e00" <= ch <= "\u9fff" for ch in str(ds.PatientName))
        for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID):
            assert uid.is_valid
        assert len(ds.ImageOrientationPatient) == 6 and len(ds.ImagePositionPatient) == 3
        assert float(ds.SliceThickness) > 0 and len(ds.PixelSpacing) == 2
        assert float(ds.RescaleSlope) == 1.0
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert hu.min() == pytest.approx(-1000, abs=60)  # air in the field of view
        assert hu.max() >= 300  # and bone
        series_uids.add(ds.SeriesInstanceUID)
    assert len(series_uids) == 1
    found = read_truth(tmp_path / "series")
    assert found is not None
    truth, tissue, bone_id = found
    assert truth["series_uid"] == series_uids.pop()
    assert tissue.shape == bone_id.shape == phantom.volume.hu.shape


def test_cli_writes_a_series_and_refuses_a_non_empty_directory(
    tmp_path: Path, osteon_cli: CliRunner
) -> None:
    out = tmp_path / "ct"
    args = ["phantom", "ct", str(out), "--region", "knee", "--slices", "4", "--matrix", "64"]
    done = osteon_cli(*args, "--json")
    assert done.exit_code == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["files"] == 4 and (out / TRUTH_JSON).is_file()
    again = osteon_cli(*args)
    assert again.exit_code != 0
    assert "exists and is not empty" in again.stderr
    unknown = osteon_cli("phantom", "ct", str(tmp_path / "x"), "--region", "skull")
    assert unknown.exit_code != 0 and "unknown region" in unknown.stderr
    assert not (tmp_path / "x").exists()
