"""The planner's bone mesh as binary glTF (sim_core/case/glb.py): the container is written as
glTF 2.0 says and parses back to the same numbers; the lumbar phantom's bones come out in the
case frame, within the bones' own extent, under the triangle budget and small enough to send."""

import json
import struct

import numpy as np
import pytest
from planning_cases import LumbarCase

from sim_core.case.bundle import load_bundle
from sim_core.case.glb import (
    CHUNK_BIN,
    CHUNK_JSON,
    FACE_BUDGET,
    FLOAT,
    UNSIGNED_INT,
    GlbError,
    GlbMesh,
    bone_glb,
    read_glb,
    write_glb,
)

TETRA = np.array([[0, 0, 0], [10, 0, 0], [0, 20, 0], [0, 0, 30]], np.float32)
TETRA_FACES = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.uint32)


def test_the_container_is_a_glb_header_a_json_chunk_and_a_bin_chunk() -> None:
    normals = np.tile(np.array([0, 0, 1], np.float32), (4, 1))
    data = write_glb([GlbMesh("L4", TETRA, TETRA_FACES, normals)], extras={"frame": "case_mm"})

    magic, version, total = struct.unpack_from("<4sII", data, 0)
    assert (magic, version, total) == (b"glTF", 2, len(data))
    json_len, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == CHUNK_JSON and json_len % 4 == 0
    gltf = json.loads(data[20 : 20 + json_len])
    bin_len, bin_type = struct.unpack_from("<II", data, 20 + json_len)
    assert bin_type == CHUNK_BIN and bin_len % 4 == 0
    assert 20 + json_len + 8 + bin_len == len(data)
    assert gltf["buffers"] == [{"byteLength": 4 * 12 + 4 * 12 + 12 * 4}]

    (mesh,) = gltf["meshes"]
    assert mesh["name"] == "L4"
    primitive = mesh["primitives"][0]
    assert primitive["mode"] == 4
    position = gltf["accessors"][primitive["attributes"]["POSITION"]]
    assert (position["componentType"], position["type"], position["count"]) == (FLOAT, "VEC3", 4)
    assert position["min"] == [0, 0, 0] and position["max"] == [10, 20, 30]
    indices = gltf["accessors"][primitive["indices"]]
    assert (indices["componentType"], indices["type"], indices["count"]) == (
        UNSIGNED_INT,
        "SCALAR",
        12,
    )
    assert gltf["scenes"][0]["extras"] == {"frame": "case_mm"}
    assert all(v["byteOffset"] % 4 == 0 for v in gltf["bufferViews"])

    # and back: the same numbers
    doc = read_glb(data)
    np.testing.assert_array_equal(doc.accessor(primitive["attributes"]["POSITION"]), TETRA)
    np.testing.assert_array_equal(doc.accessor(primitive["attributes"]["NORMAL"]), normals)
    np.testing.assert_array_equal(doc.accessor(primitive["indices"]).reshape(-1, 3), TETRA_FACES)


def test_normals_are_optional() -> None:
    doc = read_glb(write_glb([GlbMesh("L4", TETRA, TETRA_FACES)]))
    assert set(doc.gltf["meshes"][0]["primitives"][0]["attributes"]) == {"POSITION"}


@pytest.mark.parametrize(
    ("mesh", "why"),
    [
        (GlbMesh("a", np.array([[0, 0, np.nan]] * 3, np.float32), TETRA_FACES[:1] % 3), "finite"),
        (GlbMesh("a", TETRA, np.array([[0, 1, 4]], np.uint32)), "does not exist"),
        (GlbMesh("a", TETRA[:0], TETRA_FACES[:0]), "empty"),
    ],
)
def test_a_mesh_that_cannot_be_drawn_is_refused(mesh: GlbMesh, why: str) -> None:
    with pytest.raises(GlbError, match=why):
        write_glb([mesh])


def test_bytes_that_are_not_a_whole_glb_are_refused() -> None:
    data = write_glb([GlbMesh("L4", TETRA, TETRA_FACES)])
    with pytest.raises(GlbError, match="header says"):
        read_glb(data[:-4])
    with pytest.raises(GlbError, match=r"not a glTF 2\.0 binary"):
        read_glb(b"glTx" + data[4:])
    with pytest.raises(GlbError, match="shorter"):
        read_glb(data[:10])
    # a BIN chunk that claims more than there is
    json_len = struct.unpack_from("<I", data, 12)[0]
    at = 20 + json_len
    bad = data[:at] + struct.pack("<II", len(data), CHUNK_BIN) + data[at + 8 :]
    with pytest.raises(GlbError, match="BIN chunk"):
        read_glb(bad)


def test_the_lumbar_bones_are_served_in_the_case_frame_under_the_budget(
    lumbar_bundle: LumbarCase,
) -> None:
    bundle = load_bundle(lumbar_bundle.path)
    data = bone_glb(bundle)
    doc = read_glb(data)
    gltf = doc.gltf
    assert len(data) < 3 * 2**20

    names = [m["name"] for m in gltf["meshes"]]
    assert names == [m.name for m in bundle.meshes if len(m.faces)]
    assert {"L3", "L4", "L5"} <= set(names)
    extras = gltf["scenes"][0]["extras"]
    assert extras["frame"] == "case_mm" and extras["content_hash"] == bundle.content_hash
    np.testing.assert_allclose(extras["patient_from_case"], bundle.patient_from_case)

    triangles = 0
    for mesh, bone in zip(gltf["meshes"], bundle.meshes, strict=True):
        primitive = mesh["primitives"][0]
        accessor = gltf["accessors"][primitive["attributes"]["POSITION"]]
        positions = doc.accessor(primitive["attributes"]["POSITION"])
        indices = doc.accessor(primitive["indices"])
        assert accessor["count"] == len(positions) and int(indices.max()) < len(positions)
        triangles += len(indices) // 3
        # decimated, but the bone keeps its place and size: its box within 1.5 mm of the
        # builder's mesh (case-frame mm), and the declared bounds are the data's
        lo, hi = bone.vertices_mm.min(axis=0), bone.vertices_mm.max(axis=0)
        np.testing.assert_allclose(positions.min(axis=0), lo, atol=1.5)
        np.testing.assert_allclose(positions.max(axis=0), hi, atol=1.5)
        np.testing.assert_allclose(accessor["min"], positions.min(axis=0), rtol=0, atol=1e-4)
        np.testing.assert_allclose(accessor["max"], positions.max(axis=0), rtol=0, atol=1e-4)
        assert len(indices) // 3 < len(bone.faces)
    assert 0.5 * FACE_BUDGET < triangles <= FACE_BUDGET

    # the planned L4 entry lies at the L4 surface: within a few mm of a served vertex
    l4 = gltf["meshes"][names.index("L4")]["primitives"][0]["attributes"]["POSITION"]
    entry = np.asarray(lumbar_bundle.marks["L4_pedicle_entry_left"])
    assert np.linalg.norm(doc.accessor(l4) - entry, axis=1).min() < 5.0
