"""write_ct_series: real CT Image Storage files, deterministic, all or nothing."""

from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from ct_dicom_fixtures import make_volume, rotation_about_z, write_volume
from pydicom import config
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian

from sim_core.ct.dicom_writer import write_ct_series
from sim_core.ct.volume import CtVolume


def _read_all(files: list[Path]) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(f) for f in files]


def test_it_writes_one_ct_image_storage_file_per_slice(
    series_files: list[Path], small_volume: CtVolume
) -> None:
    datasets = _read_all(series_files)

    assert len(series_files) == small_volume.hu.shape[0]
    assert [f.name for f in series_files] == [f"CT{k:04d}.dcm" for k in range(1, 6)]
    for k, ds in enumerate(datasets):
        assert ds.preamble == b"\0" * 128
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPClassUID == CTImageStorage
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPClassUID == CTImageStorage
        assert ds.Modality == "CT"
        assert ds.Manufacturer == "Osteon phantom"
        assert ds.InstanceNumber == k + 1
        assert (ds.Rows, ds.Columns) == small_volume.hu.shape[1:]
        assert (ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == (16, 16, 1)
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, -1024.0)
        assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (400.0, 1800.0)
        assert [float(v) for v in ds.PixelSpacing] == [0.7, 0.6]
        assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == 1.25
        expected_position = small_volume.patient_from_index @ [k, 0, 0, 1]
        np.testing.assert_allclose(
            [float(v) for v in ds.ImagePositionPatient], expected_position[:3]
        )
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert float(ds.SliceLocation) == pytest.approx(88.0 + 1.25 * k)
        # the stored values are exactly HU + 1024
        np.testing.assert_array_equal(ds.pixel_array.astype(np.int32) - 1024, small_volume.hu[k])

    # one study, series and frame of reference; one valid, distinct UID per instance
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert len({ds[keyword].value for ds in datasets}) == 1
    uids = [UID(ds.SOPInstanceUID) for ds in datasets]
    uids += [UID(datasets[0][kw].value) for kw in ("StudyInstanceUID", "SeriesInstanceUID")]
    assert all(uid.is_valid for uid in uids)
    assert len(set(uids)) == len(uids)
    assert {(ds.StudyDate, ds.StudyTime) for ds in datasets} == {("20240101", "120000")}


def test_it_writes_files_that_pass_strict_validation(series_files: list[Path]) -> None:
    strict = config.settings.reading_validation_mode
    config.settings.reading_validation_mode = config.RAISE
    try:
        for ds in _read_all(series_files):
            for element in ds.iterall():
                _ = element.value  # every value converts under RAISE
    finally:
        config.settings.reading_validation_mode = strict


def test_it_round_trips_a_chinese_patient_name(tmp_path: Path, small_volume: CtVolume) -> None:
    files = write_volume(small_volume, tmp_path / "s", patient_name="张三", patient_id="滇-001")

    ds = pydicom.dcmread(files[0])

    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == "张三"
    assert ds.PatientID == "滇-001"
    assert "张三".encode() in files[0].read_bytes()


def test_it_writes_identical_bytes_for_the_same_volume_and_ids(
    tmp_path: Path, small_volume: CtVolume
) -> None:
    first = write_volume(small_volume, tmp_path / "a")
    again = write_volume(make_volume(), tmp_path / "b")

    assert [f.read_bytes() for f in first] == [f.read_bytes() for f in again]


def test_it_gives_other_uids_to_other_content_and_the_given_root(
    tmp_path: Path, small_volume: CtVolume
) -> None:
    base = pydicom.dcmread(write_volume(small_volume, tmp_path / "a")[0])
    other_voxels = pydicom.dcmread(write_volume(make_volume(seed=1), tmp_path / "b")[0])
    other_patient = pydicom.dcmread(write_volume(small_volume, tmp_path / "c", patient_id="P2")[0])
    rooted = write_volume(small_volume, tmp_path / "d", seed_uid_root="1.2.826.0.1.3680043.10.9.")

    assert base.SeriesInstanceUID.startswith("2.25.")
    assert other_voxels.SeriesInstanceUID != base.SeriesInstanceUID
    assert other_voxels.StudyInstanceUID == base.StudyInstanceUID  # same patient and study
    assert other_patient.StudyInstanceUID != base.StudyInstanceUID
    assert pydicom.dcmread(rooted[0]).SOPInstanceUID.startswith("1.2.826.0.1.3680043.10.9.")


def test_it_keeps_hu_that_unsigned_storage_could_not_hold(tmp_path: Path) -> None:
    volume = make_volume()
    volume.hu[0, 1, 1], volume.hu[1, 1, 1] = -31744, 31743

    files = write_volume(volume, tmp_path / "s")

    for k in (0, 1):
        stored = pydicom.dcmread(files[k]).pixel_array.astype(np.int32)
        np.testing.assert_array_equal(stored - 1024, volume.hu[k])


def test_it_refuses_hu_above_what_signed_storage_holds(tmp_path: Path) -> None:
    volume = make_volume()
    volume.hu[2, 3, 4] = 31744

    with pytest.raises(ValueError, match="31744"):
        write_volume(volume, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_it_refuses_a_sheared_or_left_handed_grid(tmp_path: Path) -> None:
    volume = make_volume()
    left_handed = volume.patient_from_index.copy()
    left_handed[:3, 0] *= -1
    sheared = volume.patient_from_index.copy()
    sheared[0, 0] = 0.3  # slices step sideways: gantry tilt

    for affine in (left_handed, sheared):
        with pytest.raises(ValueError, match="slice axis"):
            write_volume(CtVolume(hu=volume.hu, patient_from_index=affine), tmp_path / "s")


def test_it_leaves_nothing_behind_when_a_write_fails(
    tmp_path: Path, small_volume: CtVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[Path] = []

    def dcmwrite_until_disk_full(path: Path, ds: pydicom.Dataset, **kwargs: Any) -> None:
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        written.append(path)
        dcmwrite(path, ds, **kwargs)

    monkeypatch.setattr("sim_core.ct.dicom_writer.dcmwrite", dcmwrite_until_disk_full)

    with pytest.raises(OSError, match="No space"):
        write_volume(small_volume, tmp_path / "out" / "series")

    assert len(written) == 3
    assert list((tmp_path / "out").iterdir()) == []


def test_it_refuses_a_non_empty_output_directory(tmp_path: Path, small_volume: CtVolume) -> None:
    out = tmp_path / "series"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")

    with pytest.raises(FileExistsError):
        write_volume(small_volume, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_it_writes_into_an_existing_empty_directory_and_reports_progress(
    tmp_path: Path,
) -> None:
    out = tmp_path / "series"
    out.mkdir()
    volume = make_volume(shape=(40, 4, 4))
    steps: list[tuple[str, float]] = []

    files = write_ct_series(
        volume,
        out,
        patient_name="李四",
        patient_id="P3",
        progress=lambda s, f: steps.append((s, f)),
    )

    assert sorted(out.iterdir()) == files
    fractions = [f for _, f in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all("writing" in s for s, _ in steps)


def test_it_writes_an_oblique_grid_as_its_orientation(tmp_path: Path) -> None:
    turn = rotation_about_z(20.0)
    volume = make_volume(row_dir=turn[:, 0], col_dir=turn[:, 1])

    ds = pydicom.dcmread(write_volume(volume, tmp_path / "s")[2])

    iop = [float(v) for v in ds.ImageOrientationPatient]
    np.testing.assert_allclose(iop, [*turn[:, 0], *turn[:, 1]], atol=1e-12)
    np.testing.assert_allclose(
        [float(v) for v in ds.ImagePositionPatient], (volume.patient_from_index @ [2, 0, 0, 1])[:3]
    )
