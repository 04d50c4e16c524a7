"""Triangle meshes held in numpy arrays, turned into Panda3D geometry, and simple solids.

Everything here is a pure array function or builds a ``GeomNode`` from arrays; no scene graph,
no ShowBase. Vertices are float32 N x 3 (mm), faces int N x 3 vertex indices, colours float32
N x 4 (linear 0..1 RGBA).
"""

import numpy as np
import numpy.typing as npt
from panda3d.core import (
    Geom,
    GeomNode,
    GeomTriangles,
    GeomVertexArrayFormat,
    GeomVertexData,
    GeomVertexFormat,
    InternalName,
)

FloatArray = npt.NDArray[np.float32]
IndexArray = npt.NDArray[np.int32]


def _vertex_format() -> GeomVertexFormat:
    # one interleaved array of float32 columns: the byte layout numpy writes, no packing surprises
    array = GeomVertexArrayFormat()
    array.add_column(InternalName.get_vertex(), 3, Geom.NT_float32, Geom.C_point)
    array.add_column(InternalName.get_normal(), 3, Geom.NT_float32, Geom.C_normal)
    array.add_column(InternalName.get_color(), 4, Geom.NT_float32, Geom.C_color)
    return GeomVertexFormat.register_format(GeomVertexFormat(array))


_FORMAT = _vertex_format()


def vertex_normals(vertices: FloatArray, faces: IndexArray) -> FloatArray:
    """Area-weighted unit vertex normals following the faces' winding (counter-clockwise = out)."""
    v = vertices.astype(np.float64)
    f = faces.astype(np.int64)
    face_n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    normals = np.zeros_like(v)
    for corner in range(3):
        for axis in range(3):
            normals[:, axis] += np.bincount(f[:, corner], face_n[:, axis], minlength=len(v))
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    # vertices used by no face (or only degenerate ones) get an arbitrary but finite normal
    normals = np.where(length > 0, normals / np.maximum(length, 1e-30), [0.0, 0.0, 1.0])
    return normals.astype(np.float32)


def signed_volume_mm3(vertices: FloatArray, faces: IndexArray) -> float:
    """Volume enclosed by a closed mesh; negative when its faces wind inwards."""
    v = vertices.astype(np.float64)
    f = faces.astype(np.int64)
    return float(np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6.0)


def outward_faces(vertices: FloatArray, faces: IndexArray) -> IndexArray:
    """The faces, reversed if they wind inwards, so lighting and culling see the outside."""
    if signed_volume_mm3(vertices, faces) < 0:
        return np.ascontiguousarray(faces[:, ::-1]).astype(np.int32)
    return faces.astype(np.int32)


def transform_points(matrix_4x4: npt.NDArray[np.float64], points: npt.ArrayLike) -> FloatArray:
    """Apply a 4 x 4 affine matrix to N x 3 points (column-vector convention)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return (p @ matrix_4x4[:3, :3].T + matrix_4x4[:3, 3]).astype(np.float32)


def transform_directions(matrix_4x4: npt.NDArray[np.float64], normals: npt.ArrayLike) -> FloatArray:
    """N x 3 normals under the matrix: inverse transpose of its linear part, re-normalised."""
    n = np.asarray(normals, dtype=np.float64).reshape(-1, 3) @ np.linalg.inv(matrix_4x4[:3, :3])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    unit: FloatArray = (n / np.maximum(length, 1e-30)).astype(np.float32)
    return unit


def mesh_geom_node(
    name: str,
    vertices: FloatArray,
    faces: IndexArray,
    colors: npt.ArrayLike,
    normals: FloatArray | None = None,
) -> GeomNode:
    """A ``GeomNode`` holding one triangle mesh; ``colors`` is one RGBA or one per vertex."""
    n_vertices = len(vertices)
    if normals is None:
        normals = vertex_normals(vertices, faces)
    rgba = np.broadcast_to(np.asarray(colors, dtype=np.float32), (n_vertices, 4))
    interleaved = np.empty((n_vertices, 10), dtype=np.float32)
    interleaved[:, 0:3] = vertices
    interleaved[:, 3:6] = normals
    interleaved[:, 6:10] = rgba

    # copy the arrays straight into Panda's buffers instead of a Python loop per vertex
    vdata = GeomVertexData(name, _FORMAT, Geom.UH_static)
    vdata.unclean_set_num_rows(n_vertices)
    memoryview(vdata.modify_array(0)).cast("B")[:] = interleaved.tobytes()
    triangles = GeomTriangles(Geom.UH_static)
    triangles.set_index_type(Geom.NT_uint32)
    indices = triangles.modify_vertices()
    indices.unclean_set_num_rows(faces.size)
    memoryview(indices).cast("B")[:] = np.ascontiguousarray(faces, dtype=np.uint32).tobytes()

    geom = Geom(vdata)
    geom.add_primitive(triangles)
    node = GeomNode(name)
    node.add_geom(geom)
    return node


def uv_sphere(
    radius_mm: float, *, rings: int = 12, segments: int = 24
) -> tuple[FloatArray, IndexArray]:
    """A sphere centred on the origin, faces wound outwards."""
    theta = np.linspace(0.0, np.pi, rings + 1)
    phi = np.linspace(0.0, 2.0 * np.pi, segments + 1)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    vertices = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], axis=-1)
    vertices = (vertices.reshape(-1, 3) * radius_mm).astype(np.float32)
    faces = []
    for i in range(rings):
        for j in range(segments):
            a = i * (segments + 1) + j
            b = a + segments + 1
            faces += [(a, b, a + 1), (a + 1, b, b + 1)]
    return vertices, outward_faces(vertices, np.asarray(faces, dtype=np.int32))


def capped_cylinder(
    start_mm: npt.ArrayLike, end_mm: npt.ArrayLike, radius_mm: float, *, segments: int = 24
) -> tuple[FloatArray, IndexArray]:
    """A closed cylinder from ``start_mm`` to ``end_mm``, faces wound outwards."""
    a = np.asarray(start_mm, dtype=np.float64)
    b = np.asarray(end_mm, dtype=np.float64)
    axis = b - a
    length = float(np.linalg.norm(axis))
    axis = axis / length if length > 0 else np.array([0.0, 0.0, 1.0])
    # two unit vectors perpendicular to the axis span the circular cross-section
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    w = np.cross(axis, u)
    angles = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    ring = radius_mm * (np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * w)
    # side walls get their own vertices so the caps keep sharp edges under smooth normals
    side = np.concatenate([a + ring, b + ring])
    caps = np.concatenate([a + ring, b + ring, [a, b]])
    vertices = np.concatenate([side, caps]).astype(np.float32)
    faces = []
    n = segments
    for j in range(n):
        k = (j + 1) % n
        faces += [(j, k, n + k), (j, n + k, n + j)]
    base = 2 * n
    centre_a, centre_b = base + 2 * n, base + 2 * n + 1
    for j in range(n):
        k = (j + 1) % n
        faces += [(centre_a, base + k, base + j), (centre_b, base + n + j, base + n + k)]
    return vertices, outward_faces(vertices, np.asarray(faces, dtype=np.int32))


def box(
    size_mm: tuple[float, float, float], centre_mm: tuple[float, float, float]
) -> tuple[FloatArray, IndexArray]:
    """An axis-aligned box, each face with its own corners (flat-shaded), faces wound outwards."""
    half = np.asarray(size_mm, dtype=np.float64) / 2.0
    centre = np.asarray(centre_mm, dtype=np.float64)
    vertices: list[npt.NDArray[np.float64]] = []
    faces: list[tuple[int, int, int]] = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            # the face's two in-plane axes, ordered so the quad winds outwards
            u, v = (axis + 1) % 3, (axis + 2) % 3
            if sign < 0:
                u, v = v, u
            base = len(vertices)
            for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                corner = np.zeros(3)
                corner[axis] = sign * half[axis]
                corner[u] = du * half[u]
                corner[v] = dv * half[v]
                vertices.append(centre + corner)
            faces += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
    return np.asarray(vertices, dtype=np.float32), np.asarray(faces, dtype=np.int32)
