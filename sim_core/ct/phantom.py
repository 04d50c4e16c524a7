"""CT phantoms with known ground truth: realistic HU, partial-volume edges, noise, zones.

No public bone CT volume is reachable here, so the project makes its own and keeps the truth
(tissue labels at every voxel, bone volumes, landmarks) beside the DICOM series. Attenuation
values: cortical bone 1000-1800 HU, cancellous 150-400 HU (about 90 HU when osteoporotic:
Pickhardt et al., L1 <= 110 HU is >90 % specific for osteoporosis), marrow about -30 HU,
muscle 45, fat -100, air -1000.
"""

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sim_core.case.bundle import TISSUE_NAMES, TissueLabel
from sim_core.ct.anatomy import TEMPLATE, Anatomy, Variation, anatomy
from sim_core.ct.shapes import Array
from sim_core.ct.volume import CtVolume, affine_from_geometry

Progress = Callable[[str, float], None]

AIR_HU = -1000.0
FAT_HU = -100.0
MUSCLE_HU = 45.0
MARROW_HU = -30.0
NOISE_SD_HU = 14.0
SLAB_SLICES = 8

TRUTH_JSON = "phantom_truth.json"
TRUTH_NPZ = "phantom_truth.npz"

SURNAMES = "李王张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗"
GIVEN = "建华秀英国强桂兰明丽军芳志勇玉梅海燕德文春"


@dataclass(frozen=True)
class Phantom:
    """A generated CT volume and its truth on the same grid."""

    volume: CtVolume
    tissue: npt.NDArray[np.uint8]  # TissueLabel per voxel centre
    bone_id: npt.NDArray[np.uint8]  # 0 = no bone, else index into truth["bones"] + 1
    truth: dict[str, Any]


def rotation_matrix(rotation_deg: tuple[float, float, float]) -> npt.NDArray[np.float64]:
    """Rz @ Ry @ Rx for rotations (degrees) about the patient x, y, z axes."""
    ax, ay, az = (math.radians(a) for a in rotation_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    rotation: npt.NDArray[np.float64] = rz @ ry @ rx
    return rotation


def _occupancy(sdf: Array, h_mm: float) -> Array:
    # fraction of a voxel inside the surface: a linear ramp one voxel wide (partial volume)
    occupancy: Array = np.clip(np.float32(0.5) - sdf / np.float32(h_mm), 0.0, 1.0)
    return occupancy


def _index_box(
    index_from_patient: npt.NDArray[np.float64],
    box_mm: tuple[tuple[float, ...], tuple[float, ...]],
    shape: tuple[int, int, int],
) -> tuple[slice, slice, slice]:
    """Index ranges covering a patient-space box (all 8 corners mapped)."""
    lo, hi = np.asarray(box_mm[0]), np.asarray(box_mm[1])
    corners = np.array(
        [
            [c[0], c[1], c[2], 1.0]
            for c in np.array(np.meshgrid(*zip(lo, hi, strict=True))).reshape(3, -1).T
        ]
    )
    idx = (index_from_patient @ corners.T)[:3]
    start = np.maximum(np.floor(idx.min(axis=1)).astype(int) - 1, 0)
    stop = np.minimum(np.ceil(idx.max(axis=1)).astype(int) + 2, np.asarray(shape))
    stop = np.maximum(stop, start)
    return slice(start[0], stop[0]), slice(start[1], stop[1]), slice(start[2], stop[2])


def _coords(
    affine: npt.NDArray[np.float64], k: slice, r: slice, c: slice
) -> tuple[Array, Array, Array]:
    """Patient coordinates (x, y, z) of voxel centres in an index sub-box, float32."""
    kk = np.arange(k.start, k.stop, dtype=np.float64)[:, None, None]
    rr = np.arange(r.start, r.stop, dtype=np.float64)[None, :, None]
    cc = np.arange(c.start, c.stop, dtype=np.float64)[None, None, :]
    out = []
    for axis in range(3):
        a = affine[axis]
        out.append((a[0] * kk + a[1] * rr + a[2] * cc + a[3]).astype(np.float32))
    return out[0], out[1], out[2]


def _patient_name(seed: int) -> str:
    digest = hashlib.sha256(f"phantom-name-{seed}".encode()).digest()
    return (
        SURNAMES[digest[0] % len(SURNAMES)]
        + GIVEN[digest[1] % len(GIVEN)]
        + GIVEN[digest[2] % len(GIVEN)]
    )


def make_phantom(
    region: str,
    *,
    seed: int = 0,
    slices: int = 200,
    matrix: int = 512,
    osteoporotic: bool = False,
    pixel_mm: float | None = None,
    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0),
    variation: Variation = TEMPLATE,
    progress: Progress | None = None,
) -> Phantom:
    """Generate a phantom CT of ``region`` (lumbar, hip, knee); deterministic per arguments.

    The slices cover the region's fixed extent along the slice normal, so more slices means
    thinner slices. ``matrix`` x ``pixel_mm`` is the reconstruction field of view, centred on
    the anatomy. ``rotation_deg`` tilts the whole acquisition (orientation, not gantry tilt).
    ``variation`` makes another person's anatomy (`sim_core.ct.anatomy.Variation`); the truth
    (bones, landmarks) is that person's, and names the variation.
    """
    if slices < 2 or matrix < 16:
        raise ValueError("a phantom needs at least 2 slices and a 16 x 16 matrix")
    anat = anatomy(region, variation)
    px = float(pixel_mm or anat.pixel_mm)
    dz = anat.extent_z_mm / slices
    rot = rotation_matrix(rotation_deg)
    half = np.array([(matrix - 1) * px / 2, (matrix - 1) * px / 2, (slices - 1) * dz / 2])
    origin = np.asarray(anat.centre_mm) - rot @ half
    affine = affine_from_geometry(
        origin_mm=origin,
        row_dir=rot[:, 0],
        col_dir=rot[:, 1],
        slice_dir=rot[:, 2],
        slice_spacing_mm=dz,
        row_spacing_mm=px,
        col_spacing_mm=px,
    )
    shape = (slices, matrix, matrix)
    hu = np.empty(shape, dtype=np.int16)
    tissue = np.zeros(shape, dtype=np.uint8)
    bone_id = np.zeros(shape, dtype=np.uint8)
    volumes_mm3 = np.zeros(len(anat.bones), dtype=np.float64)
    rng = np.random.default_rng(seed)
    box = _index_box(np.linalg.inv(affine).astype(np.float64), anat.bbox_mm, shape)
    h_mm = (px * px * dz) ** (1 / 3)
    canc_mean, canc_amp = (88.0, 18.0) if osteoporotic else (245.0, 70.0)

    # slab by slab keeps memory at a few slabs of float32 whatever the volume size
    for k0 in range(0, slices, SLAB_SLICES):
        k = slice(k0, min(k0 + SLAB_SLICES, slices))
        slab = _soft_tissue(anat, affine, k, matrix, h_mm)
        kb = slice(max(k.start, box[0].start), min(k.stop, box[0].stop))
        if kb.stop > kb.start and box[1].stop > box[1].start and box[2].stop > box[2].start:
            sub = (slice(kb.start - k.start, kb.stop - k.start), box[1], box[2])
            x, y, z = _coords(affine, kb, box[1], box[2])
            _paint_anatomy(
                anat,
                (x, y, z),
                slab[sub],
                tissue[kb, box[1], box[2]],
                bone_id[kb, box[1], box[2]],
                volumes_mm3,
                h_mm=h_mm,
                voxel_mm3=px * px * dz,
                cancellous=(canc_mean, canc_amp),
            )
        slab += rng.standard_normal(slab.shape, dtype=np.float32) * np.float32(NOISE_SD_HU)
        hu[k] = np.clip(np.rint(slab), -1024, 3071).astype(np.int16)
        if progress:
            progress("生成体模 / generating phantom", k.stop / slices)

    volume = CtVolume(
        hu=hu,
        patient_from_index=affine,
        patient_id=f"PH-{region.upper()}-{seed:04d}",
    )
    truth = {
        "region": region,
        "seed": seed,
        "osteoporotic": osteoporotic,
        "patient_name": _patient_name(seed),
        "patient_id": volume.patient_id,
        "shape": list(shape),
        "patient_from_index": affine.tolist(),
        "tissue_labels": {str(v): n for v, n in TISSUE_NAMES.items()},
        "bones": [
            {"id": i + 1, "name": b.name, "volume_mm3": round(float(volumes_mm3[i]), 1)}
            for i, b in enumerate(anat.bones)
        ],
        "bone_volume_mm3": round(float(volumes_mm3.sum()), 1),
        "landmarks": [
            {"name": m.name, "lps_mm": [round(c, 3) for c in m.lps_mm], "tissue": m.tissue}
            for m in anat.landmarks
        ],
        "hu": {
            "cortex": [1000, 1800],
            "cancellous": [canc_mean - canc_amp, canc_mean + canc_amp],
            "marrow": MARROW_HU,
            "muscle": MUSCLE_HU,
            "fat": FAT_HU,
            "air": AIR_HU,
            "noise_sd": NOISE_SD_HU,
        },
    }
    if not variation.is_template:
        # only then: the template's truth (and every case built from it) stays as it was
        truth["variation"] = asdict(variation)
    return Phantom(volume=volume, tissue=tissue, bone_id=bone_id, truth=truth)


def _soft_tissue(
    anat: Anatomy, affine: npt.NDArray[np.float64], k: slice, n: int, h: float
) -> Array:
    """Air, subcutaneous fat and muscle for a slab of whole slices."""
    x, y, _ = _coords(affine, k, slice(0, n), slice(0, n))
    ax, ay = anat.body_semi_mm
    skin = (np.sqrt((x / ax) ** 2 + (y / ay) ** 2) - np.float32(1.0)) * np.float32(min(ax, ay))
    ix, iy = ax - anat.fat_mm, ay - anat.fat_mm
    fascia = (np.sqrt((x / ix) ** 2 + (y / iy) ** 2) - np.float32(1.0)) * np.float32(min(ix, iy))
    inside = FAT_HU + _occupancy(fascia, h) * np.float32(MUSCLE_HU - FAT_HU)
    return (AIR_HU + _occupancy(skin, h) * (inside - np.float32(AIR_HU))).astype(np.float32)


def _paint_anatomy(
    anat: Anatomy,
    xyz: tuple[Array, Array, Array],
    hu: Array,
    tissue: npt.NDArray[np.uint8],
    bone_id: npt.NDArray[np.uint8],
    volumes_mm3: npt.NDArray[np.float64],
    *,
    h_mm: float,
    voxel_mm3: float,
    cancellous: tuple[float, float],
) -> None:
    """Paint soft structures, then bones, into views of the slab and truth grids (in place)."""
    x, y, z = xyz
    for part in anat.soft:
        d = part.sdf(x, y, z)
        hu += _occupancy(d, h_mm) * (np.float32(part.hu) - hu)
        if part.zone is not None:
            tissue[d < 0] = TissueLabel.NERVE if part.zone == "nerve" else TissueLabel.VESSEL

    # keep, per voxel, the bone whose surface is deepest (bones do not overlap)
    best = np.full(x.shape, np.float32(np.inf), dtype=np.float32)
    f_bone = np.zeros(x.shape, dtype=np.float32)
    bone_hu = np.zeros(x.shape, dtype=np.float32)
    label = np.zeros(x.shape, dtype=np.uint8)
    cortex_hu = np.float32(1400.0) + np.float32(320.0) * np.sin(np.float32(0.05) * x) * np.cos(
        np.float32(0.07) * y + np.float32(0.03) * z
    )
    # trabecular texture: a smooth periodic field, so cancellous HU spans its whole range
    texture = (
        np.sin(np.float32(0.9) * x) * np.sin(np.float32(0.8) * y) * np.sin(np.float32(0.85) * z)
    )
    canc_hu = np.float32(cancellous[0]) + np.float32(cancellous[1]) * texture
    for i, bone in enumerate(anat.bones):
        d = bone.outer(x, y, z)
        if not np.any(d < h_mm):
            continue
        t = bone.cortex_mm(x, y, z)
        fb = _occupancy(d, h_mm)
        fi = _occupancy(d + t, h_mm)
        dc = bone.canal(x, y, z) if bone.canal is not None else None
        fc = _occupancy(dc, h_mm) if dc is not None else np.zeros_like(fb)
        volumes_mm3[i] += float((fb * (1 - fi * fc)).sum(dtype=np.float64)) * voxel_mm3
        inner_hu = canc_hu + fc * (np.float32(MARROW_HU) - canc_hu)
        this_hu = cortex_hu + fi * (inner_hu - cortex_hu)
        closer = d < best
        best[closer] = d[closer]
        f_bone[closer] = fb[closer]
        bone_hu[closer] = this_hu[closer]
        # truth at the voxel centre
        inside = closer & (d < 0)
        is_cortex = d + t >= 0
        is_canal = (dc < 0) if dc is not None else np.zeros(d.shape, dtype=bool)
        lab = np.where(
            is_cortex,
            TissueLabel.CORTEX,
            np.where(is_canal, TissueLabel.CANAL, TissueLabel.CANCELLOUS),
        )
        label[inside] = lab[inside]
        bone_id[inside] = i + 1
    hu += f_bone * (bone_hu - hu)
    in_bone = label > 0
    tissue[in_bone] = label[in_bone]


def write_phantom(
    phantom: Phantom, out_dir: Path, *, progress: Progress | None = None
) -> list[Path]:
    """Write the DICOM series and the truth sidecar; all or nothing at ``out_dir``."""
    from sim_core.ct.dicom_writer import write_ct_series

    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir}: exists and is not empty")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        series = work / "series"
        region = phantom.truth["region"]
        files = write_ct_series(
            phantom.volume,
            series,
            patient_name=phantom.truth["patient_name"],
            patient_id=phantom.truth["patient_id"],
            study_description=f"Osteon 体模 / phantom {region}",
            series_description=f"CT {region} phantom seed {phantom.truth['seed']}",
            progress=progress,
        )
        np.savez_compressed(series / TRUTH_NPZ, tissue=phantom.tissue, bone_id=phantom.bone_id)
        truth = dict(phantom.truth, series_uid=_series_uid(files))
        (series / TRUTH_JSON).write_text(
            json.dumps(truth, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        if out_dir.exists():
            out_dir.rmdir()
        os.rename(series, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return sorted(out_dir.glob("*.dcm"))


def _series_uid(files: list[Path]) -> str:
    import pydicom

    return str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID)


def read_truth(
    series_dir: Path,
) -> tuple[dict[str, Any], npt.NDArray[np.uint8], npt.NDArray[np.uint8]] | None:
    """The phantom truth beside a series, or None when the series is not a phantom."""
    meta_path, grid_path = Path(series_dir) / TRUTH_JSON, Path(series_dir) / TRUTH_NPZ
    if not (meta_path.is_file() and grid_path.is_file()):
        return None
    truth = json.loads(meta_path.read_text(encoding="utf-8"))
    with np.load(grid_path, allow_pickle=False) as z:
        return truth, z["tissue"], z["bone_id"]
