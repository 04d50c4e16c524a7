"""What a case shows, as arrays in the view's world frame: bones, protected zones, landmarks.

The world frame is the patient frame (DICOM LPS, mm) shifted so the bones' centre sits at the
origin. Panda3D's world is x right, y forward (into the screen), z up; with LPS that puts the
patient's left on +x, posterior on +y and superior on +z, so a camera on the -y side sees the
anterior face with superior up and the patient's right on the viewer's left (the radiological
convention for a frontal view). The mapping is a pure translation of LPS: no handedness flip.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from skimage.measure import marching_cubes

from sim_core.case.bundle import TISSUE_NERVE, TISSUE_VESSEL, CaseBundle
from sim_core.view.mesh_nodes import (
    FloatArray,
    IndexArray,
    outward_faces,
    transform_points,
)

Matrix = npt.NDArray[np.float64]

# protected zones are shown as smoothed hulls: a binary mask meshed directly is a staircase
_ZONE_SMOOTHING_VOXELS = 1.2
# a zone thinner than this many voxels in total is label noise, not a structure to show
_MIN_ZONE_VOXELS = 8


@dataclass(frozen=True)
class WorldMesh:
    name: str
    vertices_mm: FloatArray  # N x 3, world frame
    faces: IndexArray  # M x 3, wound outwards


@dataclass(frozen=True)
class Landmark:
    name: str
    world_mm: tuple[float, float, float]


@dataclass(frozen=True)
class CaseGeometry:
    """Everything static in a case's scene, in the world frame."""

    world_from_case: Matrix
    bones: tuple[WorldMesh, ...]
    zones: tuple[tuple[int, WorldMesh], ...]  # (tissue label, hull)
    landmarks: tuple[Landmark, ...]
    centre_mm: FloatArray  # bones' bounding-box centre, world frame (the origin, give or take)
    radius_mm: float  # sphere around the bones' bounding box


def world_from_case(patient_from_case: Matrix, centre_lps_mm: npt.ArrayLike) -> Matrix:
    """Case frame -> world frame: into patient coordinates, then the centre to the origin."""
    shift = np.eye(4)
    shift[:3, 3] = -np.asarray(centre_lps_mm, dtype=np.float64)
    return shift @ patient_from_case


def _case_bounds_mm(bundle: CaseBundle) -> tuple[FloatArray, FloatArray]:
    # bones' extent in the case frame; the whole grid when the case has no mesh to show
    meshes = [m.vertices_mm for m in bundle.meshes if len(m.vertices_mm)]
    if meshes:
        lo = np.min([v.min(axis=0) for v in meshes], axis=0)
        hi = np.max([v.max(axis=0) for v in meshes], axis=0)
        return lo.astype(np.float32), hi.astype(np.float32)
    shape = np.asarray(bundle.tissue.shape, dtype=np.float32)
    return np.zeros(3, np.float32), (shape - 1) * np.float32(bundle.spacing_mm)


def zone_mesh_case_mm(
    tissue: npt.NDArray[np.uint8], label: int, spacing_mm: float
) -> tuple[FloatArray, IndexArray] | None:
    """A smoothed hull around the voxels carrying ``label``, in case-frame mm, or None if absent."""
    mask = tissue == label
    if int(np.count_nonzero(mask)) < _MIN_ZONE_VOXELS:
        return None
    # crop to the zone (plus a margin for the smoothing) so big grids stay cheap
    nonzero = np.nonzero(mask)
    lo = np.maximum(np.array([int(ix.min()) for ix in nonzero]) - 3, 0)
    hi = np.minimum(np.array([int(ix.max()) for ix in nonzero]) + 4, mask.shape)
    crop = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].astype(np.float32)
    # zero border so hulls that touch the grid edge still close
    crop = np.pad(crop, 1)
    field = ndimage.gaussian_filter(crop, _ZONE_SMOOTHING_VOXELS)
    if field.max() <= 0.5:
        return None
    vertices, faces, _, _ = marching_cubes(field, 0.5)  # type: ignore[no-untyped-call]
    vertices = ((vertices - 1.0 + lo) * spacing_mm).astype(np.float32)
    return vertices, faces.astype(np.int32)


def _landmarks(bundle: CaseBundle, world_from_patient: Matrix) -> tuple[Landmark, ...]:
    # case.json "landmarks": a list of {"name", "lps_mm" | "case_mm"} or {name: {...}}
    raw: Any = bundle.meta.get("landmarks") or []
    if isinstance(raw, dict):
        raw = [dict(value, name=name) for name, value in raw.items() if isinstance(value, dict)]
    marks = []
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        if "lps_mm" in entry:
            point = transform_points(world_from_patient, entry["lps_mm"])[0]
        elif "case_mm" in entry:
            to_world = world_from_patient @ bundle.patient_from_case
            point = transform_points(to_world, entry["case_mm"])[0]
        else:
            continue
        marks.append(
            Landmark(
                str(entry.get("name", "")), (float(point[0]), float(point[1]), float(point[2]))
            )
        )
    return tuple(marks)


def case_geometry(bundle: CaseBundle) -> CaseGeometry:
    """Bones, protected zones and landmarks of a case, in the view's world frame."""
    lo, hi = _case_bounds_mm(bundle)
    centre_lps = transform_points(bundle.patient_from_case, (lo + hi) / 2)[0]
    to_world = world_from_case(bundle.patient_from_case, centre_lps)
    world_from_patient = to_world @ np.linalg.inv(bundle.patient_from_case)

    bones = []
    for mesh in bundle.meshes:
        if len(mesh.faces) == 0:
            continue
        vertices = transform_points(to_world, mesh.vertices_mm)
        bones.append(WorldMesh(mesh.name, vertices, outward_faces(vertices, mesh.faces)))
    zones = []
    for label in (TISSUE_NERVE, TISSUE_VESSEL):
        hull = zone_mesh_case_mm(bundle.tissue, label, bundle.spacing_mm)
        if hull is None:
            continue
        vertices = transform_points(to_world, hull[0])
        zones.append(
            (label, WorldMesh(f"zone-{label}", vertices, outward_faces(vertices, hull[1])))
        )

    # frame the bones: zones (a vessel column through the whole scan) would shrink them too much
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    world_corners = transform_points(to_world, corners)
    centre = world_corners.mean(axis=0)
    radius = float(np.linalg.norm(world_corners - centre, axis=1).max())
    return CaseGeometry(
        world_from_case=to_world,
        bones=tuple(bones),
        zones=tuple(zones),
        landmarks=_landmarks(bundle, world_from_patient),
        centre_mm=centre.astype(np.float32),
        radius_mm=max(radius, 1.0),
    )
