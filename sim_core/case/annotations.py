"""A surgeon's annotations of a built case: level and bone names, landmarks, protected tubes.

What the shell stores as a version of a case's annotations (``clinical_shell.imaging``), checked
here without Django: every point three finite numbers inside the case volume, every radius
finite and in range, no name twice. A protected zone is a *tube*: a polyline of centre points
(case frame, mm) with one radius; ``tube_voxels`` turns tubes into the voxels the plan checks'
zone clearances read (``sim_core.plan_checks``), so a drawn canal is measured exactly as a
segmented nerve is.
"""

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

ZONE_KINDS = ("nerve", "vessel")
MAX_RADIUS_MM = 30.0
MAX_NAME_CHARS = 40
MAX_ITEMS = 64  # levels, bones, landmarks or zones in one version
MAX_POINTS = 200  # centre points of one tube


class AnnotationError(ValueError):
    """Input that cannot be stored: ``code`` is stable, ``field`` says where
    (``zones[0].radius_mm``)."""

    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


@dataclass(frozen=True)
class Level:
    name: str
    centre_mm: tuple[float, float, float]
    bone_ids: tuple[int, ...]


@dataclass(frozen=True)
class BoneName:
    id: int
    name: str


@dataclass(frozen=True)
class Landmark:
    name: str
    point_mm: tuple[float, float, float]


@dataclass(frozen=True)
class Tube:
    name: str
    kind: str  # nerve | vessel
    points_mm: tuple[tuple[float, float, float], ...]
    radius_mm: float


@dataclass(frozen=True)
class Annotations:
    levels: tuple[Level, ...]
    bones: tuple[BoneName, ...]
    landmarks: tuple[Landmark, ...]
    zones: tuple[Tube, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AnnotationError("name_required", "名称不能为空 / a name is required", field)
    name = value.strip()
    if len(name) > MAX_NAME_CHARS:
        raise AnnotationError(
            "name_too_long", f"名称过长 / a name holds at most {MAX_NAME_CHARS} characters", field
        )
    return name


def _point(
    value: Any, field: str, shape: tuple[int, int, int], spacing_mm: float
) -> tuple[float, float, float]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 3
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in value)
    ):
        raise AnnotationError("invalid_point", "点须为三个数 / a point is 3 numbers", field)
    p = tuple(float(c) for c in value)
    if not all(math.isfinite(c) for c in p):
        raise AnnotationError(
            "non_finite_point", "点含无效数值 / a point holds NaN or infinity", field
        )
    # the volume spans voxel centres 0 .. n-1, each half a voxel wide either side
    for c, n in zip(p, shape, strict=True):
        if c < -0.5 * spacing_mm or c > (n - 0.5) * spacing_mm:
            raise AnnotationError(
                "point_outside_volume",
                "点在影像范围之外 / the point lies outside the volume",
                field,
            )
    return (p[0], p[1], p[2])


def _items(data: dict[str, Any], key: str) -> list[Any]:
    items = data.get(key, [])
    if not isinstance(items, list):
        raise AnnotationError("invalid_list", f"{key} 须为列表 / {key} must be a list", key)
    if len(items) > MAX_ITEMS:
        raise AnnotationError("too_many", f"{key} 过多 / at most {MAX_ITEMS} {key}", key)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise AnnotationError("invalid_item", "条目格式错误 / not an object", f"{key}[{i}]")
    return items


def _unique(names: list[str], key: str, code: str, what: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name.casefold() in seen:
            raise AnnotationError(
                code, f"{what}“{name}”重复 / the name {name!r} appears twice", f"{key}[{i}].name"
            )
        seen.add(name.casefold())


def parse_annotations(
    data: Any, *, shape: tuple[int, int, int], spacing_mm: float, bone_ids: set[int]
) -> Annotations:
    """Check ``data`` (levels, bones, landmarks, zones as JSON-like values) against a case of
    ``shape`` at ``spacing_mm`` whose bones are ``bone_ids``; raises ``AnnotationError`` at the
    first problem."""
    if not isinstance(data, dict):
        raise AnnotationError("invalid_item", "须为对象 / not an object", "")
    levels = []
    for i, item in enumerate(_items(data, "levels")):
        f = f"levels[{i}]"
        ids = item.get("bone_ids", [])
        if not isinstance(ids, list) or not all(
            isinstance(b, int) and not isinstance(b, bool) for b in ids
        ):
            raise AnnotationError("invalid_bone", "骨骼编号无效 / bone ids are integers", f)
        unknown = [b for b in ids if b not in bone_ids]
        if unknown:
            raise AnnotationError("unknown_bone", "病例中无此骨骼 / no such bone in the case", f)
        levels.append(
            Level(
                _name(item.get("name"), f + ".name"),
                _point(item.get("centre_mm"), f + ".centre_mm", shape, spacing_mm),
                tuple(sorted(set(ids))),
            )
        )
    _unique([lv.name for lv in levels], "levels", "duplicate_level", "节段")
    bones = []
    for i, item in enumerate(_items(data, "bones")):
        bid = item.get("id")
        if not isinstance(bid, int) or isinstance(bid, bool) or bid not in bone_ids:
            raise AnnotationError(
                "unknown_bone", "病例中无此骨骼 / no such bone in the case", f"bones[{i}].id"
            )
        bones.append(BoneName(bid, _name(item.get("name"), f"bones[{i}].name")))
    _unique([b.name for b in bones], "bones", "duplicate_bone", "骨骼名称")
    _unique([str(b.id) for b in bones], "bones", "duplicate_bone", "骨骼")
    landmarks = []
    for i, item in enumerate(_items(data, "landmarks")):
        f = f"landmarks[{i}]"
        landmarks.append(
            Landmark(
                _name(item.get("name"), f + ".name"),
                _point(item.get("point_mm"), f + ".point_mm", shape, spacing_mm),
            )
        )
    _unique([m.name for m in landmarks], "landmarks", "duplicate_landmark", "标志点")
    zones = []
    for i, item in enumerate(_items(data, "zones")):
        f = f"zones[{i}]"
        kind = item.get("kind")
        if kind not in ZONE_KINDS:
            raise AnnotationError(
                "unknown_zone_kind",
                "保护区类型须为神经或血管 / kind is nerve or vessel",
                f + ".kind",
            )
        radius = item.get("radius_mm")
        if (
            not isinstance(radius, int | float)
            or isinstance(radius, bool)
            or not math.isfinite(radius)
            or not 0.0 < radius <= MAX_RADIUS_MM
        ):
            raise AnnotationError(
                "invalid_radius",
                f"半径须大于 0 且不超过 {MAX_RADIUS_MM:.0f} mm / the radius must be in "
                f"(0, {MAX_RADIUS_MM:.0f}] mm",
                f + ".radius_mm",
            )
        points = item.get("points_mm")
        if not isinstance(points, list) or not 1 <= len(points) <= MAX_POINTS:
            raise AnnotationError(
                "invalid_points",
                f"保护区须有 1 至 {MAX_POINTS} 个中心点 / 1 to {MAX_POINTS} centre points",
                f + ".points_mm",
            )
        zones.append(
            Tube(
                _name(item.get("name"), f + ".name"),
                str(kind),
                tuple(
                    _point(p, f"{f}.points_mm[{j}]", shape, spacing_mm)
                    for j, p in enumerate(points)
                ),
                float(radius),
            )
        )
    _unique([z.name for z in zones], "zones", "duplicate_zone", "保护区")
    return Annotations(tuple(levels), tuple(bones), tuple(landmarks), tuple(zones))


def annotations_from_dict(data: dict[str, Any]) -> Annotations:
    """An ``Annotations`` from its stored ``as_dict`` form (already checked when stored)."""
    return Annotations(
        levels=tuple(
            Level(lv["name"], tuple(lv["centre_mm"]), tuple(lv["bone_ids"]))
            for lv in data.get("levels", [])
        ),
        bones=tuple(BoneName(b["id"], b["name"]) for b in data.get("bones", [])),
        landmarks=tuple(
            Landmark(m["name"], tuple(m["point_mm"])) for m in data.get("landmarks", [])
        ),
        zones=tuple(
            Tube(z["name"], z["kind"], tuple(tuple(p) for p in z["points_mm"]), z["radius_mm"])
            for z in data.get("zones", [])
        ),
    )


def tube_voxels(
    tubes: tuple[Tube, ...], shape: tuple[int, int, int], spacing_mm: float
) -> dict[str, npt.NDArray[np.int64]]:
    """Per zone kind, the voxels (n, 3; C order, unique) whose centre lies within a tube: at
    most its radius from the polyline (a single point is a ball)."""
    s = spacing_mm
    masks = {kind: np.zeros(shape, dtype=bool) for kind in ZONE_KINDS}
    for tube in tubes:
        pts = np.asarray(tube.points_mm, dtype=np.float64)
        segments = [(pts[0], pts[0])] if len(pts) == 1 else list(itertools.pairwise(pts))
        for a, b in segments:
            # the voxels of the segment's bounding box, each tested against the segment
            lo = np.maximum(np.floor((np.minimum(a, b) - tube.radius_mm) / s).astype(int), 0)
            hi = np.minimum(
                np.ceil((np.maximum(a, b) + tube.radius_mm) / s).astype(int) + 1, np.asarray(shape)
            )
            if np.any(hi <= lo):
                continue
            grid = np.stack(
                np.meshgrid(*(np.arange(lo[d], hi[d]) for d in range(3)), indexing="ij"), axis=-1
            )
            centres = grid * s
            ab = b - a
            length2 = float(ab @ ab)
            t = np.clip((centres - a) @ ab / length2, 0.0, 1.0) if length2 > 0 else 0.0
            nearest = a + np.asarray(t)[..., None] * ab
            inside = np.linalg.norm(centres - nearest, axis=-1) <= tube.radius_mm
            box = tuple(slice(lo[d], hi[d]) for d in range(3))
            masks[tube.kind][box] |= inside
    return {kind: np.argwhere(mask).astype(np.int64) for kind, mask in masks.items()}
