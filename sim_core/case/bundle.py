"""The case bundle on disk: what the case builder writes and the engine and viewer read.

Layout of a bundle directory::

    case.json          metadata, see ``CaseBundle`` fields; ``content_hash`` covers everything else
    volume.npz         hu (int16), density_g_cm3 (float32), tissue (uint8), bone_id (uint8)
    meshes/<name>.npz  vertices_mm (float32, N x 3, case frame), faces (int32, M x 3)

All grids are C-contiguous, shape (n0, n1, n2), isotropic ``spacing_mm``. The *case frame* is
``index * spacing_mm`` in array-axis order; ``patient_from_case`` (4 x 4) maps it to DICOM
patient coordinates (LPS, mm). A bundle is written to a temporary sibling directory and
renamed into place, so a reader never sees half a bundle.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FORMAT_VERSION = 1
# bone names are mesh file names inside the bundle: plain names only
SAFE_BONE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
GRID_DTYPES = {
    "hu": np.dtype(np.int16),
    "density_g_cm3": np.dtype(np.float32),
    "tissue": np.dtype(np.uint8),
    "bone_id": np.dtype(np.uint8),
}


class TissueLabel(IntEnum):
    """The meaning of each value in the ``tissue`` grid."""

    NONE = 0
    CORTEX = 1
    CANCELLOUS = 2
    CANAL = 3
    NERVE = 4
    VESSEL = 5


TISSUE_NONE = int(TissueLabel.NONE)
TISSUE_CORTEX = int(TissueLabel.CORTEX)
TISSUE_CANCELLOUS = int(TissueLabel.CANCELLOUS)
TISSUE_CANAL = int(TissueLabel.CANAL)
TISSUE_NERVE = int(TissueLabel.NERVE)
TISSUE_VESSEL = int(TissueLabel.VESSEL)
TISSUE_NAMES = {int(t): t.name.lower() for t in TissueLabel}
PROTECTED_TISSUES = (TISSUE_NERVE, TISSUE_VESSEL)


class BundleError(Exception):
    """A case bundle is missing, corrupt or of another format."""


@dataclass(frozen=True)
class Mesh:
    name: str
    vertices_mm: npt.NDArray[np.float32]
    faces: npt.NDArray[np.int32]


@dataclass(frozen=True)
class CaseBundle:
    """A built case, read-only. ``meta`` is case.json as written (landmarks, sources, bones)."""

    path: Path
    meta: dict[str, Any]
    hu: npt.NDArray[np.int16]
    density_g_cm3: npt.NDArray[np.float32]
    tissue: npt.NDArray[np.uint8]
    bone_id: npt.NDArray[np.uint8]
    meshes: tuple[Mesh, ...] = field(default=())

    @property
    def spacing_mm(self) -> float:
        return float(self.meta["spacing_mm"])

    @property
    def patient_from_case(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.meta["patient_from_case"], dtype=np.float64)

    @property
    def content_hash(self) -> str:
        return str(self.meta["content_hash"])

    def case_from_patient_mm(self, point_lps_mm: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """A patient-coordinate point (LPS, mm) in the case frame (mm)."""
        p = np.append(np.asarray(point_lps_mm, dtype=np.float64), 1.0)
        return np.linalg.solve(self.patient_from_case, p)[:3]

    def index_of_patient_mm(self, point_lps_mm: npt.ArrayLike) -> tuple[int, int, int]:
        """The voxel holding a patient-coordinate point (nearest centre)."""
        ijk = np.rint(self.case_from_patient_mm(point_lps_mm) / self.spacing_mm).astype(np.int64)
        return int(ijk[0]), int(ijk[1]), int(ijk[2])


def _hash_arrays(digest: "hashlib._Hash", arrays: dict[str, npt.NDArray[Any]]) -> None:
    # names, dtypes and shapes go in too, so a reshaped grid cannot collide
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        digest.update(a.tobytes())


def content_hash(
    meta: dict[str, Any], grids: dict[str, npt.NDArray[Any]], meshes: list[Mesh]
) -> str:
    """sha256 over metadata (without the hash itself), grids and meshes."""
    digest = hashlib.sha256()
    hashed_meta = {k: v for k, v in meta.items() if k != "content_hash"}
    digest.update(json.dumps(hashed_meta, sort_keys=True, ensure_ascii=False).encode())
    _hash_arrays(digest, grids)
    for mesh in sorted(meshes, key=lambda m: m.name):
        _hash_arrays(digest, {f"{mesh.name}.v": mesh.vertices_mm, f"{mesh.name}.f": mesh.faces})
    return "sha256:" + digest.hexdigest()


def write_bundle(
    out: Path,
    meta: dict[str, Any],
    grids: dict[str, npt.NDArray[Any]],
    meshes: list[Mesh],
    *,
    overwrite: bool = False,
) -> str:
    """Write a bundle atomically (temporary sibling, then rename); return its content hash."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise BundleError(f"{out}: already exists (use --force to replace it)")
    for mesh in meshes:
        if not SAFE_BONE_NAME.fullmatch(mesh.name):
            raise BundleError(f"bone name {mesh.name!r} is not a plain name (letters, digits, _ -)")
    meta = dict(meta, format_version=FORMAT_VERSION)
    meta["content_hash"] = content_hash(meta, grids, meshes)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        np.savez(tmp / "volume.npz", allow_pickle=False, **grids)
        (tmp / "meshes").mkdir()
        for mesh in meshes:
            np.savez(
                tmp / "meshes" / f"{mesh.name}.npz", vertices_mm=mesh.vertices_mm, faces=mesh.faces
            )
        text = json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False)
        (tmp / "case.json").write_text(text + "\n", encoding="utf-8")
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(meta["content_hash"])


def _readonly(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _check_contents(
    meta: dict[str, Any], grids: dict[str, npt.NDArray[Any]], meshes: list[Mesh]
) -> None:
    """Shapes, types and ranges the engine and the view rely on (a bundle is outside input)."""
    shape = grids["hu"].shape
    if len(shape) != 3 or tuple(meta.get("shape", shape)) != shape:
        raise ValueError(f"grid shape {shape} differs from case.json {meta.get('shape')}")
    for name, dtype in GRID_DTYPES.items():
        grid = grids[name]
        if grid.dtype != dtype or grid.shape != shape:
            raise ValueError(f"{name}: {grid.dtype} {grid.shape}, expected {dtype} {shape}")
    spacing = float(meta["spacing_mm"])
    if not 0.05 <= spacing <= 5.0:
        raise ValueError(f"spacing {spacing} mm")
    matrix = np.asarray(meta["patient_from_case"], dtype=np.float64)
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise ValueError("patient_from_case is not a finite 4 x 4 matrix")
    for mesh in meshes:
        v, f = mesh.vertices_mm, mesh.faces
        if v.ndim != 2 or v.shape[1] != 3 or not np.all(np.isfinite(v)):
            raise ValueError(f"mesh {mesh.name}: vertices must be finite N x 3")
        if f.ndim != 2 or f.shape[1] != 3 or f.dtype.kind not in "iu":
            raise ValueError(f"mesh {mesh.name}: faces must be integer M x 3")
        if f.size and (f.min() < 0 or f.max() >= len(v)):
            raise ValueError(f"mesh {mesh.name}: a face indexes a vertex that does not exist")


def load_bundle(path: Path | str, *, verify: bool = True) -> CaseBundle:
    """Read a bundle; with ``verify`` its content hash is recomputed and must match."""
    path = Path(path)
    meta_file = path / "case.json"
    if not meta_file.is_file():
        raise BundleError(f"{path}: not a case bundle (no case.json)")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{meta_file}: unreadable ({exc})") from exc
    if not isinstance(meta, dict):
        raise BundleError(f"{meta_file}: not a JSON object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{meta_file}: format version {meta.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    try:
        with np.load(path / "volume.npz", allow_pickle=False) as z:
            grids = {name: z[name] for name in ("hu", "density_g_cm3", "tissue", "bone_id")}
        meshes = []
        for bone in meta.get("bones", []):
            if not SAFE_BONE_NAME.fullmatch(str(bone.get("name"))):
                raise ValueError(f"bone name {bone.get('name')!r} is not a plain name")
            with np.load(path / "meshes" / f"{bone['name']}.npz", allow_pickle=False) as z:
                meshes.append(Mesh(bone["name"], z["vertices_mm"], z["faces"]))
        _check_contents(meta, grids, meshes)
    except (OSError, KeyError, ValueError, TypeError, AttributeError) as exc:
        raise BundleError(f"{path}: corrupt bundle ({exc})") from exc
    if verify and content_hash(meta, grids, meshes) != meta.get("content_hash"):
        raise BundleError(f"{path}: content hash mismatch (bundle modified or damaged)")
    return CaseBundle(
        path=path,
        meta=meta,
        hu=_readonly(grids["hu"]),
        density_g_cm3=_readonly(grids["density_g_cm3"]),
        tissue=_readonly(grids["tissue"]),
        bone_id=_readonly(grids["bone_id"]),
        meshes=tuple(Mesh(m.name, _readonly(m.vertices_mm), _readonly(m.faces)) for m in meshes),
    )
