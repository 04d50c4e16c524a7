"""Bone surface meshes: VTK flying edges, then quadric decimation.

The surface is the CT's own half-maximum edge, interpolated between voxels (see
``_edge_field``), so it is smooth and places the periosteum where the partial volume says;
a smoothed label mask is the fallback when no CT is given.

Chosen over scikit-image's marching cubes because it is 4-6x faster on this class of machine
(shared/domain/simulation.md); ``benchmarks/case_build.py`` times both on the same input.
"""

from dataclasses import dataclass

import fast_simplification
import numpy as np
import numpy.typing as npt
from scipy import ndimage
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkFiltersCore import vtkFlyingEdges3D

from sim_core.case.bundle import Mesh

SMOOTH_SIGMA_VOX = 1.0
EDGE_SIGMA_VOX = 0.6  # against CT noise, well below the partial-volume width
TARGET_FACES = 120_000


@dataclass(frozen=True)
class SurfaceEdge:
    """Where the bone surface lies in HU: ``level_hu``, half-way between soft tissue and
    cortex, and ``contrast_hu``, their difference."""

    level_hu: float
    contrast_hu: float


def _mask_field(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    # a zero border closes surfaces where bone leaves the field of view
    padded = np.pad(mask.astype(np.float32), 2)
    smooth = ndimage.gaussian_filter(padded, SMOOTH_SIGMA_VOX, mode="constant")
    return np.asarray(smooth, np.float32)


def _edge_field(
    hu: npt.NDArray[np.float32],
    mask: npt.NDArray[np.bool_],
    others: npt.NDArray[np.bool_],
    edge: SurfaceEdge,
) -> npt.NDArray[np.float32]:
    """HU rescaled so the periosteal half-maximum edge is level 0.5, pinned away from it.

    Interpolating the CT itself places the surface between voxels where the partial volume
    puts it, instead of on the voxel grid of the mask: no stair-steps and no resampling moire.
    Deep inside the bone the field is 1 (cancellous bone darker than the edge level must not
    make inner surfaces); beyond one voxel outside it, or in another bone, it is 0.
    """
    # the local peak (within 1 mm) is the cortex plateau as this scan resolves it: half of it
    # is the edge even where the cortex is thinner than the blur (full width at half maximum)
    soft_hu = edge.level_hu - 0.5 * edge.contrast_hu
    peak = np.maximum(ndimage.maximum_filter(hu, size=5), np.float32(soft_hu + 200.0))
    field = np.clip((hu - soft_hu) / (peak - soft_hu), 0.0, 1.0).astype(np.float32)
    field[ndimage.binary_erosion(mask, iterations=2)] = 1.0
    field[~ndimage.binary_dilation(mask) | others] = 0.0
    padded = np.pad(field, 2)
    return np.asarray(ndimage.gaussian_filter(padded, EDGE_SIGMA_VOX, mode="constant"), np.float32)


def surface_of_mask(
    mask: npt.NDArray[np.bool_], spacing_mm: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Closed iso-surface (level 0.5) of a binary mask; vertices in case-frame mm."""
    return surface_of_field(_mask_field(mask), spacing_mm)


def surface_of_field(
    field: npt.NDArray[np.float32], spacing_mm: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    """Closed iso-surface at level 0.5 of a field padded by two zero voxels; case-frame mm."""
    image = vtkImageData()
    # VTK's x is the fastest-varying axis, i.e. numpy's last
    image.SetDimensions(field.shape[2], field.shape[1], field.shape[0])
    image.SetSpacing(spacing_mm, spacing_mm, spacing_mm)
    image.GetPointData().SetScalars(numpy_to_vtk(field.ravel(), deep=True))  # type: ignore[no-untyped-call]
    fe = vtkFlyingEdges3D()
    fe.SetInputData(image)
    fe.SetValue(0, 0.5)
    fe.ComputeNormalsOff()
    fe.ComputeGradientsOff()
    fe.ComputeScalarsOff()
    fe.Update()
    poly = fe.GetOutput()
    if poly.GetNumberOfPoints() == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32)
    xyz = vtk_to_numpy(poly.GetPoints().GetData()).astype(np.float64)  # type: ignore[no-untyped-call]
    faces = vtk_to_numpy(poly.GetPolys().GetConnectivityArray())  # type: ignore[no-untyped-call]
    faces = faces.reshape(-1, 3)
    # back to array-axis order (x, y, z) -> (axis0, axis1, axis2), minus the padding;
    # the axis swap mirrors the mesh, so the winding is reversed to keep normals outward
    verts = xyz[:, ::-1] - 2 * spacing_mm
    return verts.astype(np.float32), np.ascontiguousarray(faces[:, ::-1], dtype=np.int32)


def decimate(
    verts: npt.NDArray[np.float32], faces: npt.NDArray[np.int32], target_faces: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
    if len(faces) <= target_faces:
        return verts, faces
    reduction = 1.0 - target_faces / len(faces)
    v, f = fast_simplification.simplify(verts, faces, target_reduction=reduction)
    return np.asarray(v, dtype=np.float32), np.asarray(f, dtype=np.int32)


def mesh_volume_mm3(verts: npt.NDArray[np.float32], faces: npt.NDArray[np.int32]) -> float:
    """Enclosed volume of a closed, outward-oriented triangle mesh (divergence theorem)."""
    v = verts.astype(np.float64)
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def bone_meshes(
    bone_id: npt.NDArray[np.uint8],
    names: list[str],
    spacing_mm: float,
    *,
    hu: npt.NDArray[np.float32] | None = None,
    edge: SurfaceEdge | None = None,
    target_faces: int = TARGET_FACES,
) -> list[Mesh]:
    """One decimated mesh per bone id (1..len(names)), each meshed in its own bounding box.

    With the CT (``hu``) and its ``edge`` the surface follows the CT at sub-voxel precision;
    without them it is the smoothed boundary of the label mask.
    """
    meshes = []
    boxes = ndimage.find_objects(bone_id, max_label=len(names))
    for i, (name, tight) in enumerate(zip(names, boxes, strict=True), start=1):
        if tight is None:
            continue
        # two voxels of room: the surface may lie in the first voxel outside the mask
        box = tuple(
            slice(max(s.start - 2, 0), min(s.stop + 2, n))
            for s, n in zip(tight, bone_id.shape, strict=True)
        )
        mask = bone_id[box] == i
        if hu is not None and edge is not None:
            ids = bone_id[box]
            field = _edge_field(hu[box], mask, (ids != i) & (ids != 0), edge)
            verts, faces = surface_of_field(field, spacing_mm)
        else:
            verts, faces = surface_of_mask(mask, spacing_mm)
        verts += np.array([s.start for s in box], dtype=np.float32) * np.float32(spacing_mm)
        verts, faces = decimate(verts, faces, target_faces)
        meshes.append(Mesh(name, verts, faces))
    return meshes
