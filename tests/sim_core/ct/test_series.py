"""read_series / list_series: real CT slices and written series in, HU or clear errors out."""

import math
import os
import random
from pathlib import Path

import numpy as np
import pydicom
import pytest
from ct_dicom_fixtures import (
    copy_real,
    edit_file,
    make_volume,
    real_ct_series,
    real_file,
    rotation_about_z,
    write_volume,
)
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1, RLELossless

import sim_core.ct.series as series_module
from sim_core.ct.errors import SeriesError
from sim_core.ct.series import list_series, read_series
from sim_core.ct.volume import CtVolume


def _real_hu(name: str) -> np.ndarray:
    ds = pydicom.dcmread(real_file(name))
    return ds.pixel_array.astype(np.int32) * int(ds.RescaleSlope) + int(ds.RescaleIntercept)


def _refusal(directory: Path, **kwargs: object) -> SeriesError:
    with pytest.raises(SeriesError) as caught:
        read_series(directory, **kwargs)  # type: ignore[arg-type]
    return caught.value


# ---------------------------------------------------------------------------------------------
# round trip


@pytest.mark.parametrize(
    ("row_dir", "col_dir"),
    [
        # rotated 20 degrees about z, columns flipped: the normal points to the feet, so the
        # slices are written head first (descending z)
        (rotation_about_z(20.0)[:, 0], -rotation_about_z(20.0)[:, 1]),
        # oblique: tipped 30 degrees about the patient x axis
        ((1.0, 0.0, 0.0), (0.0, math.cos(math.pi / 6), math.sin(math.pi / 6))),
    ],
)
def test_it_reads_back_a_written_series_exactly(
    tmp_path: Path, row_dir: tuple[float, ...], col_dir: tuple[float, ...]
) -> None:
    volume = make_volume(shape=(7, 12, 10), row_dir=row_dir, col_dir=col_dir)
    files = write_volume(volume, tmp_path / "series")
    written = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
    # shuffle the file names and reverse the instance numbers: order comes from positions only
    shuffled = list(files)
    random.Random(3).shuffle(shuffled)
    for k, path in enumerate(files):

        def renumber(ds: Dataset, k: int = k) -> None:
            ds.InstanceNumber = len(files) - k

        edit_file(path, renumber)
        path.rename(path.with_name(f"x{shuffled.index(path):02d}_{k * 7919 % 1000}"))

    read = read_series(tmp_path / "series")

    np.testing.assert_array_equal(read.hu, volume.hu)
    assert read.hu.dtype == np.int16
    np.testing.assert_allclose(read.patient_from_index, volume.patient_from_index, atol=1e-6)
    assert read.sop_uids == tuple(ds.SOPInstanceUID for ds in written)
    assert read.series_uid == written[0].SeriesInstanceUID
    assert read.study_uid == written[0].StudyInstanceUID
    assert read.patient_id == "P0001"
    assert set(read.transfer_syntaxes) == {"1.2.840.10008.1.2.1"}


def test_it_finds_a_series_in_subdirectories_beside_non_dicom_files(
    tmp_path: Path, small_volume: CtVolume
) -> None:
    write_volume(small_volume, tmp_path / "export" / "DICOM" / "S1")
    (tmp_path / "export" / "README.txt").write_text("exported by PACS")
    (tmp_path / "export" / "DICOM" / "S1" / "truth.json").write_text("{}")
    np.save(tmp_path / "export" / "grid.npy", np.zeros(4))

    read = read_series(tmp_path / "export")

    np.testing.assert_array_equal(read.hu, small_volume.hu)


def test_it_reports_progress_of_both_passes(tmp_path: Path, series_files: list[Path]) -> None:
    steps: list[tuple[str, float]] = []

    read_series(series_files[0].parent, progress=lambda s, f: steps.append((s, f)))

    assert any("headers" in s and f == 1.0 for s, f in steps)
    assert steps[-1] == ("读取 CT 像素 / reading CT pixels", 1.0)


# ---------------------------------------------------------------------------------------------
# real scanner data and compressed transfer syntaxes


def test_a_stack_of_real_ct_slices_reads_with_the_real_slice_hu(tmp_path: Path) -> None:
    real_ct_series(tmp_path / "s", "693_UNCR.dcm", count=3, step_mm=1.0)

    read = read_series(tmp_path / "s")

    expected = _real_hu("693_UNCR.dcm")
    assert read.hu.shape == (3, 512, 512)
    for k in range(3):
        np.testing.assert_array_equal(read.hu[k], expected)
    np.testing.assert_allclose(read.spacing_mm, (1.0, 0.478516, 0.478516))
    np.testing.assert_allclose(read.patient_from_index[:3, 3], (-122.5, -112.4, 47.0))


def test_lossless_jpeg_2000_decodes_to_the_uncompressed_hu(tmp_path: Path) -> None:
    real_ct_series(tmp_path / "unc", "693_UNCR.dcm", count=2)
    real_ct_series(tmp_path / "j2k", "693_J2KR.dcm", count=2)

    uncompressed = read_series(tmp_path / "unc")
    jpeg_2000 = read_series(tmp_path / "j2k")

    assert set(jpeg_2000.transfer_syntaxes) == {JPEG2000Lossless}
    np.testing.assert_array_equal(jpeg_2000.hu, uncompressed.hu)


def test_the_lossy_original_reads_as_the_same_image(tmp_path: Path) -> None:
    # 693_UNCI is 693_J2KI decompressed: lossy, so close to the lossless HU but not equal
    real_ct_series(tmp_path / "unci", "693_UNCI.dcm", count=2)

    lossy = read_series(tmp_path / "unci").hu[0].astype(np.float64)

    lossless = _real_hu("693_UNCR.dcm").astype(np.float64)
    assert np.corrcoef(lossy.ravel(), lossless.ravel())[0, 1] > 0.99
    assert not np.array_equal(lossy, lossless)


# the anonymiser of this real file wrote hashes where UIDs belong: pydicom warns, reads it fine
@pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:The value length")
def test_a_real_jpeg_lossless_ct_reads_with_its_12_bit_hu(tmp_path: Path) -> None:
    # a Siemens CT slice, JPEG lossless process 14 SV1, 12 bits stored
    real_ct_series(tmp_path / "s", "bad_sequence.dcm", count=2, step_mm=1.0)

    read = read_series(tmp_path / "s")

    assert set(read.transfer_syntaxes) == {JPEGLosslessSV1}
    np.testing.assert_array_equal(read.hu[1], _real_hu("bad_sequence.dcm"))


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_it_decodes_series_compressed_after_writing(tmp_path: Path, syntax: str) -> None:
    volume = make_volume(shape=(3, 64, 48))
    files = write_volume(volume, tmp_path / "s")
    for path in files:
        edit_file(path, lambda ds: ds.compress(syntax))

    read = read_series(tmp_path / "s")

    assert set(read.transfer_syntaxes) == {syntax}
    np.testing.assert_array_equal(read.hu, volume.hu)


def test_it_applies_rescale_slope_and_intercept_and_clips_to_int16(tmp_path: Path) -> None:
    def rescale(ds: Dataset, k: int) -> None:
        ds.RescaleSlope, ds.RescaleIntercept = (0.5, -1000.5) if k == 0 else (20, 0)

    real_ct_series(tmp_path / "s", count=2, change=rescale)

    read = read_series(tmp_path / "s")

    stored = pydicom.dcmread(real_file("693_UNCR.dcm")).pixel_array.astype(np.float64)
    np.testing.assert_array_equal(read.hu[0], np.rint(stored * 0.5 - 1000.5))
    np.testing.assert_array_equal(read.hu[1], np.clip(stored * 20, -32768, 32767))
    assert read.hu[1].max() == 32767 and read.hu[1].min() == -32768


# ---------------------------------------------------------------------------------------------
# choosing among several series


def test_it_lists_every_series_and_refuses_to_guess(tmp_path: Path) -> None:
    write_volume(make_volume(), tmp_path / "a", series_description="骨窗 bone")
    write_volume(make_volume(shape=(3, 8, 8), seed=2), tmp_path / "b", series_description="soft")

    summaries = list_series(tmp_path)
    refusal = _refusal(tmp_path)

    assert sorted((s.description, s.slice_count, s.modality) for s in summaries) == [
        ("soft", 3, "CT"),
        ("骨窗 bone", 5, "CT"),
    ]
    message = str(refusal)
    assert message.startswith(f"{tmp_path}: ")
    assert "--series" in message and "2 series" in message
    for summary in summaries:
        assert summary.series_uid in message
        assert repr(summary.description) in message
    chosen = read_series(tmp_path, series_uid=summaries[1].series_uid)
    assert chosen.series_uid == summaries[1].series_uid


def test_it_refuses_an_unknown_series_uid_and_lists_the_others(
    series_files: list[Path],
) -> None:
    refusal = _refusal(series_files[0].parent, series_uid="1.2.3.4")

    assert "no series 1.2.3.4" in str(refusal)
    assert pydicom.dcmread(series_files[0]).SeriesInstanceUID in str(refusal)


# ---------------------------------------------------------------------------------------------
# bad input: one SeriesError naming the file or directory


def test_it_refuses_a_missing_directory_a_file_and_an_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.dcm").write_bytes(b"")

    assert str(_refusal(tmp_path / "nowhere")) == (
        f"{tmp_path / 'nowhere'}: 目录不存在 / directory does not exist"
    )
    assert "not a directory" in str(_refusal(tmp_path / "file.dcm"))
    assert str(_refusal(tmp_path / "empty")).endswith("directory is empty")
    with pytest.raises(SeriesError, match="does not exist"):
        list_series(tmp_path / "nowhere")


def test_it_refuses_a_directory_without_dicom(tmp_path: Path) -> None:
    (tmp_path / "scan.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(300))
    (tmp_path / "notes.txt").write_text("CT tomorrow")

    refusal = _refusal(tmp_path)

    assert str(refusal) == f"{tmp_path}: 2 个文件中没有 DICOM 图像 / no DICOM image among 2 files"


def test_it_refuses_a_single_slice(tmp_path: Path) -> None:
    files = write_volume(make_volume(shape=(1, 8, 8)), tmp_path / "s")

    refusal = _refusal(tmp_path / "s")

    assert refusal.path == files[0]
    assert "only one slice" in str(refusal)


def test_it_refuses_a_radiograph_naming_the_file(tmp_path: Path) -> None:
    radiograph = copy_real("RG3_UNCR.dcm", tmp_path / "xr")

    refusal = _refusal(tmp_path / "xr")

    assert refusal.path == radiograph
    assert str(refusal).startswith(f"{radiograph}: ")
    assert "is a radiograph (CR), not a CT series" in str(refusal)


def test_it_refuses_a_ct_image_without_position_as_a_radiograph(
    series_files: list[Path],
) -> None:
    edit_file(series_files[1], lambda ds: delattr(ds, "ImagePositionPatient"))

    refusal = _refusal(series_files[0].parent)

    assert refusal.path == series_files[1]
    assert "radiograph" in str(refusal)


def test_it_refuses_another_modality(tmp_path: Path) -> None:
    copy_real("MR2_UNCR.dcm", tmp_path / "mr")

    assert "modality is MR, not a CT series" in str(_refusal(tmp_path / "mr"))


def test_it_refuses_a_ct_localizer(series_files: list[Path]) -> None:
    for path in series_files:
        edit_file(path, lambda ds: setattr(ds, "ImageType", ["ORIGINAL", "PRIMARY", "LOCALIZER"]))

    assert "localizer" in str(_refusal(series_files[0].parent))


def test_it_refuses_multi_frame_ct(series_files: list[Path]) -> None:
    edit_file(series_files[0], lambda ds: setattr(ds, "NumberOfFrames", 2))

    refusal = _refusal(series_files[0].parent)

    assert refusal.path == series_files[0]
    assert "multi-frame" in str(refusal)


def test_it_refuses_a_slice_without_pixel_data(series_files: list[Path]) -> None:
    edit_file(series_files[2], lambda ds: delattr(ds, "PixelData"))

    refusal = _refusal(series_files[0].parent)

    assert str(refusal) == f"{series_files[2]}: 没有像素数据 / no pixel data"


def test_it_refuses_a_truncated_file(series_files: list[Path]) -> None:
    data = series_files[3].read_bytes()
    series_files[3].write_bytes(data[:-50])

    refusal = _refusal(series_files[0].parent)

    assert refusal.path == series_files[3]
    assert "pixel data shorter than expected (190 < 240 bytes)" in str(refusal)


def test_it_refuses_a_corrupt_compressed_codestream(tmp_path: Path) -> None:
    # the real JPEG 2000 slice with its codestream cut in half (the element lengths stay valid)
    files = real_ct_series(tmp_path / "s", "693_J2KR.dcm", count=3)

    def cut_codestream(ds: Dataset) -> None:
        codestream = next(generate_frames(ds.PixelData, number_of_frames=1))
        ds.PixelData = encapsulate([codestream[: len(codestream) // 2]])

    edit_file(files[1], cut_codestream)

    refusal = _refusal(tmp_path / "s")

    assert refusal.path == files[1]
    assert "cannot decode pixel data (JPEG 2000 Image Compression (Lossless Only))" in str(refusal)


@pytest.mark.filterwarnings("ignore:The value length")  # pydicom warns about the bad value too
def test_it_refuses_a_corrupt_header(tmp_path: Path, series_files: list[Path]) -> None:
    data = bytearray(series_files[1].read_bytes())
    # ImageOrientationPatient holds text that is no number
    at = data.index(b"\x20\x00\x37\x00DS")
    length = int.from_bytes(data[at + 6 : at + 8], "little")
    data[at + 8 : at + 8 + length] = b"x" * length
    series_files[1].write_bytes(bytes(data))

    refusal = _refusal(series_files[0].parent)

    assert str(refusal) == (
        f"{series_files[1]}: ImageOrientationPatient 不是数字 / "
        "ImageOrientationPatient is not numeric"
    )


def test_it_refuses_slices_of_another_size(series_files: list[Path]) -> None:
    def shrink(ds: Dataset) -> None:
        ds.Rows = 6
        ds.PixelData = ds.PixelData[: 6 * 10 * 2]

    edit_file(series_files[2], shrink)

    refusal = _refusal(series_files[0].parent)

    assert refusal.path == series_files[2]
    assert "image size 6 x 10 differs from 12 x 10 in CT0001.dcm" in str(refusal)


def test_it_refuses_slices_with_another_pixel_spacing(series_files: list[Path]) -> None:
    edit_file(series_files[4], lambda ds: setattr(ds, "PixelSpacing", [0.7, 0.65]))

    refusal = _refusal(series_files[0].parent)

    assert refusal.path == series_files[4]
    assert "pixel spacing [0.7, 0.65] mm differs from [0.7, 0.6] mm" in str(refusal)


def test_it_refuses_slices_with_another_orientation(series_files: list[Path]) -> None:
    turn = rotation_about_z(5.0)
    edit_file(
        series_files[1],
        lambda ds: setattr(ds, "ImageOrientationPatient", [*turn[:, 0], *turn[:, 1]]),
    )

    refusal = _refusal(series_files[0].parent)

    assert refusal.path == series_files[1]
    assert "Image Orientation (Patient)" in str(refusal) and "differs" in str(refusal)


def test_it_names_the_gap_of_a_missing_slice(series_files: list[Path]) -> None:
    series_files[2].unlink()

    refusal = _refusal(series_files[0].parent)

    assert refusal.path == series_files[0].parent
    assert (
        "1 missing slice(s): gap between slice at z=89.250 (CT0002.dcm) / z=91.750 (CT0004.dcm)"
        " is 2.500 mm, spacing elsewhere 1.250 mm"
    ) in str(refusal)


def test_it_refuses_uneven_spacing(series_files: list[Path]) -> None:
    def nudge(ds: Dataset) -> None:
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + 0.4]

    edit_file(series_files[3], nudge)

    refusal = _refusal(series_files[0].parent)

    assert "uneven slice spacing: 1.650 mm between slice at z=90.500 (CT0003.dcm)" in str(refusal)


def test_it_accepts_positions_rounded_by_the_scanner(series_files: list[Path]) -> None:
    def round_position(ds: Dataset) -> None:
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, round(z + 0.004, 2)]

    for path in series_files[1::2]:
        edit_file(path, round_position)

    read = read_series(series_files[0].parent)

    assert read.spacing_mm[0] == pytest.approx(1.25, abs=0.01)


def test_it_refuses_two_slices_at_the_same_position(series_files: list[Path]) -> None:
    position = pydicom.dcmread(series_files[1]).ImagePositionPatient
    edit_file(series_files[2], lambda ds: setattr(ds, "ImagePositionPatient", position))

    assert "two slices at the same position" in str(_refusal(series_files[0].parent))


def test_it_refuses_gantry_tilt(tmp_path: Path) -> None:
    files = write_volume(make_volume(shape=(6, 8, 8)), tmp_path / "s")
    tilt = math.tan(math.radians(15.0))
    for k, path in enumerate(files):

        def shear(ds: Dataset, k: int = k) -> None:
            x, y, z = (float(v) for v in ds.ImagePositionPatient)
            ds.ImagePositionPatient = [x, y + k * 1.25 * tilt, z]
            ds.GantryDetectorTilt = 15

        edit_file(path, shear)

    refusal = _refusal(tmp_path / "s")

    assert "gantry tilt of about 15.0 degrees" in str(refusal)
    assert "not supported" in str(refusal)


def test_it_refuses_a_volume_above_the_memory_budget_before_reading_pixels(
    series_files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pixel_reads: list[object] = []
    header_reads: list[bool] = []
    real_dcmread = pydicom.dcmread

    def spy_pixel_array(*args: object, **kwargs: object) -> None:
        pixel_reads.append(args)

    def spy_dcmread(fp: object, **kwargs: bool) -> Dataset:
        header_reads.append(kwargs.get("stop_before_pixels", False))
        return real_dcmread(fp, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(series_module, "pixel_array", spy_pixel_array)
    monkeypatch.setattr(series_module, "dcmread", spy_dcmread)
    needed = 5 * 12 * 10 * 2

    refusal = _refusal(series_files[0].parent, memory_budget_bytes=needed - 1)

    assert f"5 slices x 12 x 10 x 2 bytes = {needed} bytes" in str(refusal)
    assert f"above the memory budget of {needed - 1} bytes" in str(refusal)
    assert pixel_reads == []
    assert header_reads == [True] * 5


def test_it_refuses_huge_declared_images_in_tiny_files(series_files: list[Path]) -> None:
    def enlarge(ds: Dataset) -> None:
        ds.Rows = ds.Columns = 65535

    for path in series_files:
        edit_file(path, enlarge)
    assert all(os.path.getsize(p) < 10_000 for p in series_files)

    refusal = _refusal(series_files[0].parent)

    assert f"5 slices x 65535 x 65535 x 2 bytes = {5 * 65535 * 65535 * 2} bytes" in str(refusal)
    assert f"memory budget of {4 * 2**30} bytes" in str(refusal)


def test_it_reads_a_copied_instance_once(series_files: list[Path]) -> None:
    duplicate = series_files[0].parent / "copy" / "CT0002.dcm"
    duplicate.parent.mkdir()
    duplicate.write_bytes(series_files[1].read_bytes())

    assert read_series(series_files[0].parent).hu.shape[0] == 5
