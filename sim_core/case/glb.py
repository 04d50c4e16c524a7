"""Binary glTF (.glb) of a case's bone surfaces, small enough for a browser.

The planner's 3D view shows the bones the case builder meshed from the CT (the bundle's
``meshes/``, case-frame mm), decimated to ``FACE_BUDGET`` triangles in all. Coordinates stay in
the case frame (``index * spacing_mm``), the frame of every plan element, so the browser draws
elements and bone without any transform; ``patient_from_case`` travels in the scene's
``extras`` for the orientation letters.

The writer is the glTF 2.0 binary container and nothing more (no library): a 12-byte header
(magic ``glTF``, version 2, total length), a JSON chunk padded with spaces and a BIN chunk padded
with zeros, both to 4 bytes. One mesh per bone: float32 positions (with the min/max glTF
requires), optional float32 normals, uint32 triangle indices. ``read_glb`` parses that container
back, checking every length, for the tests and for the cache's own sanity check.
"""

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sim_core.case.bundle import CaseBundle
from sim_core.case.mesh import decimate

GLB_MAGIC = b"glTF"
GLB_VERSION = 2
CHUNK_JSON = 0x4E4F534A  # "JSON"
CHUNK_BIN = 0x004E4942  # "BIN\0"
# glTF component and target codes
FLOAT = 5126
UNSIGNED_INT = 5125
ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
TRIANGLES = 4

# all bones together, after decimation: ~0.8 MB of positions and indices, no normals
FACE_BUDGET = 60_000
# a bone is never cut below this many triangles (a small bone would lose its shape)
MIN_FACES_PER_BONE = 500
# bumped whenever the output for the same bundle changes (part of the cache key and ETag)
MESH_FORMAT = 1


class GlbError(ValueError):
    """Bytes that are not a well-formed binary glTF (as this module writes it)."""


@dataclass(frozen=True)
class GlbMesh:
    name: str
    positions: npt.NDArray[np.float32]  # N x 3
    indices: npt.NDArray[np.uint32]  # M x 3, triangles
    normals: npt.NDArray[np.float32] | None = None  # N x 3, unit


@dataclass(frozen=True)
class GlbDocument:
    gltf: dict[str, Any]
    bin: bytes

    def accessor(self, index: int) -> npt.NDArray[Any]:
        """The accessor's data as an (count, components) array (a copy)."""
        acc = self.gltf["accessors"][index]
        view = self.gltf["bufferViews"][acc["bufferView"]]
        dtype = {FLOAT: np.float32, UNSIGNED_INT: np.uint32}[acc["componentType"]]
        width = {"SCALAR": 1, "VEC3": 3}[acc["type"]]
        start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
        count = int(acc["count"])
        end = start + count * width * 4
        if end > view.get("byteOffset", 0) + view["byteLength"] or end > len(self.bin):
            raise GlbError(f"accessor {index} runs past its buffer view")
        data = np.frombuffer(self.bin, dtype=dtype, count=count * width, offset=start)
        return data.reshape(count, width).copy()


def _pad(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % 4)


def write_glb(
    meshes: Sequence[GlbMesh], *, extras: dict[str, Any] | None = None, generator: str = "osteon"
) -> bytes:
    """The meshes as one binary glTF: a node per mesh under one scene (with ``extras``)."""
    blobs: list[bytes] = []
    offset = 0
    views: list[dict[str, Any]] = []
    accessors: list[dict[str, Any]] = []
    gl_meshes: list[dict[str, Any]] = []

    def add(array: npt.NDArray[Any], target: int, accessor: dict[str, Any]) -> int:
        nonlocal offset
        raw = np.ascontiguousarray(array).tobytes()
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(raw), "target": target})
        blobs.append(raw)
        offset += len(raw)  # every element is 4 bytes wide: views stay 4-byte aligned
        accessors.append({"bufferView": len(views) - 1, "byteOffset": 0, **accessor})
        return len(accessors) - 1

    for mesh in meshes:
        pos = np.asarray(mesh.positions, dtype="<f4").reshape(-1, 3)
        idx = np.asarray(mesh.indices, dtype="<u4").reshape(-1, 3)
        if len(pos) == 0 or len(idx) == 0:
            raise GlbError(f"mesh {mesh.name!r} is empty")
        if not np.isfinite(pos).all():
            raise GlbError(f"mesh {mesh.name!r} has a vertex that is not finite")
        if int(idx.max()) >= len(pos):
            raise GlbError(f"mesh {mesh.name!r} indexes a vertex that does not exist")
        attributes = {
            "POSITION": add(
                pos,
                ARRAY_BUFFER,
                {
                    "componentType": FLOAT,
                    "count": len(pos),
                    "type": "VEC3",
                    "min": [float(x) for x in pos.min(axis=0)],
                    "max": [float(x) for x in pos.max(axis=0)],
                },
            )
        }
        if mesh.normals is not None:
            nrm = np.asarray(mesh.normals, dtype="<f4").reshape(-1, 3)
            if nrm.shape != pos.shape:
                raise GlbError(f"mesh {mesh.name!r}: one normal per vertex")
            attributes["NORMAL"] = add(
                nrm, ARRAY_BUFFER, {"componentType": FLOAT, "count": len(nrm), "type": "VEC3"}
            )
        indices = add(
            idx.reshape(-1),
            ELEMENT_ARRAY_BUFFER,
            {"componentType": UNSIGNED_INT, "count": int(idx.size), "type": "SCALAR"},
        )
        gl_meshes.append(
            {
                "name": mesh.name,
                "primitives": [{"attributes": attributes, "indices": indices, "mode": TRIANGLES}],
            }
        )

    scene: dict[str, Any] = {"nodes": list(range(len(gl_meshes)))}
    if extras:
        scene["extras"] = extras
    gltf = {
        "asset": {"version": "2.0", "generator": generator},
        "scene": 0,
        "scenes": [scene],
        "nodes": [{"mesh": i, "name": m["name"]} for i, m in enumerate(gl_meshes)],
        "meshes": gl_meshes,
        "accessors": accessors,
        "bufferViews": views,
        "buffers": [{"byteLength": offset}],
    }
    json_chunk = _pad(json.dumps(gltf, separators=(",", ":"), allow_nan=False).encode(), b" ")
    bin_chunk = _pad(b"".join(blobs), b"\0")
    total = 12 + 8 + len(json_chunk) + 8 + len(bin_chunk)
    return b"".join(
        (
            struct.pack("<4sII", GLB_MAGIC, GLB_VERSION, total),
            struct.pack("<II", len(json_chunk), CHUNK_JSON),
            json_chunk,
            struct.pack("<II", len(bin_chunk), CHUNK_BIN),
            bin_chunk,
        )
    )


def read_glb(data: bytes) -> GlbDocument:
    """Parse a binary glTF with one JSON and one BIN chunk; every length is checked."""
    if len(data) < 20:
        raise GlbError("shorter than a glTF header")
    magic, version, total = struct.unpack_from("<4sII", data, 0)
    if magic != GLB_MAGIC or version != GLB_VERSION:
        raise GlbError("not a glTF 2.0 binary")
    if total != len(data):
        raise GlbError(f"header says {total} bytes, file has {len(data)}")
    json_len, json_type = struct.unpack_from("<II", data, 12)
    if json_type != CHUNK_JSON or 20 + json_len > total or json_len % 4:
        raise GlbError("the first chunk is not a well-formed JSON chunk")
    gltf = json.loads(data[20 : 20 + json_len].decode("utf-8"))
    at = 20 + json_len
    blob = b""
    if at < total:
        if at + 8 > total:
            raise GlbError("truncated BIN chunk header")
        bin_len, bin_type = struct.unpack_from("<II", data, at)
        if bin_type != CHUNK_BIN or at + 8 + bin_len != total or bin_len % 4:
            raise GlbError("the second chunk is not a well-formed BIN chunk")
        blob = data[at + 8 : at + 8 + bin_len]
    if not isinstance(gltf, dict) or gltf.get("asset", {}).get("version") != "2.0":
        raise GlbError("the JSON chunk is not a glTF 2.0 document")
    declared = gltf.get("buffers", [{}])[0].get("byteLength", 0) if gltf.get("buffers") else 0
    if declared > len(blob):
        raise GlbError("the buffer is longer than the BIN chunk")
    return GlbDocument(gltf, blob)


def _face_budgets(face_counts: Sequence[int], budget: int) -> list[int]:
    """Each bone's share of ``budget``, in proportion to its faces (never above what it has)."""
    total = sum(face_counts)
    if total <= budget:
        return list(face_counts)
    return [min(n, max(MIN_FACES_PER_BONE, int(budget * n / total))) for n in face_counts]


def bone_glb(bundle: CaseBundle, *, face_budget: int = FACE_BUDGET) -> bytes:
    """The bundle's bones, decimated to ``face_budget`` triangles in all, as binary glTF."""
    bones = [m for m in bundle.meshes if len(m.faces)]
    budgets = _face_budgets([len(m.faces) for m in bones], face_budget)
    meshes = []
    for bone, target in zip(bones, budgets, strict=True):
        vertices, faces = decimate(
            np.array(bone.vertices_mm, np.float32), np.array(bone.faces, np.int32), target
        )
        if len(faces) == 0:
            continue
        meshes.append(GlbMesh(bone.name, vertices, faces.astype(np.uint32)))
    if not meshes:
        raise GlbError("the case has no bone surface to show")
    extras = {
        "frame": "case_mm",
        "content_hash": bundle.content_hash,
        "spacing_mm": bundle.spacing_mm,
        "shape": [int(n) for n in bundle.tissue.shape],
        "patient_from_case": bundle.patient_from_case.tolist(),
        "mesh_format": MESH_FORMAT,
    }
    return write_glb(meshes, extras=extras, generator=f"osteon bone_glb/{MESH_FORMAT}")
