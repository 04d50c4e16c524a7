"""Reading a directory of DICOM files into a CT volume in HU, refusing anything that is not one.

Two passes: headers first (no pixel data read), where the series is chosen, sorted along the
slice normal and checked (modality, size, spacing, orientation, gaps, gantry tilt, memory
budget); then pixels, decoded with pydicom (uncompressed, RLE, JPEG lossless and JPEG 2000
through the pylibjpeg plugins) and rescaled to int16 HU. Every refusal is a ``SeriesError``
naming the file or directory.
"""

import math
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.utils import pixel_array
from pydicom.uid import UID, CTImageStorage, EnhancedCTImageStorage

from sim_core.ct.errors import SeriesError
from sim_core.ct.volume import CtVolume, affine_from_geometry

Progress = Callable[[str, float], None]

DEFAULT_MEMORY_BUDGET_BYTES = 4 * 2**30
# projection radiography, fluoroscopy and angiography: one projection, never a slice stack
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "MG", "IO", "PX", "RG", "XA", "RF"})
# slice positions may differ from the common spacing by this much (scanners round IPP)
SPACING_TOLERANCE_MM = 0.01
SPACING_TOLERANCE_FRACTION = 0.01
# sideways drift of slice positions below this fraction of a pixel is rounding, not tilt
TILT_TOLERANCE_PIXELS = 0.1
# direction cosines and pixel spacing must agree across slices within these
ORIENTATION_TOLERANCE = 1e-4
PIXEL_SPACING_TOLERANCE_MM = 1e-3

_PIXEL_DATA_TAG = 0x7FE00010
_UNDEFINED_LENGTH = 0xFFFFFFFF
_NO_PIXEL_DATA = "没有像素数据 / no pixel data"
_IMAGE_SOP_CLASSES = frozenset({CTImageStorage, EnhancedCTImageStorage})


@dataclass(frozen=True)
class SeriesSummary:
    """One series found in a directory, as listed to people choosing one."""

    series_uid: str
    modality: str
    description: str
    slice_count: int
    rows: int
    columns: int
    series_number: int | None
    study_uid: str
    patient_id: str
    first_file: Path


@dataclass(frozen=True)
class _SliceHeader:
    """What the header pass keeps of one image file (never its pixels)."""

    path: Path
    series_uid: str
    study_uid: str
    sop_uid: str
    patient_id: str
    modality: str
    description: str
    series_number: int | None
    image_type: tuple[str, ...]
    rows: int
    columns: int
    frames: int
    samples_per_pixel: int
    position_mm: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    pixel_spacing_mm: tuple[float, ...] | None
    slope: float
    intercept: float
    transfer_syntax: str
    pixel_problem: str | None


@dataclass(frozen=True)
class _Stack:
    """A checked series: slices in order along the normal and its patient_from_index."""

    slices: list[_SliceHeader]
    patient_from_index: npt.NDArray[np.float64]


def list_series(directory: Path, *, progress: Progress | None = None) -> list[SeriesSummary]:
    """Every image series under ``directory`` (recursive), in series-number order.

    Raises ``SeriesError`` when the directory is missing, empty or holds no DICOM image.
    """
    groups = _series_groups(Path(directory), progress)
    return [_summary(headers) for headers in groups.values()]


def read_series(
    directory: Path,
    *,
    series_uid: str | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    progress: Progress | None = None,
) -> CtVolume:
    """Read one CT series under ``directory`` (recursive) as an int16 HU volume.

    With several series in the directory ``series_uid`` picks one. Raises ``SeriesError`` for
    anything that is not a complete, evenly spaced, untilted CT slice stack, and before any
    pixel is read when the volume (rows x columns x slices x 2 bytes) exceeds
    ``memory_budget_bytes``.
    """
    directory = Path(directory)
    groups = _series_groups(directory, progress)
    headers = _choose_series(directory, groups, series_uid)
    stack = _checked_stack(directory, headers)
    _check_memory_budget(directory, stack, memory_budget_bytes)
    for header in stack.slices:
        if header.pixel_problem is not None:
            raise SeriesError(header.path, header.pixel_problem)
    hu = _read_hu(stack, progress)
    first = stack.slices[0]
    return CtVolume(
        hu=hu,
        patient_from_index=stack.patient_from_index,
        series_uid=first.series_uid,
        study_uid=first.study_uid,
        patient_id=first.patient_id,
        sop_uids=tuple(h.sop_uid for h in stack.slices),
        transfer_syntaxes=tuple(h.transfer_syntax for h in stack.slices),
    )


# ---------------------------------------------------------------------------------------------
# header pass


def _series_groups(directory: Path, progress: Progress | None) -> dict[str, list[_SliceHeader]]:
    """Image headers under ``directory`` grouped by Series Instance UID, in series-number order."""
    if not directory.exists():
        raise SeriesError(directory, "目录不存在 / directory does not exist")
    if not directory.is_dir():
        raise SeriesError(directory, "不是目录 / not a directory")
    paths = _files_under(directory)
    if not paths:
        raise SeriesError(directory, "目录为空 / directory is empty")

    groups: dict[str, list[_SliceHeader]] = {}
    seen_sops: set[str] = set()
    for done, path in enumerate(paths, start=1):
        header = _read_header(path)
        # the same instance copied twice is one slice, not a duplicate position
        if header is not None and header.sop_uid not in seen_sops:
            if header.sop_uid:
                seen_sops.add(header.sop_uid)
            groups.setdefault(header.series_uid, []).append(header)
        if progress is not None and (done % 32 == 0 or done == len(paths)):
            progress("读取 DICOM 头 / reading DICOM headers", done / len(paths))
    if not groups:
        raise SeriesError(
            directory,
            f"{len(paths)} 个文件中没有 DICOM 图像 / no DICOM image among {len(paths)} files",
        )
    ordered = sorted(groups.values(), key=lambda hs: (_series_order(hs[0]), hs[0].series_uid))
    return {hs[0].series_uid: hs for hs in ordered}


def _series_order(header: _SliceHeader) -> int:
    return header.series_number if header.series_number is not None else 2**31


def _files_under(directory: Path) -> list[Path]:
    # hidden entries (.DS_Store, a writer's .partial directory) are never slices
    paths: list[Path] = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        paths.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return paths


def _read_header(path: Path) -> _SliceHeader | None:
    """The header of one file; None for a non-DICOM file or a DICOM object with no image."""
    try:
        with path.open("rb") as fp:
            ds = dcmread(fp, stop_before_pixels=True)
            pixel_problem = _pixel_data_problem(fp, ds)
        return _header_of(ds, path, pixel_problem)
    except InvalidDicomError:
        return None
    except SeriesError:
        raise
    except OSError as exc:
        raise SeriesError(path, f"文件无法读取 / cannot read file: {exc}") from None
    except Exception as exc:  # pydicom raises many types on malformed headers
        raise SeriesError(path, f"DICOM 头损坏 / corrupt DICOM header: {exc}") from None


def _header_of(ds: Dataset, path: Path, pixel_problem: str | None) -> _SliceHeader | None:
    rows = _int_or_none(ds, "Rows", path)
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if rows is None and pixel_problem == _NO_PIXEL_DATA and sop_class not in _IMAGE_SOP_CLASSES:
        return None  # structured report, presentation state, DICOMDIR...
    series_uid = str(ds.get("SeriesInstanceUID", "") or "")
    if not series_uid:
        raise SeriesError(path, "缺少 Series Instance UID / no Series Instance UID")
    return _SliceHeader(
        path=path,
        series_uid=series_uid,
        study_uid=str(ds.get("StudyInstanceUID", "") or ""),
        sop_uid=str(ds.get("SOPInstanceUID", "") or ""),
        patient_id=str(ds.get("PatientID", "") or ""),
        modality=str(ds.get("Modality", "") or "").strip().upper(),
        description=str(ds.get("SeriesDescription", "") or ""),
        series_number=_int_or_none(ds, "SeriesNumber", path),
        image_type=tuple(str(v).upper() for v in _values(ds, "ImageType")),
        rows=rows or 0,
        columns=_int_or_none(ds, "Columns", path) or 0,
        frames=_int_or_none(ds, "NumberOfFrames", path) or 1,
        samples_per_pixel=_int_or_none(ds, "SamplesPerPixel", path) or 1,
        position_mm=_floats(ds, "ImagePositionPatient", 3, path),
        orientation=_floats(ds, "ImageOrientationPatient", 6, path),
        pixel_spacing_mm=_floats(ds, "PixelSpacing", 2, path),
        slope=_float_or(ds, "RescaleSlope", 1.0, path),
        intercept=_float_or(ds, "RescaleIntercept", 0.0, path),
        transfer_syntax=str(ds.file_meta.get("TransferSyntaxUID", "")),
        pixel_problem=pixel_problem,
    )


def _pixel_data_problem(fp: Any, ds: Dataset) -> str | None:
    """Whether the Pixel Data element after the header is missing or shorter than declared.

    ``dcmread(stop_before_pixels=True)`` leaves ``fp`` at the Pixel Data tag, so its length can
    be checked against the file size and the image size without reading the pixels.
    """
    syntax = UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
    if syntax.is_deflated or not syntax.is_transfer_syntax:
        return None  # the stream position says nothing; the pixel pass will tell
    start = fp.tell()
    fp.seek(0, os.SEEK_END)
    file_size = fp.tell()
    fp.seek(start)
    element_header = fp.read(8)
    endian = "<" if syntax.is_little_endian else ">"
    if len(element_header) < 8:
        return _NO_PIXEL_DATA
    group, element = struct.unpack(f"{endian}HH", element_header[:4])
    if (group << 16 | element) != _PIXEL_DATA_TAG:
        return _NO_PIXEL_DATA
    if syntax.is_implicit_VR:
        (length,) = struct.unpack(f"{endian}L", element_header[4:8])
        value_start = start + 8
    else:
        length_bytes = fp.read(4)
        if len(length_bytes) < 4:
            return "像素数据被截断 / pixel data truncated"
        (length,) = struct.unpack(f"{endian}L", length_bytes)
        value_start = start + 12
    if length == _UNDEFINED_LENGTH:
        return None  # compressed fragments: checked by the decoder
    expected = _expected_pixel_bytes(ds)
    present = min(length, file_size - value_start)
    if present < expected:
        return (
            f"像素数据比预期短 ({present} < {expected} 字节), 文件可能被截断 / "
            f"pixel data shorter than expected ({present} < {expected} bytes): truncated file?"
        )
    return None


def _expected_pixel_bytes(ds: Dataset) -> int:
    rows = int(ds.get("Rows", 0) or 0)
    columns = int(ds.get("Columns", 0) or 0)
    bits = int(ds.get("BitsAllocated", 16) or 16)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return (rows * columns * samples * frames * bits + 7) // 8


def _values(ds: Dataset, keyword: str) -> list[Any]:
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    if isinstance(value, str | bytes | int | float):
        return [value]
    return list(value)


def _floats(ds: Dataset, keyword: str, count: int, path: Path) -> tuple[float, ...] | None:
    try:
        values = tuple(float(v) for v in _values(ds, keyword))
    except (TypeError, ValueError):
        raise SeriesError(path, f"{keyword} 不是数字 / {keyword} is not numeric") from None
    if not values:
        return None
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise SeriesError(
            path, f"{keyword} 应有 {count} 个数 / {keyword} must hold {count} finite numbers"
        )
    return values


def _float_or(ds: Dataset, keyword: str, default: float, path: Path) -> float:
    values = _floats(ds, keyword, 1, path)
    return default if values is None else values[0]


def _int_or_none(ds: Dataset, keyword: str, path: Path) -> int | None:
    values = _values(ds, keyword)
    if not values:
        return None
    try:
        return int(values[0])
    except (TypeError, ValueError):
        raise SeriesError(path, f"{keyword} 不是整数 / {keyword} is not an integer") from None


# ---------------------------------------------------------------------------------------------
# choosing and checking the series


def _summary(headers: Sequence[_SliceHeader]) -> SeriesSummary:
    first = headers[0]
    return SeriesSummary(
        series_uid=first.series_uid,
        modality=first.modality,
        description=first.description,
        slice_count=len(headers),
        rows=first.rows,
        columns=first.columns,
        series_number=first.series_number,
        study_uid=first.study_uid,
        patient_id=first.patient_id,
        first_file=first.path,
    )


def _choose_series(
    directory: Path, groups: dict[str, list[_SliceHeader]], series_uid: str | None
) -> list[_SliceHeader]:
    if series_uid is not None:
        if series_uid in groups:
            return groups[series_uid]
        raise SeriesError(
            directory,
            f"没有序列 {series_uid} / no series {series_uid}; "
            + _series_listing(groups)
            + "\n请用 --series 指定其中之一 / pass one of them with --series",
        )
    if len(groups) == 1:
        return next(iter(groups.values()))
    raise SeriesError(
        directory,
        f"目录中有 {len(groups)} 个序列, 请用 --series 指定 / "
        f"{len(groups)} series found, pass --series <uid>; " + _series_listing(groups),
    )


def _series_listing(groups: dict[str, list[_SliceHeader]]) -> str:
    lines = ["序列 / series (uid, 描述 description, 模态 modality, 切片数 slices):"]
    for headers in groups.values():
        s = _summary(headers)
        lines.append(f"  {s.series_uid}  {s.description!r}  {s.modality}  {s.slice_count}")
    return "\n".join(lines)


def _checked_stack(directory: Path, headers: list[_SliceHeader]) -> _Stack:
    """The series sorted along its normal, or a SeriesError saying why it is no CT volume."""
    for header in headers:
        _check_is_ct_slice(header)
    if len(headers) < 2:
        raise SeriesError(
            headers[0].path,
            "只有一张切片, 体数据至少需要两张 / only one slice: a volume needs at least two",
        )
    first = headers[0]
    row_dir, col_dir, normal = _directions(first)
    for header in headers[1:]:
        _check_same_frame(header, first)

    # order along the normal; the stacking must not drift sideways (gantry tilt)
    positions = np.array([h.position_mm for h in headers], dtype=np.float64)
    along_mm = positions @ normal
    order = np.argsort(along_mm, kind="stable")
    slices = [headers[i] for i in order]
    positions, along_mm = positions[order], along_mm[order]
    pixel_spacing = first.pixel_spacing_mm
    assert pixel_spacing is not None  # checked by _check_is_ct_slice
    _check_no_tilt(directory, positions, along_mm, normal, min(pixel_spacing))
    slice_spacing_mm = _checked_spacing(directory, slices, along_mm)

    affine = affine_from_geometry(
        origin_mm=positions[0],
        row_dir=row_dir,
        col_dir=col_dir,
        slice_dir=normal,
        slice_spacing_mm=slice_spacing_mm,
        row_spacing_mm=pixel_spacing[0],
        col_spacing_mm=pixel_spacing[1],
    )
    return _Stack(slices=slices, patient_from_index=affine)


def _check_is_ct_slice(header: _SliceHeader) -> None:
    path, modality = header.path, header.modality or "?"
    if modality in RADIOGRAPH_MODALITIES:
        raise SeriesError(
            path,
            f"是 X 线平片 ({modality}), 不是 CT 序列 / "
            f"is a radiograph ({modality}), not a CT series",
        )
    if modality != "CT":
        raise SeriesError(
            path, f"模态为 {modality}, 不是 CT / modality is {modality}, not a CT series"
        )
    if "LOCALIZER" in header.image_type:
        raise SeriesError(
            path, "是 CT 定位像, 不是 CT 序列 / is a CT localizer (scout), not a CT series"
        )
    if header.position_mm is None or header.orientation is None:
        raise SeriesError(
            path,
            "缺少图像位置/方向, 像是 X 线平片而非 CT 切片 / has no Image Position/Orientation "
            "(Patient): is a radiograph or projection, not a CT slice",
        )
    if header.frames > 1:
        raise SeriesError(
            path,
            f"多帧 ({header.frames} 帧) 增强 CT 暂不支持 / "
            f"multi-frame ({header.frames} frames) enhanced CT is not supported",
        )
    if header.samples_per_pixel != 1:
        raise SeriesError(path, "不是灰度图像 / not a greyscale image (Samples per Pixel != 1)")
    if header.rows <= 0 or header.columns <= 0:
        raise SeriesError(path, "缺少图像行列数 / no Rows/Columns")
    if header.pixel_spacing_mm is None or min(header.pixel_spacing_mm) <= 0.0:
        raise SeriesError(path, "缺少有效像素间距 / no valid Pixel Spacing")


def _directions(
    header: _SliceHeader,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    # row and column direction cosines must be unit and orthogonal; normal = row x column
    assert header.orientation is not None
    iop = np.asarray(header.orientation, dtype=np.float64)
    row_dir, col_dir = iop[:3], iop[3:]
    lengths = (float(np.linalg.norm(row_dir)), float(np.linalg.norm(col_dir)))
    if (
        abs(lengths[0] - 1.0) > 1e-3
        or abs(lengths[1] - 1.0) > 1e-3
        or abs(row_dir @ col_dir) > 1e-3
    ):
        raise SeriesError(
            header.path,
            "图像方向不是正交单位向量 / Image Orientation (Patient) is not two orthogonal unit "
            f"vectors: {list(header.orientation)}",
        )
    row_dir, col_dir = row_dir / lengths[0], col_dir / lengths[1]
    normal = np.cross(row_dir, col_dir)
    return row_dir, col_dir, normal / np.linalg.norm(normal)


def _check_same_frame(header: _SliceHeader, first: _SliceHeader) -> None:
    ref = first.path.name
    if (header.rows, header.columns) != (first.rows, first.columns):
        raise SeriesError(
            header.path,
            f"图像尺寸 {header.rows}x{header.columns} 与 {ref} 的 {first.rows}x{first.columns} "
            f"不同 / image size {header.rows} x {header.columns} differs from "
            f"{first.rows} x {first.columns} in {ref}",
        )
    assert header.pixel_spacing_mm is not None and first.pixel_spacing_mm is not None
    spacing_gap = np.abs(np.subtract(header.pixel_spacing_mm, first.pixel_spacing_mm))
    if float(spacing_gap.max()) > PIXEL_SPACING_TOLERANCE_MM:
        raise SeriesError(
            header.path,
            f"像素间距 {list(header.pixel_spacing_mm)} 与 {ref} 的 "
            f"{list(first.pixel_spacing_mm)} 不同 / pixel spacing "
            f"{list(header.pixel_spacing_mm)} mm differs from {list(first.pixel_spacing_mm)} "
            f"mm in {ref}",
        )
    assert header.orientation is not None and first.orientation is not None
    turn = np.abs(np.subtract(header.orientation, first.orientation))
    if float(turn.max()) > ORIENTATION_TOLERANCE:
        raise SeriesError(
            header.path,
            f"图像方向与 {ref} 不同 / Image Orientation (Patient) "
            f"{list(header.orientation)} differs from {list(first.orientation)} in {ref}",
        )


def _check_no_tilt(
    directory: Path,
    positions: npt.NDArray[np.float64],
    along_mm: npt.NDArray[np.float64],
    normal: npt.NDArray[np.float64],
    pixel_mm: float,
) -> None:
    # with gantry tilt the slices are sheared: their positions move sideways along the stack
    offsets = positions - positions[0]
    sideways = offsets - np.outer(offsets @ normal, normal)
    drift_mm = np.linalg.norm(sideways, axis=1)
    worst = int(np.argmax(drift_mm))
    if drift_mm[worst] <= max(SPACING_TOLERANCE_MM, TILT_TOLERANCE_PIXELS * pixel_mm):
        return
    travel_mm = float(along_mm[worst] - along_mm[0])
    tilt_deg = math.degrees(math.atan2(float(drift_mm[worst]), abs(travel_mm)))
    raise SeriesError(
        directory,
        f"机架倾斜约 {tilt_deg:.1f}°, 不支持, 请先重采样 / gantry tilt of about {tilt_deg:.1f} "
        f"degrees: slice positions drift {drift_mm[worst]:.2f} mm sideways over "
        f"{abs(travel_mm):.2f} mm along the slice normal; tilted series are not supported, "
        "resample to an untilted series first",
    )


def _checked_spacing(
    directory: Path, slices: list[_SliceHeader], along_mm: npt.NDArray[np.float64]
) -> float:
    """The common slice spacing; refuses duplicates, missing slices and uneven steps."""
    steps_mm = np.diff(along_mm)
    nominal_mm = float(np.median(steps_mm))
    tolerance_mm = max(SPACING_TOLERANCE_MM, SPACING_TOLERANCE_FRACTION * abs(nominal_mm))
    for i, step in enumerate(steps_mm):
        below, above = slices[i].path.name, slices[i + 1].path.name
        where = f"z={along_mm[i]:.3f} ({below}) / z={along_mm[i + 1]:.3f} ({above})"
        if step <= tolerance_mm:
            raise SeriesError(
                directory,
                f"两张切片位置相同 / two slices at the same position: {where}",
            )
        if abs(step - nominal_mm) <= tolerance_mm:
            continue
        missing = round(step / nominal_mm) - 1
        if missing >= 1 and abs(step - (missing + 1) * nominal_mm) <= tolerance_mm * (missing + 1):
            raise SeriesError(
                directory,
                f"缺少 {missing} 张切片: z={along_mm[i]:.3f} 与 z={along_mm[i + 1]:.3f} 之间有空隙 "
                f"/ {missing} missing slice(s): gap between slice at {where} is {step:.3f} mm, "
                f"spacing elsewhere {nominal_mm:.3f} mm",
            )
        raise SeriesError(
            directory,
            f"切片间距不均匀 / uneven slice spacing: {step:.3f} mm between slice at {where}, "
            f"{nominal_mm:.3f} mm elsewhere",
        )
    return float(along_mm[-1] - along_mm[0]) / (len(along_mm) - 1)


def _check_memory_budget(directory: Path, stack: _Stack, budget_bytes: int) -> None:
    first = stack.slices[0]
    count = len(stack.slices)
    needed = first.rows * first.columns * count * np.dtype(np.int16).itemsize
    if needed > budget_bytes:
        raise SeriesError(
            directory,
            f"体数据需要 {needed / 2**20:.1f} MiB, 超过内存预算 {budget_bytes / 2**20:.1f} MiB / "
            f"volume of {count} slices x {first.rows} x {first.columns} x 2 bytes = {needed} "
            f"bytes is above the memory budget of {budget_bytes} bytes",
        )


# ---------------------------------------------------------------------------------------------
# pixel pass


def _read_hu(stack: _Stack, progress: Progress | None) -> npt.NDArray[np.int16]:
    first = stack.slices[0]
    count = len(stack.slices)
    hu = np.empty((count, first.rows, first.columns), dtype=np.int16)
    for k, header in enumerate(stack.slices):
        stored = _decoded_pixels(header)
        hu[k] = _to_hu(stored, header.slope, header.intercept)
        if progress is not None and (k % 16 == 0 or k == count - 1):
            progress("读取 CT 像素 / reading CT pixels", (k + 1) / count)
    return hu


def _decoded_pixels(header: _SliceHeader) -> npt.NDArray[Any]:
    syntax = UID(header.transfer_syntax)
    try:
        stored: npt.NDArray[Any] = pixel_array(header.path)
    except Exception as exc:  # decoders raise many types on corrupt or missing codestreams
        raise SeriesError(
            header.path,
            f"像素数据无法解码 ({syntax.name}) / cannot decode pixel data ({syntax.name}): {exc}",
        ) from None
    if stored.shape != (header.rows, header.columns) or stored.dtype.kind not in "iu":
        raise SeriesError(
            header.path,
            f"像素数组形状 {stored.shape} 不符 / decoded pixels {stored.dtype} {stored.shape} "
            f"do not match {header.rows} x {header.columns}",
        )
    return stored


def _to_hu(stored: npt.NDArray[Any], slope: float, intercept: float) -> npt.NDArray[np.int16]:
    """HU = stored * slope + intercept, rounded and clipped to the int16 range."""
    limits = np.iinfo(np.int16)
    if slope == 1.0 and intercept.is_integer():
        # exact integer path, the common case
        narrow = stored.itemsize <= 2 and abs(intercept) < 2**16
        wide = stored.astype(np.int32 if narrow else np.int64) + int(intercept)
    else:
        wide = np.rint(stored.astype(np.float64) * slope + intercept)
    hu: npt.NDArray[np.int16] = np.clip(wide, limits.min, limits.max).astype(np.int16)
    return hu
