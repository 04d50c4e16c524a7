"""Crop a CT volume to its bone and resample it to isotropic voxels."""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from sim_core.ct.volume import CtVolume


@dataclass(frozen=True)
class IsoGrid:
    """HU on an isotropic grid; ``source_index_of`` maps grid axes back to the source."""

    hu: npt.NDArray[np.float32]
    spacing_mm: float
    patient_from_case: npt.NDArray[np.float64]
    source_start: npt.NDArray[np.float64]  # source index of grid voxel (0, 0, 0)
    source_step: npt.NDArray[np.float64]  # source index step per grid voxel, per axis

    def source_indices(self, shape: tuple[int, ...]) -> list[npt.NDArray[np.int64]]:
        """Nearest source index along each axis for every grid index (for label lookup)."""
        return [
            np.rint(self.source_start[a] + np.arange(shape[a]) * self.source_step[a]).astype(
                np.int64
            )
            for a in range(3)
        ]


def bone_box(
    hu: npt.NDArray[np.int16], threshold_hu: float, margin_vox: tuple[int, int, int]
) -> tuple[slice, slice, slice] | None:
    """Index box around every voxel at or above the threshold, with a margin; None if none."""
    mask = hu >= threshold_hu
    box = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        hit = np.flatnonzero(mask.any(axis=others))
        if hit.size == 0:
            return None
        lo = max(int(hit[0]) - margin_vox[axis], 0)
        hi = min(int(hit[-1]) + margin_vox[axis] + 1, hu.shape[axis])
        box.append(slice(lo, hi))
    return box[0], box[1], box[2]


def resample_isotropic(
    volume: CtVolume, box: tuple[slice, slice, slice], spacing_mm: float
) -> IsoGrid:
    """Trilinear resampling of the boxed part of ``volume`` to ``spacing_mm`` voxels."""
    src_spacing = np.asarray(volume.spacing_mm)
    step = spacing_mm / src_spacing
    start = np.array([s.start for s in box], dtype=np.float64)
    extent = np.array([s.stop - s.start - 1 for s in box], dtype=np.float64)
    shape = tuple(int(n) for n in np.floor(extent / step + 1e-9).astype(int) + 1)
    crop = np.ascontiguousarray(volume.hu[box])
    iso = ndimage.affine_transform(
        crop,
        step,
        offset=0.0,
        output_shape=shape,
        output=np.float32,
        order=1,
        mode="nearest",
        prefilter=False,
    )
    affine = volume.patient_from_index
    patient_from_case = np.eye(4)
    patient_from_case[:3, :3] = affine[:3, :3] / src_spacing[None, :]
    patient_from_case[:3, 3] = (affine @ np.append(start, 1.0))[:3]
    return IsoGrid(iso, spacing_mm, patient_from_case, start, step)
