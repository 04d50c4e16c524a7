"""Tiny case bundles for the view tests: bones as smoothed masks, zones as tissue labels."""

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from skimage.measure import marching_cubes

from sim_core.case.bundle import (
    TISSUE_CANCELLOUS,
    TISSUE_CORTEX,
    Mesh,
    write_bundle,
)

SPACING_MM = 1.0
N = 60
# case axes (0, 1, 2) -> patient (S, P, L), as the case builder writes them: a reflection,
# so the view must get winding and orientation right without relying on an identity frame
PATIENT_FROM_CASE = np.array(
    [[0.0, 0.0, 1.0, -30.0], [0.0, 1.0, 0.0, -24.0], [1.0, 0.0, 0.0, -30.0], [0.0, 0.0, 0.0, 1.0]]
)


def patient_grid() -> tuple[npt.NDArray[np.float64], ...]:
    idx = np.arange(N) * SPACING_MM
    i, j, k = np.meshgrid(idx, idx, idx, indexing="ij")
    patient = np.stack([i, j, k, np.ones_like(i)], axis=-1) @ PATIENT_FROM_CASE.T
    return patient[..., 0], patient[..., 1], patient[..., 2]


def _bone_mesh(name: str, mask: npt.NDArray[np.bool_]) -> Mesh:
    field = ndimage.gaussian_filter(np.pad(mask, 1).astype(np.float32), 1.0)
    vertices, faces, _, _ = marching_cubes(field, 0.5)  # type: ignore[no-untyped-call]
    return Mesh(name, ((vertices - 1.0) * SPACING_MM).astype(np.float32), faces.astype(np.int32))


def write_case(
    out: Path,
    bones: dict[str, npt.NDArray[np.bool_]],
    zones: dict[int, npt.NDArray[np.bool_]],
    landmarks: list[dict[str, object]],
) -> Path:
    tissue = np.zeros((N, N, N), np.uint8)
    bone_id = np.zeros_like(tissue)
    meshes = []
    for number, (name, mask) in enumerate(bones.items(), start=1):
        tissue[mask] = TISSUE_CORTEX
        tissue[ndimage.binary_erosion(mask, iterations=2)] = TISSUE_CANCELLOUS
        bone_id[mask] = number
        meshes.append(_bone_mesh(name, mask))
    for label, mask in zones.items():
        tissue[mask & (tissue == 0)] = label
    hu = np.select([tissue == TISSUE_CORTEX, tissue == TISSUE_CANCELLOUS], [1200, 250], 40)
    density = np.select([tissue == TISSUE_CORTEX, tissue == TISSUE_CANCELLOUS], [1.8, 0.3], 0.0)
    meta: dict[str, Any] = {
        "name": out.name,
        "spacing_mm": SPACING_MM,
        "patient_from_case": PATIENT_FROM_CASE.tolist(),
        "bones": [{"name": m.name} for m in meshes],
        "landmarks": landmarks,
    }
    grids: dict[str, npt.NDArray[Any]] = {
        "hu": hu.astype(np.int16),
        "density_g_cm3": density.astype(np.float32),
        "tissue": tissue,
        "bone_id": bone_id,
    }
    write_bundle(out, meta, grids, meshes)
    return out
