"""Writing a CtVolume as a multi-slice DICOM CT series (one CT Image Storage file per slice).

Stored values are signed 16-bit (Pixel Representation 1) with Rescale Slope 1 and Rescale
Intercept -1024, so HU = stored - 1024 and every HU from -31744 to 31743 is exact; that covers
scanner padding values (-2000, -3024) that unsigned storage could not hold.

The output is deterministic: UIDs are hashed from the voxels, the geometry and the patient and
study fields, and dates are fixed, so the same volume and ids give byte-identical files.
"""

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from sim_core.ct.volume import CtVolume

RESCALE_INTERCEPT_HU = -1024
BONE_WINDOW_CENTER_HU = 400
BONE_WINDOW_WIDTH_HU = 1800
MANUFACTURER = "Osteon phantom"

# a phantom has no acquisition time; a fixed date keeps the files byte-identical across runs
_FIXED_DATE = "20240101"
_FIXED_TIME = "120000"
# namespace for "2.25." UIDs built from UUID-5 hashes (ISO/IEC 9834-8): no registered root needed
_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://osteon.invalid/dicom-uid")
_IMPLEMENTATION_CLASS_UID = UID(f"2.25.{uuid.uuid5(_UID_NAMESPACE, 'implementation').int}")
_IMPLEMENTATION_VERSION = "OSTEON_1"
# orthonormality tolerance of the direction cosines taken from patient_from_index
_DIRECTION_TOLERANCE = 1e-6


@dataclass(frozen=True)
class _Geometry:
    row_dir: npt.NDArray[np.float64]
    col_dir: npt.NDArray[np.float64]
    normal: npt.NDArray[np.float64]
    slice_spacing_mm: float
    row_spacing_mm: float
    col_spacing_mm: float


def write_ct_series(
    volume: CtVolume,
    out_dir: Path,
    *,
    patient_name: str,
    patient_id: str,
    patient_sex: str = "O",
    patient_birth_date: str = "",
    study_description: str = "",
    series_description: str = "",
    seed_uid_root: str | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> list[Path]:
    """Write ``volume`` as a CT series into the new directory ``out_dir``; return the files.

    ``out_dir`` must not exist or be empty. Files are written into a sibling temporary
    directory that is renamed to ``out_dir`` at the end, so a failed write leaves nothing at
    ``out_dir``. ``seed_uid_root`` is an optional UID root (e.g. an institution's registered
    root ending in "."); without it UIDs are "2.25." UUID-derived. Raises ``ValueError`` for a
    volume DICOM cannot hold (HU above 31743, a sheared or left-handed grid) and
    ``FileExistsError`` for a non-empty ``out_dir``.
    """
    out_dir = Path(out_dir)
    geometry = _geometry_of(volume)
    stored = _stored_values(volume.hu)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir}: 输出目录已存在且非空 / output directory exists")

    # uids: the study hangs on the people fields, the series also on the voxels and geometry
    people = [patient_name, patient_id, patient_sex, patient_birth_date, study_description]
    content = _content_digest(volume, series_description)

    def uid(*parts: str) -> str:
        return _deterministic_uid(seed_uid_root, [*people, *parts])

    study_uid = uid("study")
    series_uid = uid("series", content)
    frame_uid = uid("frame-of-reference", content)

    ds = _template_dataset(
        volume,
        geometry,
        patient_name=patient_name,
        patient_id=patient_id,
        patient_sex=patient_sex,
        patient_birth_date=patient_birth_date,
        study_description=study_description,
        series_description=series_description,
    )
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_uid

    # write into a hidden sibling, then rename: readers never see a half-written series
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    slice_count = stored.shape[0]
    digits = max(4, len(str(slice_count)))
    names = [f"CT{k + 1:0{digits}d}.dcm" for k in range(slice_count)]
    try:
        for k in range(slice_count):
            _fill_slice(ds, volume, geometry, k, sop_uid=uid("sop", content, str(k)))
            ds.PixelData = stored[k].tobytes()
            dcmwrite(partial / names[k], ds, enforce_file_format=True)
            if progress is not None and (k % 16 == 0 or k == slice_count - 1):
                progress("写入 CT 切片 / writing CT slices", (k + 1) / slice_count)
        if out_dir.exists():
            out_dir.rmdir()
        partial.rename(out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return [out_dir / name for name in names]


def _geometry_of(volume: CtVolume) -> _Geometry:
    # the series needs 3 orthogonal axes with the slice axis along row x column (DICOM normal)
    hu = volume.hu
    if hu.ndim != 3 or hu.dtype != np.int16 or 0 in hu.shape:
        raise ValueError(f"hu must be a non-empty 3-D int16 array, got {hu.dtype} {hu.shape}")
    affine = np.asarray(volume.patient_from_index, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ValueError("patient_from_index must be a finite 4 x 4 matrix")
    slice_vec, colward_vec, rowward_vec = affine[:3, 0], affine[:3, 1], affine[:3, 2]
    spacings = [float(np.linalg.norm(v)) for v in (slice_vec, colward_vec, rowward_vec)]
    if min(spacings) <= 0.0:
        raise ValueError(f"voxel spacing must be positive, got {spacings}")
    slice_dir = slice_vec / spacings[0]
    col_dir = colward_vec / spacings[1]
    row_dir = rowward_vec / spacings[2]
    normal = np.cross(row_dir, col_dir)
    if abs(float(row_dir @ col_dir)) > _DIRECTION_TOLERANCE:
        raise ValueError("row and column axes of patient_from_index are not orthogonal")
    if float(np.max(np.abs(slice_dir - normal))) > _DIRECTION_TOLERANCE:
        raise ValueError(
            "slice axis must point along row x column direction (untilted, right-handed grid)"
        )
    return _Geometry(row_dir, col_dir, normal, spacings[0], spacings[1], spacings[2])


def _stored_values(hu: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    # signed storage with intercept -1024: stored = HU + 1024 must stay within int16
    highest_hu = int(hu.max())
    limit_hu = np.iinfo(np.int16).max + RESCALE_INTERCEPT_HU
    if highest_hu > limit_hu:
        raise ValueError(f"HU {highest_hu} above {limit_hu} cannot be stored with intercept -1024")
    stored = (hu.astype(np.int32) - RESCALE_INTERCEPT_HU).astype("<i2")
    return np.ascontiguousarray(stored)


def _content_digest(volume: CtVolume, series_description: str) -> str:
    digest = hashlib.sha256()
    digest.update(repr(volume.hu.shape).encode())
    digest.update(np.ascontiguousarray(volume.hu, dtype="<i2").tobytes())
    digest.update(np.asarray(volume.patient_from_index, dtype="<f8").tobytes())
    digest.update(series_description.encode())
    return digest.hexdigest()


def _deterministic_uid(root: str | None, parts: list[str]) -> str:
    # pydicom's generate_uid ignores entropy for the "2.25." form, so hash into a UUID-5 here
    if root is None:
        return f"2.25.{uuid.uuid5(_UID_NAMESPACE, chr(31).join(parts)).int}"
    return str(generate_uid(prefix=root, entropy_srcs=parts))


def _ds(value: float) -> str:
    # DS is at most 16 characters; + 0.0 turns -0.0 into 0.0
    return format_number_as_ds(float(value) + 0.0)


def _template_dataset(
    volume: CtVolume,
    geometry: _Geometry,
    *,
    patient_name: str,
    patient_id: str,
    patient_sex: str,
    patient_birth_date: str,
    study_description: str,
    series_description: str,
) -> Dataset:
    """Every element that is the same on all slices; _fill_slice sets the rest."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = _IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = _IMPLEMENTATION_VERSION

    ds = Dataset()
    ds.file_meta = meta
    # ISO_IR 192 is UTF-8: Chinese names are written as given
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    for prefix in ("Study", "Series", "Acquisition", "Content"):
        setattr(ds, f"{prefix}Date", _FIXED_DATE)
        setattr(ds, f"{prefix}Time", _FIXED_TIME)
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = MANUFACTURER
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = study_description
    ds.SeriesDescription = series_description
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = patient_birth_date
    ds.PatientSex = patient_sex
    ds.SliceThickness = _ds(geometry.slice_spacing_mm)
    ds.KVP = ""
    ds.SpacingBetweenSlices = _ds(geometry.slice_spacing_mm)
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.AcquisitionNumber = 1
    orientation = [*geometry.row_dir, *geometry.col_dir]
    ds.ImageOrientationPatient = [_ds(v) for v in orientation]
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = int(volume.hu.shape[1])
    ds.Columns = int(volume.hu.shape[2])
    ds.PixelSpacing = [_ds(geometry.row_spacing_mm), _ds(geometry.col_spacing_mm)]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.WindowCenter = BONE_WINDOW_CENTER_HU
    ds.WindowWidth = BONE_WINDOW_WIDTH_HU
    ds.WindowCenterWidthExplanation = "BONE"
    ds.RescaleIntercept = RESCALE_INTERCEPT_HU
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"
    ds.PixelData = b""
    ds["PixelData"].VR = "OW"
    return ds


def _fill_slice(
    ds: Dataset, volume: CtVolume, geometry: _Geometry, k: int, *, sop_uid: str
) -> None:
    # position of voxel (k, 0, 0): the centre of the slice's first pixel
    position = volume.patient_from_index @ np.array([k, 0.0, 0.0, 1.0])
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    ds.SOPInstanceUID = sop_uid
    ds.InstanceNumber = k + 1
    ds.ImagePositionPatient = [_ds(v) for v in position[:3]]
    ds.SliceLocation = _ds(float(position[:3] @ geometry.normal))
