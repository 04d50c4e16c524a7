"""Anatomy-like geometry of the CT phantom regions, in patient coordinates (LPS, mm).

x grows to the patient's left, y posteriorly, z superiorly. Dimensions follow adult means
(vertebral body ~45 x 35 mm, pedicle ~9 mm wide converging 12-25 degrees medially from L3 to L5;
femoral head ~48 mm, neck-shaft angle 130 degrees, anteversion 12 degrees; knee joint space
~3 mm). They are plausible, not an atlas: the phantom exists to have a known truth.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from sim_core.ct.shapes import (
    Array,
    Bone,
    Point,
    Sdf,
    SoftStructure,
    as_f32,
    capsule,
    ellipse_column,
    ellipse_prism,
    ellipsoid,
    half_space,
    intersect,
    sphere,
    subtract,
    union,
)

REGIONS = ("lumbar", "hip", "knee")


@dataclass(frozen=True)
class Landmark:
    name: str
    lps_mm: Point
    tissue: (
        str  # expected truth tissue at the point: cortex, cancellous, canal, nerve, vessel, none
    )


@dataclass(frozen=True)
class Anatomy:
    region: str
    bones: tuple[Bone, ...]
    soft: tuple[SoftStructure, ...]
    body_semi_mm: tuple[float, float]  # skin ellipse, centred at (0, 0)
    fat_mm: float  # subcutaneous fat thickness
    centre_mm: Point  # field-of-view centre
    extent_z_mm: float
    pixel_mm: float  # default in-plane spacing
    bbox_mm: tuple[Point, Point]  # box holding every bone and zone
    landmarks: tuple[Landmark, ...] = field(default=())


def _const(value: float) -> "ConstCortex":
    return ConstCortex(value)


@dataclass(frozen=True)
class ConstCortex:
    thickness_mm: float

    def __call__(self, x: Array, y: Array, z: Array) -> float:
        return self.thickness_mm


@dataclass(frozen=True)
class ShaftCortex:
    """Thin metaphyseal cortex thickening to diaphyseal cortex away from the joint."""

    thin_mm: float
    thick_mm: float
    z_thin: float  # at and beyond this z (towards the joint) the cortex is thin
    z_thick: float  # at and beyond this z (towards the shaft) it is thick

    def __call__(self, x: Array, y: Array, z: Array) -> Array:
        w = np.clip((z - self.z_thin) / np.float32(self.z_thick - self.z_thin), 0.0, 1.0)
        w = w * w * (3 - 2 * w)
        return as_f32(self.thin_mm + (self.thick_mm - self.thin_mm) * w)


def _pt(p: "np.typing.ArrayLike") -> Point:
    a = np.asarray(p, dtype=np.float64)
    return (round(float(a[0]), 3), round(float(a[1]), 3), round(float(a[2]), 3))


def _exit_point(
    sdf: "Sdf", start: "np.typing.NDArray[np.float64]", direction: "np.typing.NDArray[np.float64]"
) -> "np.typing.NDArray[np.float64]":
    """The first point along a ray from inside a solid that lies 0.5 mm outside it."""
    steps = np.arange(0.0, 60.0, 0.05)
    pts = (start[None, :] + steps[:, None] * direction[None, :]).astype(np.float32)
    d = sdf(pts[:, 0], pts[:, 1], pts[:, 2])
    return np.asarray(pts[int(np.argmax(d >= 0.5))], dtype=np.float64)


def _vertebra(level: str, zc: float, medial_deg: float) -> tuple[Bone, list[Landmark]]:
    body_y = 20.0
    # pedicle axis: from the posterior arch (lateral) forwards and medially into the body
    t = math.tan(math.radians(medial_deg))
    parts = [ellipse_prism(0.0, body_y, 24.0, 17.5, zc - 13.0, zc + 13.0, round_mm=2.5)]
    landmarks = [Landmark(f"{level}_body_centre", (0.0, body_y, zc), "cancellous")]
    axes: list[tuple[str, Point, Point]] = []
    for side, s in (("left", 1.0), ("right", -1.0)):
        post = (s * 17.0, 52.0, zc + 3.0)
        ant = (s * (17.0 - t * 22.0), 30.0, zc + 3.0)
        parts.append(capsule(ant, post, 4.6, squash=(1.0, 1.0, 0.62)))
        parts.append(capsule((s * 16.0, 54.0, zc + 1.0), (0.0, 63.0, zc + 1.0), 4.2))
        parts.append(capsule((s * 17.0, 50.0, zc + 4.0), (s * 42.0, 47.0, zc + 6.0), 3.4))
        parts.append(capsule((s * 15.0, 55.0, zc + 9.0), (s * 17.0, 55.0, zc + 15.0), 3.5))
        parts.append(capsule((s * 15.0, 55.0, zc - 7.0), (s * 16.0, 57.0, zc - 13.0), 3.5))
        axes.append((side, post, ant))
    parts.append(capsule((0.0, 62.0, zc), (0.0, 86.0, zc - 5.0), 3.6, squash=(1.0, 1.0, 0.45)))
    outer = subtract(union(*parts, smooth_mm=3.0), ellipse_column(0.0, 46.5, 11.0, 8.5))
    for side, post, ant in axes:
        # entry: 0.5 mm outside where the pedicle axis leaves the dorsal cortex;
        # target: the anterior third of the body, on the same axis (a grade A trajectory)
        u = np.subtract(ant, post) / np.linalg.norm(np.subtract(ant, post))
        entry = _exit_point(outer, np.asarray(post), -u)
        target = np.asarray(ant) + u * 24.0
        landmarks.append(Landmark(f"{level}_pedicle_entry_{side}", _pt(entry), "none"))
        landmarks.append(Landmark(f"{level}_pedicle_target_{side}", _pt(target), "cancellous"))
        landmarks.append(Landmark(f"{level}_pedicle_{side}", ant, "cancellous"))
    landmarks.append(Landmark(f"{level}_canal_centre", (0.0, 46.5, zc), "nerve"))
    return Bone(level, outer, _const(1.5)), landmarks


def lumbar() -> Anatomy:
    bones, landmarks = [], []
    for level, zc, medial in (("L3", 37.0, 12.0), ("L4", 0.0, 17.0), ("L5", -37.0, 24.0)):
        bone, marks = _vertebra(level, zc, medial)
        bones.append(bone)
        landmarks += marks
    soft = [
        SoftStructure(f"disc_{n}", ellipse_prism(0.0, 20.0, 23.5, 17.0, z - 5.0, z + 5.0, 2.0), 85)
        for n, z in (("L3L4", 18.5), ("L4L5", -18.5))
    ]
    soft.append(SoftStructure("epidural_fat", ellipse_column(0.0, 46.5, 11.0, 8.5), -80))
    soft.append(SoftStructure("dural_sac", ellipse_column(0.0, 46.5, 8.0, 6.5), 8, "nerve"))
    for s in (1.0, -1.0):
        for z in (18.5, -18.5):
            root = capsule((s * 8.0, 44.0, z + 2.0), (s * 30.0, 40.0, z - 6.0), 2.4)
            soft.append(SoftStructure("nerve_root", root, 32, "nerve"))
    soft.append(SoftStructure("aorta", ellipse_column(14.0, -18.0, 11.0, 11.0), 42, "vessel"))
    soft.append(SoftStructure("ivc", ellipse_column(-20.0, -16.0, 12.0, 10.0), 38, "vessel"))
    return Anatomy(
        region="lumbar",
        bones=tuple(bones),
        soft=tuple(soft),
        body_semi_mm=(150.0, 115.0),
        fat_mm=18.0,
        centre_mm=(0.0, 35.0, 0.0),
        extent_z_mm=125.0,
        pixel_mm=0.7,
        bbox_mm=((-48.0, -33.0, -62.0), (48.0, 92.0, 62.0)),
        landmarks=tuple(landmarks),
    )


def hip() -> Anatomy:
    head = (-90.0, 0.0, 40.0)
    # neck axis, pointing from the neck base to the head: medial (+x), anterior (-y), up (+z)
    a, v = math.radians(130.0 - 90.0), math.radians(12.0)
    u = (math.cos(a) * math.cos(v), -math.cos(a) * math.sin(v), math.sin(a))
    n = math.sqrt(sum(c * c for c in u))
    u = (u[0] / n, u[1] / n, u[2] / n)
    base = (head[0] - 48.0 * u[0], head[1] - 48.0 * u[1], head[2] - 48.0 * u[2])
    shaft_top = (base[0] - 8.0, base[1], base[2] - 6.0)
    shaft_bottom = (shaft_top[0] + 4.0, shaft_top[1], shaft_top[2] - 220.0)
    femur = union(
        sphere(head, 24.0),
        capsule(base, head, 15.0, squash=(1.0, 1.15, 1.0)),
        capsule(shaft_top, shaft_bottom, 14.0),
        sphere((base[0] - 18.0, base[1] + 4.0, base[2] + 10.0), 15.0),
        sphere((shaft_top[0] + 9.0, shaft_top[1] + 8.0, shaft_top[2] - 34.0), 8.0),
        smooth_mm=8.0,
    )
    canal_top = (shaft_top[0] + 0.9, shaft_top[1], shaft_top[2] - 42.0)
    canal = capsule(canal_top, shaft_bottom, 8.0)
    cortex = ShaftCortex(2.0, 6.0, z_thin=shaft_top[2] - 25.0, z_thick=shaft_top[2] - 55.0)
    acetabular_dir = (0.75, 0.15, 0.65)
    cup = intersect(
        subtract(sphere(head, 40.0), sphere(head, 26.5)),
        half_space(head, tuple(-c for c in acetabular_dir)),  # type: ignore[arg-type]
    )
    pelvis = union(
        cup,
        ellipsoid((head[0] + 22.0, head[1] + 8.0, head[2] + 55.0), (16.0, 34.0, 48.0)),
        capsule(
            (head[0] + 12.0, head[1] + 18.0, head[2] - 22.0),
            (head[0] + 18.0, head[1] + 30.0, head[2] - 62.0),
            11.0,
        ),
        capsule(
            (head[0] + 18.0, head[1] - 12.0, head[2] - 18.0), (-4.0, -32.0, head[2] - 30.0), 8.5
        ),
        smooth_mm=10.0,
    )
    pelvis = subtract(pelvis, sphere(head, 26.5))
    hx, hy = head[0], head[1]
    soft = (
        SoftStructure("cartilage", subtract(sphere(head, 26.5), sphere(head, 24.0)), 110),
        SoftStructure(
            "femoral_artery", ellipse_column(hx + 22.0, hy - 36.0, 4.0, 4.0), 42, "vessel"
        ),
        SoftStructure("femoral_vein", ellipse_column(hx + 33.0, hy - 34.0, 6.0, 5.0), 38, "vessel"),
        SoftStructure("femoral_nerve", ellipse_column(hx + 10.0, hy - 38.0, 3.0, 3.0), 32, "nerve"),
        SoftStructure("sciatic_nerve", ellipse_column(hx + 6.0, hy + 46.0, 5.0, 4.0), 32, "nerve"),
    )
    # guide wire plan: from the lateral cortex along the neck axis to 5 mm short of the apex
    apex = tuple(head[i] + 23.0 * u[i] for i in range(3))  # 1 mm deep: inside the cortex
    entry = tuple(head[i] - 95.0 * u[i] for i in range(3))
    landmarks = (
        Landmark("femoral_head_centre", head, "cancellous"),
        Landmark("femoral_head_apex", apex, "cortex"),  # type: ignore[arg-type]
        Landmark("femoral_neck_base", base, "cancellous"),
        Landmark("lateral_cortex_entry", entry, "none"),  # type: ignore[arg-type]
        Landmark("femoral_canal", (canal_top[0] + 0.4, canal_top[1], canal_top[2] - 20.0), "canal"),
        Landmark("sciatic_nerve_point", (hx + 6.0, hy + 46.0, head[2]), "nerve"),
    )
    return Anatomy(
        region="hip",
        bones=(
            Bone("femur", femur, cortex, canal),
            Bone("pelvis", pelvis, _const(2.0)),
        ),
        soft=soft,
        body_semi_mm=(185.0, 115.0),
        fat_mm=22.0,
        centre_mm=(-75.0, 5.0, 10.0),
        extent_z_mm=170.0,
        pixel_mm=0.78,
        bbox_mm=((-165.0, -55.0, -80.0), (8.0, 65.0, 110.0)),
        landmarks=landmarks,
    )


def knee() -> Anatomy:
    femur = union(
        capsule((0.0, 0.0, 40.0), (0.0, 0.0, 220.0), 14.0),
        capsule((0.0, 2.0, 30.0), (0.0, 0.0, 50.0), 26.0, squash=(0.8, 1.0, 1.0)),
        sphere((20.0, 8.0, 24.0), 24.0),
        sphere((-20.0, 8.0, 24.0), 23.0),
        smooth_mm=10.0,
    )
    # intercondylar notch between the condyles, open posteriorly and inferiorly
    femur = subtract(femur, capsule((0.0, 30.0, 4.0), (0.0, 8.0, 14.0), 8.0))
    femur_canal = capsule((0.0, 0.0, 72.0), (0.0, 0.0, 230.0), 8.0)
    tibia = union(
        ellipse_prism(0.0, 5.0, 38.0, 25.0, -30.0, -3.0, round_mm=3.0),
        capsule((0.0, 5.0, -28.0), (0.0, 6.0, -52.0), 22.0, squash=(0.9, 1.0, 1.0)),
        capsule((0.0, 6.0, -52.0), (0.0, 6.0, -230.0), 13.0),
        sphere((0.0, -18.0, -36.0), 8.0),
        smooth_mm=8.0,
    )
    tibia_canal = capsule((0.0, 6.0, -72.0), (0.0, 6.0, -240.0), 7.0)
    fibula = union(
        sphere((-37.0, 25.0, -30.0), 10.0),
        capsule((-37.0, 25.0, -30.0), (-33.0, 22.0, -240.0), 7.0),
        smooth_mm=6.0,
    )
    patella = ellipsoid((0.0, -36.0, 36.0), (22.0, 10.0, 20.0))
    soft = (
        SoftStructure("cartilage_joint", ellipse_prism(0.0, 6.0, 40.0, 26.0, -4.0, 2.0, 1.0), 110),
        SoftStructure("popliteal_artery", ellipse_column(-4.0, 36.0, 4.0, 4.0), 42, "vessel"),
        SoftStructure("popliteal_vein", ellipse_column(-12.0, 39.0, 5.0, 5.0), 38, "vessel"),
        SoftStructure("tibial_nerve", ellipse_column(2.0, 46.0, 3.0, 3.0), 32, "nerve"),
        SoftStructure("peroneal_nerve", ellipse_column(-38.0, 34.0, 2.5, 2.5), 32, "nerve"),
    )
    landmarks = (
        Landmark("medial_condyle_centre", (20.0, 8.0, 24.0), "cancellous"),
        Landmark("lateral_condyle_centre", (-20.0, 8.0, 24.0), "cancellous"),
        Landmark("tibial_plateau_centre", (0.0, 5.0, -15.0), "cancellous"),
        Landmark("tibial_tuberosity", (0.0, -25.0, -36.0), "cortex"),
        Landmark("femoral_canal", (0.0, 0.0, 74.0), "canal"),
        Landmark("popliteal_artery_point", (-4.0, 36.0, 0.0), "vessel"),
    )
    return Anatomy(
        region="knee",
        bones=(
            Bone("femur", femur, ShaftCortex(1.5, 5.0, 50.0, 72.0), femur_canal),
            Bone("tibia", tibia, ShaftCortex(1.5, 4.5, -45.0, -68.0), tibia_canal),
            Bone("fibula", fibula, _const(2.0)),
            Bone("patella", patella, _const(1.5)),
        ),
        soft=soft,
        body_semi_mm=(62.0, 58.0),
        fat_mm=8.0,
        centre_mm=(0.0, 5.0, 0.0),
        extent_z_mm=160.0,
        pixel_mm=0.35,
        bbox_mm=((-52.0, -52.0, -80.0), (48.0, 55.0, 80.0)),
        landmarks=landmarks,
    )


def anatomy(region: str) -> Anatomy:
    builders = {"lumbar": lumbar, "hip": hip, "knee": knee}
    if region not in builders:
        raise ValueError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)}")
    return builders[region]()
