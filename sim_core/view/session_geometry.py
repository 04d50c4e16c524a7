"""What a running session adds to a case's scene, as arrays: cut bone, instrument, plan line.

Pure array functions; the view turns their output into nodes. Positions come in the case
frame (mm) or in voxel indices and leave in the view's world frame (see ``case_geometry``).
"""

import numpy as np
import numpy.typing as npt

from sim_core.case.bundle import TISSUE_CANCELLOUS
from sim_core.view.chunk_mesher import ChunkMesh
from sim_core.view.mesh_nodes import (
    FloatArray,
    IndexArray,
    box,
    capped_cylinder,
    transform_directions,
    transform_points,
    uv_sphere,
)
from sim_core.view.snapshot import TOOL_BURR, TOOL_SAW

Rgba = tuple[float, float, float, float]

CORTEX_COLOUR: Rgba = (0.91, 0.86, 0.74, 1.0)
# cancellous bone is full of red marrow: a cut into it reads pink-red against ivory cortex
CANCELLOUS_COLOUR: Rgba = (0.80, 0.42, 0.36, 1.0)
BURR_COLOUR: Rgba = (0.86, 0.72, 0.36, 1.0)
STEEL_COLOUR: Rgba = (0.66, 0.70, 0.76, 1.0)
TRAJECTORY_COLOUR: Rgba = (0.20, 0.95, 0.45, 0.85)

SHAFT_LENGTH_MM = 60.0
TRAJECTORY_RADIUS_MM = 0.5
# the trajectory line runs on past entry and target so it stays visible beside the tool
TRAJECTORY_OVERHANG_MM = 15.0


def chunk_world_mesh(
    mesh: ChunkMesh,
    tissue: npt.NDArray[np.uint8],
    world_from_index: npt.NDArray[np.float64],
) -> tuple[FloatArray, IndexArray, FloatArray, FloatArray]:
    """(vertices, faces, normals, colours) of a chunk in the world frame, coloured by tissue.

    Each vertex takes the tissue of its nearest voxel: cancellous where the cut went through
    marrow, cortex elsewhere (the intact outer surface sits on cortex).
    """
    nearest = np.rint(mesh.vertices).astype(np.int64)
    np.clip(nearest, 0, np.asarray(tissue.shape) - 1, out=nearest)
    labels = tissue[nearest[:, 0], nearest[:, 1], nearest[:, 2]]
    colours = np.where(
        (labels == TISSUE_CANCELLOUS)[:, None],
        np.asarray(CANCELLOUS_COLOUR, np.float32),
        np.asarray(CORTEX_COLOUR, np.float32),
    ).astype(np.float32)
    vertices = transform_points(world_from_index, mesh.vertices)
    normals = transform_directions(world_from_index, mesh.normals)
    faces = mesh.faces
    # a mirroring frame (case axes S, P, L) turns counter-clockwise into clockwise
    if np.linalg.det(world_from_index[:3, :3]) < 0:
        faces = np.ascontiguousarray(faces[:, ::-1])
    return vertices, faces.astype(np.int32), normals, colours


def instrument_parts(kind: str, radius_mm: float) -> list[tuple[FloatArray, IndexArray, Rgba]]:
    """The tool in its own frame: tip at the origin, shaft back along -y (the view aims +y)."""
    shaft_radius = max(min(radius_mm * 0.45, 1.2), 0.5)
    if kind == TOOL_BURR:
        head_v, head_f = uv_sphere(radius_mm, rings=14, segments=28)
        shaft_v, shaft_f = capped_cylinder(
            (0.0, 0.0, 0.0), (0.0, -SHAFT_LENGTH_MM, 0.0), shaft_radius
        )
        return [(head_v, head_f, BURR_COLOUR), (shaft_v, shaft_f, STEEL_COLOUR)]
    if kind == TOOL_SAW:
        # a thin blade as wide as the cut, its cutting edge at the tip, on a steel hub
        width = max(4.0 * radius_mm, 8.0)
        blade_v, blade_f = box((width, 20.0, 0.6), (0.0, -10.0, 0.0))
        hub_v, hub_f = capped_cylinder((0.0, -20.0, 0.0), (0.0, -SHAFT_LENGTH_MM, 0.0), 3.0)
        return [(blade_v, blade_f, STEEL_COLOUR), (hub_v, hub_f, BURR_COLOUR)]
    # drills, wires, awls, probes, screws: a rod at the cutting radius with a rounded point
    # and a thicker chuck or handle further back
    bit_length = max(6.0 * radius_mm, 25.0)
    bit_v, bit_f = capped_cylinder((0.0, -0.5 * radius_mm, 0.0), (0.0, -bit_length, 0.0), radius_mm)
    tip_v, tip_f = uv_sphere(radius_mm * 0.999, rings=10, segments=24)
    chuck_v, chuck_f = capped_cylinder(
        (0.0, -bit_length, 0.0), (0.0, -SHAFT_LENGTH_MM, 0.0), max(radius_mm * 1.8, 2.5)
    )
    tip_v = tip_v * np.asarray([1.0, 0.5, 1.0], np.float32) + np.asarray(
        [0.0, -0.5 * radius_mm, 0.0], np.float32
    )
    return [
        (bit_v, bit_f, STEEL_COLOUR),
        (tip_v, tip_f, STEEL_COLOUR),
        (chuck_v, chuck_f, BURR_COLOUR),
    ]


def trajectory_mesh(
    entry_case_mm: npt.ArrayLike,
    target_case_mm: npt.ArrayLike,
    world_from_case: npt.NDArray[np.float64],
) -> tuple[FloatArray, IndexArray, FloatArray, FloatArray]:
    """A thin rod along the planned trajectory, beyond both ends; plus the two ends (world mm)."""
    ends = transform_points(
        world_from_case, np.asarray([entry_case_mm, target_case_mm], dtype=np.float64)
    )
    entry, target = ends[0].astype(np.float64), ends[1].astype(np.float64)
    direction = target - entry
    length = float(np.linalg.norm(direction))
    if length == 0:
        raise ValueError("the trajectory's entry and target are the same point")
    direction /= length
    vertices, faces = capped_cylinder(
        entry - direction * TRAJECTORY_OVERHANG_MM,
        target + direction * 2.0,
        TRAJECTORY_RADIUS_MM,
        segments=12,
    )
    return vertices, faces, ends[0], ends[1]
