"""The case builder: a CT DICOM series in, a case bundle out (see ``bundle.py``).

read series -> crop to bone -> resample isotropic -> segment -> label tissue and zones ->
density -> meshes -> bundle (written atomically: a failed build leaves nothing at ``out``).
"""

import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from sim_core.case.bundle import SAFE_BONE_NAME, TISSUE_NAMES, TissueLabel, write_bundle
from sim_core.case.mesh import bone_meshes, mesh_volume_mm3
from sim_core.case.resample import IsoGrid, bone_box, resample_isotropic
from sim_core.case.segment import (
    CORTICAL_HU,
    DEFAULT_THRESHOLD_HU,
    THRESHOLD_RANGE_HU,
    density_from_hu,
    otsu_threshold,
    segment_bone,
)
from sim_core.ct.phantom import read_truth
from sim_core.ct.series import read_series
from sim_core.ct.volume import CtVolume

Progress = Callable[[str, float], None]
DEFAULT_SPACING_MM = 0.5
DEFAULT_MEMORY_BUDGET_BYTES = 3 * 2**30
CROP_MARGIN_MM = 5.0
# bytes per case voxel while building: float32 HU and density, int32 component labels,
# uint8 bone id, tissue and masks, int16 HU, and scipy temporaries
BUILD_BYTES_PER_VOXEL = 24


class CaseBuildError(Exception):
    """The series cannot become a case; the message names the input and the problem."""


def software_version() -> str:
    try:
        return metadata.version("osteon")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_case(
    series_dir: Path,
    out: Path,
    *,
    series_uid: str | None = None,
    threshold_hu: float | Literal["auto"] = DEFAULT_THRESHOLD_HU,
    spacing_mm: float = DEFAULT_SPACING_MM,
    zones_path: Path | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Build a case bundle at ``out`` from the CT series in ``series_dir``.

    Returns a summary (content hash, bones, stage timings in seconds). Raises
    ``SeriesError`` for unreadable series and ``CaseBuildError`` for everything after.
    """
    series_dir, out = Path(series_dir), Path(out)
    if out.exists() and not overwrite:
        raise CaseBuildError(f"{out}: already exists (use --force to replace it)")
    if not 0.2 <= spacing_mm <= 2.0:
        raise CaseBuildError(f"voxel spacing {spacing_mm} mm is outside 0.2-2.0 mm")
    if threshold_hu != "auto" and not (
        THRESHOLD_RANGE_HU[0] <= threshold_hu <= THRESHOLD_RANGE_HU[1]
    ):
        raise CaseBuildError(
            f"bone threshold {threshold_hu} HU is outside {THRESHOLD_RANGE_HU[0]:.0f}-"
            f"{THRESHOLD_RANGE_HU[1]:.0f} HU (or use auto)"
        )
    report = progress or (lambda step, fraction: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        clock = now

    report("读取 DICOM / reading series", 0.0)
    volume = read_series(
        series_dir,
        series_uid=series_uid,
        memory_budget_bytes=memory_budget_bytes,
        progress=lambda step, f: report("读取 DICOM / reading series", 0.3 * f),
    )
    lap("read")
    threshold = (
        otsu_threshold(volume.hu.astype(np.float32))
        if threshold_hu == "auto"
        else float(threshold_hu)
    )
    margin = tuple(int(np.ceil(CROP_MARGIN_MM / s)) for s in volume.spacing_mm)
    box = bone_box(volume.hu, threshold, (margin[0], margin[1], margin[2]))
    if box is None:
        raise CaseBuildError(f"{series_dir}: no voxel at or above {threshold:.0f} HU: no bone")
    _check_case_budget(series_dir, volume, box, spacing_mm, memory_budget_bytes)
    report("重采样 / resampling", 0.35)
    iso = resample_isotropic(volume, box, spacing_mm)
    lap("resample")
    report("骨分割 / segmenting bone", 0.5)
    seg = segment_bone(iso.hu, threshold_hu=threshold, spacing_mm=spacing_mm)
    if not seg.component_voxels:
        raise CaseBuildError(
            f"{series_dir}: no bone component of at least 1 cm³ at {threshold:.0f} HU"
        )
    tissue = seg.tissue
    truth = _phantom_truth(series_dir, volume)
    zones_source = _apply_zones(tissue, seg.bone_id, iso, volume, truth, zones_path)
    names = _bone_names(seg.bone_id, iso, truth)
    density = density_from_hu(iso.hu, seg.bone_id > 0)
    lap("segment")
    report("表面网格 / meshing", 0.7)
    meshes = bone_meshes(seg.bone_id, names, spacing_mm, hu=iso.hu, edge=seg.edge)
    lap("mesh")
    report("写入病例 / writing case", 0.9)
    voxel_mm3 = spacing_mm**3
    bones = [
        {
            "id": i,
            "name": mesh.name,
            "voxels": seg.component_voxels[i - 1],
            "volume_mm3": round(seg.component_voxels[i - 1] * voxel_mm3, 1),
            "mesh_volume_mm3": round(mesh_volume_mm3(mesh.vertices_mm, mesh.faces), 1),
            "mesh_faces": len(mesh.faces),
        }
        for i, mesh in enumerate(meshes, start=1)
    ]
    meta: dict[str, Any] = {
        "software": {"name": "osteon", "version": software_version()},
        "source": {
            "series_uid": volume.series_uid,
            "study_uid": volume.study_uid,
            "sop_uids_sha256": _uid_digest(volume.sop_uids),
            "slices": int(volume.hu.shape[0]),
            "source_spacing_mm": [round(s, 6) for s in volume.spacing_mm],
            "transfer_syntaxes": sorted(set(volume.transfer_syntaxes)),
        },
        "shape": list(iso.hu.shape),
        "spacing_mm": spacing_mm,
        "patient_from_case": np.round(iso.patient_from_case, 9).tolist(),
        "threshold": {
            "hu": round(threshold, 2),
            "mode": "auto" if threshold_hu == "auto" else "fixed",
        },
        "cortical_hu": CORTICAL_HU,
        "tissue_labels": {str(k): v for k, v in TISSUE_NAMES.items()},
        "zones_source": zones_source,
        "bones": bones,
        "landmarks": _landmarks(truth, iso),
    }
    grids: dict[str, npt.NDArray[Any]] = {
        "hu": np.clip(np.rint(iso.hu), -1024, 3071).astype(np.int16),
        "density_g_cm3": density,
        "tissue": tissue,
        "bone_id": seg.bone_id,
    }
    content_hash = write_bundle(out, meta, grids, meshes, overwrite=overwrite)
    lap("write")
    report("完成 / done", 1.0)
    return {
        "case": str(out),
        "content_hash": content_hash,
        "shape": list(iso.hu.shape),
        "spacing_mm": spacing_mm,
        "threshold_hu": round(threshold, 2),
        "bones": bones,
        "zones_source": zones_source,
        "timings_s": timings,
    }


def _uid_digest(uids: tuple[str, ...]) -> str:
    import hashlib

    return hashlib.sha256("\\".join(uids).encode()).hexdigest()


def _check_case_budget(
    series_dir: Path,
    volume: CtVolume,
    box: tuple[slice, slice, slice],
    spacing_mm: float,
    budget: int,
) -> None:
    # refuse before allocating the isotropic grid, not after running out of memory
    extent = [(s.stop - s.start) * sp for s, sp in zip(box, volume.spacing_mm, strict=True)]
    voxels = int(np.prod([int(e / spacing_mm) + 1 for e in extent]))
    need = voxels * BUILD_BYTES_PER_VOXEL + volume.hu.nbytes
    if need > budget:
        raise CaseBuildError(
            f"{series_dir}: building at {spacing_mm} mm needs about {need / 2**30:.1f} GiB, "
            f"above the memory budget of {budget / 2**30:.1f} GiB "
            "(raise --memory-budget or use a coarser --spacing)"
        )


def _phantom_truth(
    series_dir: Path, volume: CtVolume
) -> tuple[dict[str, Any], npt.NDArray[np.uint8], npt.NDArray[np.uint8]] | None:
    try:
        truth = read_truth(series_dir)
        if truth is None:
            return None
        meta, tissue, bone_id = truth
        _check_truth_meta(meta)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CaseBuildError(
            f"{series_dir}: the phantom truth sidecar is unreadable or malformed: {exc}"
        ) from None
    # only a sidecar made for this very series and grid is trusted
    if meta.get("series_uid") != volume.series_uid or tuple(tissue.shape) != volume.hu.shape:
        return None
    return meta, tissue, bone_id


def _check_truth_meta(meta: Any) -> None:
    """The sidecar is outside input: the fields the builder reads must have their types."""
    if not isinstance(meta, dict):
        raise ValueError("not a JSON object")
    for bone in meta.get("bones", []):
        if not (isinstance(bone.get("id"), int) and isinstance(bone.get("name"), str)):
            raise ValueError(f"bone entry {bone!r}")
    for mark in meta.get("landmarks", []):
        point = mark.get("lps_mm")
        if not (
            isinstance(mark.get("name"), str)
            and isinstance(mark.get("tissue"), str)
            and isinstance(point, list)
            and len(point) == 3
            and all(isinstance(c, int | float) and np.isfinite(c) for c in point)
        ):
            raise ValueError(f"landmark entry {mark!r}")


def _source_lookup(
    grid: npt.NDArray[np.uint8], iso: IsoGrid, shape: tuple[int, ...]
) -> npt.NDArray[np.uint8]:
    idx = iso.source_indices(shape)
    idx = [np.clip(i, 0, grid.shape[a] - 1) for a, i in enumerate(idx)]
    return grid[np.ix_(idx[0], idx[1], idx[2])]


def _apply_zones(
    tissue: npt.NDArray[np.uint8],
    bone_id: npt.NDArray[np.uint8],
    iso: IsoGrid,
    volume: CtVolume,
    truth: tuple[dict[str, Any], npt.NDArray[np.uint8], npt.NDArray[np.uint8]] | None,
    zones_path: Path | None,
) -> str:
    """Mark protected zones (nerve, vessel) outside bone; returns where they came from."""
    if zones_path is not None:
        zones = _read_zone_map(zones_path, volume.hu.shape)
        source = f"label map {zones_path.name}"
    elif truth is not None:
        zones = truth[1]
        source = "phantom truth"
    else:
        return "none"
    case_zones = _source_lookup(zones, iso, tissue.shape)
    for label in (TissueLabel.NERVE, TissueLabel.VESSEL):
        tissue[(case_zones == label) & (bone_id == 0)] = label
    return source


def _read_zone_map(path: Path, shape: tuple[int, ...]) -> npt.NDArray[np.uint8]:
    try:
        with np.load(path, allow_pickle=False) as z:
            zones = np.asarray(z["zones"])
    except (OSError, KeyError, ValueError) as exc:
        raise CaseBuildError(
            f"{path}: not a zone label map (.npz with a 'zones' array): {exc}"
        ) from exc
    if zones.shape != shape:
        raise CaseBuildError(
            f"{path}: zone map shape {zones.shape} differs from the series {shape}"
        )
    allowed = {0, int(TissueLabel.NERVE), int(TissueLabel.VESSEL)}
    if not set(np.unique(zones).tolist()) <= allowed:
        raise CaseBuildError(f"{path}: zone map values must be 0, 4 (nerve) or 5 (vessel)")
    return zones.astype(np.uint8)


def _bone_names(
    bone_id: npt.NDArray[np.uint8],
    iso: IsoGrid,
    truth: tuple[dict[str, Any], npt.NDArray[np.uint8], npt.NDArray[np.uint8]] | None,
) -> list[str]:
    count = int(bone_id.max())
    names = [f"bone_{i}" for i in range(1, count + 1)]
    if truth is not None:
        truth_names = {b["id"]: b["name"] for b in truth[0]["bones"]}
        truth_ids = _source_lookup(truth[2], iso, bone_id.shape)
        for i in range(1, count + 1):
            votes = np.bincount(truth_ids[bone_id == i], minlength=256)
            votes[0] = 0
            name = truth_names.get(int(votes.argmax())) if votes.max() > 0 else None
            # the sidecar is outside input and names become file names: plain names only
            if isinstance(name, str) and SAFE_BONE_NAME.fullmatch(name):
                names[i - 1] = name
    # names are file names in the bundle: keep them unique
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique


def _landmarks(
    truth: tuple[dict[str, Any], npt.NDArray[np.uint8], npt.NDArray[np.uint8]] | None,
    iso: IsoGrid,
) -> list[dict[str, Any]]:
    if truth is None:
        return []
    case_from_patient = np.linalg.inv(iso.patient_from_case)
    out = []
    for mark in truth[0].get("landmarks", []):
        p = case_from_patient @ np.append(np.asarray(mark["lps_mm"], dtype=np.float64), 1.0)
        out.append(
            {
                "name": mark["name"],
                "lps_mm": mark["lps_mm"],
                "case_mm": [round(float(c), 3) for c in p[:3]],
                "tissue": mark["tissue"],
            }
        )
    return out
