"""Builders of CT series on disk for the DICOM reader and writer tests."""

import math
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import data_store
import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from sim_core.ct.dicom_writer import write_ct_series
from sim_core.ct.volume import CtVolume, affine_from_geometry

REAL_DATA_DIR = Path(os.path.dirname(data_store.__file__)) / "data"


def real_file(name: str) -> Path:
    """A file of the pydicom-data package (real scanner output)."""
    path = REAL_DATA_DIR / name
    assert path.is_file(), f"pydicom-data file {name} is missing"
    return path


def rotation_about_z(angle_deg: float) -> npt.NDArray[np.float64]:
    a = math.radians(angle_deg)
    return np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0, 0, 1]])


def make_volume(
    *,
    shape: tuple[int, int, int] = (5, 12, 10),
    spacing_mm: tuple[float, float, float] = (1.25, 0.7, 0.6),
    origin_mm: Sequence[float] = (-30.5, 12.25, 88.0),
    row_dir: npt.ArrayLike = (1.0, 0.0, 0.0),
    col_dir: npt.ArrayLike = (0.0, 1.0, 0.0),
    seed: int = 0,
) -> CtVolume:
    """A small random HU volume (air to dense bone plus scanner padding) on the given grid."""
    rng = np.random.default_rng(seed)
    hu = rng.integers(-1024, 3072, size=shape, dtype=np.int16)
    hu[:, 0, 0] = -2000  # padding outside the field of view: below what unsigned storage holds
    row = np.asarray(row_dir, dtype=np.float64)
    col = np.asarray(col_dir, dtype=np.float64)
    affine = affine_from_geometry(
        origin_mm=origin_mm,
        row_dir=row,
        col_dir=col,
        slice_dir=np.cross(row, col),
        slice_spacing_mm=spacing_mm[0],
        row_spacing_mm=spacing_mm[1],
        col_spacing_mm=spacing_mm[2],
    )
    return CtVolume(hu=hu, patient_from_index=affine)


def write_volume(volume: CtVolume, out_dir: Path, **fields: Any) -> list[Path]:
    """Write ``volume`` with default patient fields (overridable)."""
    ids = {"patient_name": "张三", "patient_id": "P0001"} | fields
    return write_ct_series(volume, out_dir, **ids)


def edit_file(path: Path, change: Callable[[Dataset], None], *, to: Path | None = None) -> Path:
    """Read a whole DICOM file, apply ``change`` and save it (in place or to ``to``)."""
    ds = pydicom.dcmread(path)
    change(ds)
    target = to or path
    ds.save_as(target)
    return target


def real_ct_series(
    out_dir: Path,
    source: str = "693_UNCR.dcm",
    *,
    count: int = 3,
    step_mm: float = 1.0,
    change: Callable[[Dataset, int], None] | None = None,
) -> list[Path]:
    """``count`` copies of a real CT slice stacked at ``step_mm`` along its normal.

    Only the position, instance number and UIDs change: the pixel data stays as the scanner
    (and its compressor) wrote it.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid(entropy_srcs=[source, "series"])
    paths = []
    for k in range(count):

        def restack(ds: Dataset, k: int = k) -> None:
            iop = np.array([float(v) for v in ds.ImageOrientationPatient])
            normal = np.cross(iop[:3], iop[3:])
            position = np.array([float(v) for v in ds.ImagePositionPatient]) + k * step_mm * normal
            ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
            ds.InstanceNumber = k + 1
            ds.SOPInstanceUID = generate_uid(entropy_srcs=[source, "sop", str(k)])
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.SeriesInstanceUID = series_uid
            if change is not None:
                change(ds, k)

        paths.append(edit_file(real_file(source), restack, to=out_dir / f"slice{k:03d}.dcm"))
    return paths


def copy_real(name: str, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(real_file(name), out_dir / name))
