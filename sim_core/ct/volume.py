"""A CT volume in Hounsfield units with its placement in patient space."""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class CtVolume:
    """HU voxels of one series, ordered along the slice normal.

    ``hu`` has shape (slices, rows, columns), int16. ``patient_from_index`` (4 x 4, float64) maps
    a voxel index (slice, row, column, 1) to DICOM patient coordinates (LPS, mm): its columns are
    normal * slice spacing, column direction * row spacing, row direction * column spacing, and
    the centre of the first voxel.
    """

    hu: npt.NDArray[np.int16]
    patient_from_index: npt.NDArray[np.float64]
    series_uid: str = ""
    study_uid: str = ""
    patient_id: str = ""
    sop_uids: tuple[str, ...] = ()
    transfer_syntaxes: tuple[str, ...] = ()

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """Voxel spacing along (slice, row, column) axes."""
        norms = np.linalg.norm(self.patient_from_index[:3, :3], axis=0)
        return float(norms[0]), float(norms[1]), float(norms[2])

    def index_of_patient_mm(self, point_lps_mm: npt.ArrayLike) -> tuple[int, int, int]:
        """The nearest voxel to a patient-coordinate point."""
        p = np.append(np.asarray(point_lps_mm, dtype=np.float64), 1.0)
        idx = np.rint(np.linalg.solve(self.patient_from_index, p)[:3]).astype(np.int64)
        return int(idx[0]), int(idx[1]), int(idx[2])


def affine_from_geometry(
    *,
    origin_mm: npt.ArrayLike,
    row_dir: npt.ArrayLike,
    col_dir: npt.ArrayLike,
    slice_dir: npt.ArrayLike,
    slice_spacing_mm: float,
    row_spacing_mm: float,
    col_spacing_mm: float,
) -> npt.NDArray[np.float64]:
    """``patient_from_index`` from DICOM geometry (row_dir = first IOP triplet)."""
    a = np.eye(4)
    a[:3, 0] = np.asarray(slice_dir, dtype=np.float64) * slice_spacing_mm
    a[:3, 1] = np.asarray(col_dir, dtype=np.float64) * row_spacing_mm
    a[:3, 2] = np.asarray(row_dir, dtype=np.float64) * col_spacing_mm
    a[:3, 3] = np.asarray(origin_mm, dtype=np.float64)
    return a
