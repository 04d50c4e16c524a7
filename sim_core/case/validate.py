"""Compare a built case with the ground truth of the phantom it was built from.

This is how the case builder is validated: segmentation overlap (Dice) against the phantom's
voxel truth, and voxel and mesh bone volume against the analytic bone volume the phantom
integrated while it painted the bone.
"""

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sim_core.case.bundle import TISSUE_CANCELLOUS, TISSUE_CORTEX, load_bundle
from sim_core.case.mesh import mesh_volume_mm3
from sim_core.ct.phantom import read_truth

BONE_TISSUES = (TISSUE_CORTEX, TISSUE_CANCELLOUS)


def truth_on_case_grid(
    truth_grid: npt.NDArray[np.uint8],
    index_from_patient: npt.NDArray[np.float64],
    patient_from_case: npt.NDArray[np.float64],
    case_shape: tuple[int, int, int],
    spacing_mm: float,
) -> npt.NDArray[np.uint8]:
    """The truth label nearest to each case voxel centre (0 outside the source grid)."""
    out = np.zeros(case_shape, dtype=np.uint8)
    case_index_to_source = index_from_patient @ patient_from_case
    j, k = np.meshgrid(np.arange(case_shape[1]), np.arange(case_shape[2]), indexing="ij")
    stacked = np.stack([np.zeros_like(j), j, k, np.ones_like(j)], axis=0).reshape(4, -1)
    plane = stacked.astype(np.float64)
    plane[1:3] *= spacing_mm
    for i in range(case_shape[0]):
        plane[0] = i * spacing_mm
        src = np.rint(case_index_to_source[:3] @ plane).astype(np.int64)
        inside = np.all((src >= 0) & (src < np.array(truth_grid.shape)[:, None]), axis=0)
        values = np.zeros(src.shape[1], dtype=np.uint8)
        values[inside] = truth_grid[src[0, inside], src[1, inside], src[2, inside]]
        out[i] = values.reshape(case_shape[1], case_shape[2])
    return out


def compare_with_truth(case_dir: Path, series_dir: Path) -> dict[str, Any]:
    """Dice of the bone mask and the relative error of voxel and mesh bone volume."""
    bundle = load_bundle(case_dir)
    found = read_truth(series_dir)
    if found is None:
        raise ValueError(f"{series_dir}: no phantom truth beside this series")
    meta, tissue, _ = found
    index_from_patient = np.linalg.inv(np.asarray(meta["patient_from_index"], dtype=np.float64))
    truth = truth_on_case_grid(
        tissue,
        index_from_patient,
        bundle.patient_from_case,
        bundle.tissue.shape,
        bundle.spacing_mm,
    )
    truth_bone = np.isin(truth, BONE_TISSUES)
    case_bone = np.isin(bundle.tissue, BONE_TISSUES)
    overlap = np.count_nonzero(truth_bone & case_bone)
    dice = 2.0 * overlap / (np.count_nonzero(truth_bone) + np.count_nonzero(case_bone))
    true_mm3 = float(meta["bone_volume_mm3"])
    voxel_mm3 = float(np.count_nonzero(case_bone)) * bundle.spacing_mm**3
    mesh_mm3 = sum(mesh_volume_mm3(m.vertices_mm, m.faces) for m in bundle.meshes)
    return {
        "dice": round(dice, 4),
        "true_volume_mm3": round(true_mm3, 1),
        "voxel_volume_mm3": round(voxel_mm3, 1),
        "mesh_volume_mm3": round(mesh_mm3, 1),
        "voxel_volume_error": round(voxel_mm3 / true_mm3 - 1.0, 4),
        "mesh_volume_error": round(mesh_mm3 / true_mm3 - 1.0, 4),
    }
