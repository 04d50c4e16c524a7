"""The planner's slice views: one slice of a case's CT volume (the bundle's resampled `hu` grid,
the frame of the plan's points) as a bone-windowed 8-bit PNG, and the protected zones (nerve,
vessel from the case's tissue labels) as binary glTF for the 3D view.

Why the bundle and not the imaging viewer's DICOM: the plan's points are in the case frame
(`index × spacing_mm` of the bundle's grids, docs/planning.md), so slices of those grids put an
element exactly where the checks measured it, with no second registration between the DICOM
series and the case. Each view is shown in the radiological convention: axial with the
patient's right on the screen's left and anterior up; coronal right on the left, superior up;
sagittal anterior on the left, superior up. The case frame's axes are mapped to the patient's
by `patient_from_case`; each view takes the case axis whose direction is closest to the
patient axis it needs (the case builder resamples onto the patient axes, so they are the same).

Kept in process: the last `VOLUME_CACHE_SIZE` volumes (per content hash) and the last
`SLICE_CACHE_SIZE` encoded slices, so scrolling and dragging the crosshair re-encode nothing.
The caller opens the plan through its access function (audited) before any of this runs.
"""

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from django.utils.translation import gettext as _
from PIL import Image

from clinical_shell.errors import DomainError
from clinical_shell.imaging.models import SimulationCase
from sim_core.case.annotations import Tube, tube_voxels
from sim_core.case.bundle import TISSUE_NERVE, TISSUE_VESSEL, BundleError, load_bundle
from sim_core.case.glb import GlbMesh, write_glb

ViewName = Literal["axial", "sagittal", "coronal"]
VIEWS: tuple[ViewName, ...] = ("axial", "sagittal", "coronal")
# the bone window (HU): planning screws reads cortex against cancellous bone
WINDOW_CENTRE_HU = 400.0
WINDOW_WIDTH_HU = 2000.0
VOLUME_CACHE_SIZE = 2
SLICE_CACHE_SIZE = 512
ZONE_FORMAT = 1
# marching cubes every second voxel: a zone is a few mm across, 1 mm steps draw it smoothly
ZONE_STEP_VOXELS = 2

# per view: the patient axis it looks along (LPS: 0 = L, 1 = P, 2 = S), and the patient axis and
# sign of the screen's right and of its down (radiological convention, module docstring)
_LAYOUT: dict[str, tuple[int, tuple[int, int], tuple[int, int]]] = {
    "axial": (2, (0, 1), (1, 1)),  # right: +L, down: +P
    "coronal": (1, (0, 1), (2, -1)),  # right: +L, down: -S (inferior)
    "sagittal": (0, (1, 1), (2, -1)),  # right: +P, down: -S
}
_LETTERS = {(0, 1): "L", (0, -1): "R", (1, 1): "P", (1, -1): "A", (2, 1): "S", (2, -1): "I"}


@dataclass(frozen=True)
class ViewGeometry:
    """How a view's pixels lie in the case grid: slice `k` is index `k` along `normal_axis`;
    pixel column `c` is index `c` (or `n - 1 - c` when `right_flip`) along `right_axis`, row
    `r` likewise along `down_axis`."""

    name: str
    normal_axis: int
    count: int
    right_axis: int
    right_flip: bool
    down_axis: int
    down_flip: bool
    width: int
    height: int
    letters: dict[str, str]  # left, right, top, bottom

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "normal_axis": self.normal_axis,
            "count": self.count,
            "right_axis": self.right_axis,
            "right_flip": self.right_flip,
            "down_axis": self.down_axis,
            "down_flip": self.down_flip,
            "width": self.width,
            "height": self.height,
            "letters": self.letters,
        }


@dataclass(frozen=True)
class SliceVolume:
    content_hash: str
    spacing_mm: float
    shape: tuple[int, int, int]
    hu: npt.NDArray[np.int16]
    tissue: npt.NDArray[np.uint8]
    views: dict[str, ViewGeometry]


_volumes: OrderedDict[str, SliceVolume] = OrderedDict()
_slices: OrderedDict[tuple[str, str, int], bytes] = OrderedDict()
_zones: OrderedDict[str, bytes] = OrderedDict()
_lock = threading.Lock()


def _unavailable() -> DomainError:
    return DomainError("case_unavailable", _("仿真病例文件无法读取或已被改动"), status=409)


def view_geometry(
    patient_from_case: npt.NDArray[np.float64], shape: tuple[int, int, int]
) -> dict[str, ViewGeometry]:
    """The three views of a grid of `shape` whose axes `patient_from_case` (4 × 4) maps to LPS."""
    columns = np.asarray(patient_from_case, dtype=np.float64)[:3, :3]
    # each case axis: the patient axis it runs along most, and in which sense
    patient_axis = [int(np.argmax(np.abs(columns[:, k]))) for k in range(3)]
    sense = [1 if columns[patient_axis[k], k] > 0 else -1 for k in range(3)]
    if sorted(patient_axis) != [0, 1, 2]:
        raise _unavailable()
    case_axis = {p: k for k, p in enumerate(patient_axis)}
    views: dict[str, ViewGeometry] = {}
    for name, (normal, (right_p, right_s), (down_p, down_s)) in _LAYOUT.items():
        right, down = case_axis[right_p], case_axis[down_p]
        views[name] = ViewGeometry(
            name=name,
            normal_axis=case_axis[normal],
            count=shape[case_axis[normal]],
            right_axis=right,
            right_flip=sense[right] != right_s,
            down_axis=down,
            down_flip=sense[down] != down_s,
            width=shape[right],
            height=shape[down],
            letters={
                "left": _LETTERS[(right_p, -right_s)],
                "right": _LETTERS[(right_p, right_s)],
                "top": _LETTERS[(down_p, -down_s)],
                "bottom": _LETTERS[(down_p, down_s)],
            },
        )
    return views


def slice_volume(case: SimulationCase) -> SliceVolume:
    """The case's HU and tissue grids with the views' geometry, kept per content hash; 409
    "case_unavailable" when the bundle cannot be read or is not the registered one."""
    with _lock:
        cached = _volumes.get(case.content_hash)
        if cached is not None:
            _volumes.move_to_end(case.content_hash)
            return cached
    try:
        bundle = load_bundle(case.path)
    except (BundleError, OSError, ValueError):
        raise _unavailable() from None
    if bundle.content_hash != case.content_hash:
        raise _unavailable()
    shape = (int(bundle.hu.shape[0]), int(bundle.hu.shape[1]), int(bundle.hu.shape[2]))
    volume = SliceVolume(
        content_hash=bundle.content_hash,
        spacing_mm=bundle.spacing_mm,
        shape=shape,
        hu=bundle.hu,
        tissue=bundle.tissue,
        views=view_geometry(bundle.patient_from_case, shape),
    )
    with _lock:
        _volumes[case.content_hash] = volume
        while len(_volumes) > VOLUME_CACHE_SIZE:
            _volumes.popitem(last=False)
    return volume


def slice_geometry(case: SimulationCase) -> dict[str, Any]:
    """What the page needs to place slices, crosshair and elements: grid, spacing, window and
    each view's layout (`ViewGeometry`)."""
    volume = slice_volume(case)
    return {
        "shape": list(volume.shape),
        "spacing_mm": volume.spacing_mm,
        "window_centre_hu": WINDOW_CENTRE_HU,
        "window_width_hu": WINDOW_WIDTH_HU,
        "views": {name: volume.views[name].as_dict() for name in VIEWS},
    }


def _oriented(volume: SliceVolume, view: ViewGeometry, index: int) -> npt.NDArray[np.int16]:
    """Slice `index` of `view` as rows (screen down) × columns (screen right)."""
    plane: npt.NDArray[np.int16] = np.take(volume.hu, index, axis=view.normal_axis)
    # the two remaining case axes in order; transpose so rows run along down_axis
    remaining = [a for a in range(3) if a != view.normal_axis]
    if remaining.index(view.down_axis) != 0:
        plane = plane.T
    if view.down_flip:
        plane = plane[::-1, :]
    if view.right_flip:
        plane = plane[:, ::-1]
    return plane


def check_slice_index(case: SimulationCase, view_name: str, index: int) -> None:
    """422 "slice_out_of_range" unless `index` is a slice of the view (0-based)."""
    count = slice_volume(case).views[view_name].count
    if not 0 <= index < count:
        raise DomainError(
            "slice_out_of_range",
            _("层面 %(index)s 超出范围（0–%(last)s）") % {"index": index, "last": count - 1},
            status=422,
        )


def slice_png(case: SimulationCase, view_name: str, index: int) -> bytes:
    """Slice `index` (0-based) of the view as a bone-windowed grayscale PNG; 422
    "slice_out_of_range" for an index outside the volume."""
    check_slice_index(case, view_name, index)
    volume = slice_volume(case)
    view = volume.views[view_name]
    key = (volume.content_hash, view_name, index)
    with _lock:
        cached = _slices.get(key)
        if cached is not None:
            _slices.move_to_end(key)
            return cached
    plane = _oriented(volume, view, index).astype(np.float32)
    low = WINDOW_CENTRE_HU - WINDOW_WIDTH_HU / 2
    grey = np.clip((plane - low) * (255.0 / WINDOW_WIDTH_HU), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(grey), mode="L").save(out, format="PNG", compress_level=6)
    data = out.getvalue()
    with _lock:
        _slices[key] = data
        while len(_slices) > SLICE_CACHE_SIZE:
            _slices.popitem(last=False)
    return data


def zone_glb(case: SimulationCase, tubes: tuple[str, tuple[Tube, ...]] | None = None) -> bytes:
    """The case's nerve and vessel voxels as surfaces in the case frame (mm), one glTF mesh per
    kind present, named "nerve" / "vessel"; a case with neither gets a document with no meshes
    (`extras.zones` empty). The voxels are the bundle's tissue labels and, when given, the
    protected tubes the surgeon confirmed (`tubes`: the annotation version's key and its tubes,
    `imaging.annotation_selectors.confirmed_tubes`), rasterised as the checks rasterise them
    (`sim_core.case.annotations.tube_voxels`), so the drawing shows what the checks measure."""
    from skimage.measure import marching_cubes

    volume = slice_volume(case)
    key = f"{volume.content_hash}|{tubes[0] if tubes else ''}"
    with _lock:
        cached = _zones.get(key)
    if cached is not None:
        return cached
    drawn = tube_voxels(tubes[1], volume.shape, volume.spacing_mm) if tubes else {}
    meshes: list[GlbMesh] = []
    for name, label in (("nerve", TISSUE_NERVE), ("vessel", TISSUE_VESSEL)):
        mask = volume.tissue == label
        extra = drawn.get(name)
        if extra is not None and len(extra):
            mask = mask.copy()
            mask[extra[:, 0], extra[:, 1], extra[:, 2]] = True
        if not mask.any():
            continue
        # padded so a zone touching the volume's edge is closed there
        padded = np.pad(mask, 1).astype(np.float32)
        vertices, faces, _normals, _values = marching_cubes(  # type: ignore[no-untyped-call]
            padded, level=0.5, step_size=ZONE_STEP_VOXELS, allow_degenerate=False
        )
        vertices = (vertices - 1.0) * volume.spacing_mm
        meshes.append(GlbMesh(name, vertices.astype(np.float32), faces.astype(np.uint32)))
    extras = {
        "frame": "case_mm",
        "zones": [m.name for m in meshes],
        "zone_format": ZONE_FORMAT,
        "annotations": tubes[0] if tubes else None,
    }
    if meshes:
        data = write_glb(meshes, extras=extras, generator=f"osteon zone_glb/{ZONE_FORMAT}")
    else:
        data = write_glb_empty(extras)
    with _lock:
        _zones[key] = data
        while len(_zones) > VOLUME_CACHE_SIZE:
            _zones.popitem(last=False)
    return data


def write_glb_empty(extras: dict[str, Any]) -> bytes:
    """A glTF with a scene and no meshes (`write_glb` refuses empty meshes)."""
    import json
    import struct

    gltf = {
        "asset": {"version": "2.0", "generator": f"osteon zone_glb/{ZONE_FORMAT}"},
        "scene": 0,
        "scenes": [{"nodes": [], "extras": extras}],
    }
    body = json.dumps(gltf, separators=(",", ":")).encode()
    body += b" " * (-len(body) % 4)
    header = struct.pack("<III", 0x46546C67, 2, 12 + 8 + len(body))
    return header + struct.pack("<II", len(body), 0x4E4F534A) + body
