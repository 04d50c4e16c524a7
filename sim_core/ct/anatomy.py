"""Anatomy-like geometry of the CT phantom regions, in patient coordinates (LPS, mm).

x grows to the patient's left, y posteriorly, z superiorly. Dimensions follow adult means
(vertebral body ~45 x 35 mm, pedicle ~9 mm wide converging 12-25 degrees medially from L3 to L5;
femoral head ~48 mm, neck-shaft angle 130 degrees, anteversion 12 degrees; knee joint space
~3 mm). They are plausible, not an atlas: the phantom exists to have a known truth.

That template is one person. A `Variation` makes another: a global size and the dimensions a
surgeon plans around (pedicle width and convergence, vertebral body and level spacing; neck-shaft
angle, anteversion, neck and head size; condyle spacing). Its defaults are the template exactly,
so a phantom built without one is bit for bit the template's. Landmarks (and so the plans that
scenarios make from them) are computed on each person's own anatomy.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

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


@dataclass(frozen=True)
class Variation:
    """How one person's anatomy differs from the template; the defaults are the template.

    ``scale`` multiplies every length (bones, soft tissue, body outline, landmarks; not cortex
    thickness, which varies little with body size). The other lengths are this person's own,
    after scaling; ``None`` means the template's value times ``scale``. Angles are not scaled.
    """

    scale: float = 1.0
    # lumbar
    pedicle_width_mm: float | None = None  # template 9.2 (isthmus, outer cortex to outer cortex)
    pedicle_medial_offset_deg: float = 0.0  # added to every level's convergence (12, 17, 24)
    body_width_mm: float | None = None  # template 48 (left-right)
    body_depth_mm: float | None = None  # template 35 (antero-posterior)
    level_spacing_mm: float | None = None  # template 37 (body centre to body centre)
    # hip
    neck_shaft_deg: float = 130.0
    anteversion_deg: float = 12.0
    neck_length_mm: float | None = None  # template 48 (head centre to neck base)
    neck_diameter_mm: float | None = None  # template 30
    head_diameter_mm: float | None = None  # template 48
    # knee
    condyle_spacing_mm: float | None = None  # template 40 (condyle centre to centre)

    def length(self, value: float | None, template_mm: float) -> float:
        """A length in template units (before ``scale``): the template's when not given."""
        return template_mm if value is None else value / self.scale

    @property
    def is_template(self) -> bool:
        return self == Variation()


TEMPLATE = Variation()


def _scaled_sdf(sdf: Sdf, s: float) -> Sdf:
    # a uniformly scaled solid's distance is the scaled distance at the unscaled point
    inv, k = np.float32(1.0 / s), np.float32(s)

    def f(x: Array, y: Array, z: Array) -> Array:
        return as_f32(sdf(x * inv, y * inv, z * inv) * k)

    return f


def _scaled_cortex(
    cortex: Callable[[Array, Array, Array], Array | float], s: float
) -> Callable[[Array, Array, Array], Array | float]:
    inv = np.float32(1.0 / s)

    def f(x: Array, y: Array, z: Array) -> Array | float:
        return cortex(x * inv, y * inv, z * inv)

    return f


def _scaled(anat: Anatomy, s: float) -> Anatomy:
    """The anatomy grown (s > 1) or shrunk about the patient origin; cortex kept as it is."""

    def pt(p: Point) -> Point:
        return (round(p[0] * s, 3), round(p[1] * s, 3), round(p[2] * s, 3))

    return replace(
        anat,
        bones=tuple(
            replace(
                b,
                outer=_scaled_sdf(b.outer, s),
                cortex_mm=_scaled_cortex(b.cortex_mm, s),
                canal=_scaled_sdf(b.canal, s) if b.canal is not None else None,
            )
            for b in anat.bones
        ),
        soft=tuple(replace(p, sdf=_scaled_sdf(p.sdf, s)) for p in anat.soft),
        body_semi_mm=(anat.body_semi_mm[0] * s, anat.body_semi_mm[1] * s),
        fat_mm=anat.fat_mm * s,
        centre_mm=pt(anat.centre_mm),
        extent_z_mm=anat.extent_z_mm * s,
        bbox_mm=(pt(anat.bbox_mm[0]), pt(anat.bbox_mm[1])),
        landmarks=tuple(replace(m, lps_mm=pt(m.lps_mm)) for m in anat.landmarks),
    )


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


def _vertebra(
    level: str,
    zc: float,
    medial_deg: float,
    *,
    pedicle_r: float = 4.6,
    body_semi: tuple[float, float] = (24.0, 17.5),
    body_half_h: float = 13.0,
) -> tuple[Bone, list[Landmark]]:
    # the posterior wall stays in front of the canal whatever the body's depth
    body_y = 37.5 - body_semi[1]
    # pedicle axis: from the posterior arch (lateral) forwards and medially into the body
    t = math.tan(math.radians(medial_deg))
    parts = [
        ellipse_prism(
            0.0, body_y, body_semi[0], body_semi[1], zc - body_half_h, zc + body_half_h, 2.5
        )
    ]
    landmarks = [Landmark(f"{level}_body_centre", (0.0, body_y, zc), "cancellous")]
    axes: list[tuple[str, Point, Point]] = []
    # a narrower pedicle is narrower, not lower: its height stays 2 x 4.6 / 0.62 mm
    squash_z = 0.62 * (pedicle_r / 4.6)
    for side, s in (("left", 1.0), ("right", -1.0)):
        post = (s * 17.0, 52.0, zc + 3.0)
        ant = (s * (17.0 - t * 22.0), 30.0, zc + 3.0)
        parts.append(capsule(ant, post, pedicle_r, squash=(1.0, 1.0, squash_z)))
        parts.append(capsule((s * 16.0, 54.0, zc + 1.0), (0.0, 63.0, zc + 1.0), 4.2))
        parts.append(capsule((s * 17.0, 50.0, zc + 4.0), (s * 42.0, 47.0, zc + 6.0), 3.4))
        parts.append(capsule((s * 15.0, 55.0, zc + 9.0), (s * 17.0, 55.0, zc + 15.0), 3.5))
        parts.append(capsule((s * 15.0, 55.0, zc - 7.0), (s * 16.0, 57.0, zc - 13.0), 3.5))
        axes.append((side, post, ant))
    parts.append(capsule((0.0, 62.0, zc), (0.0, 86.0, zc - 5.0), 3.6, squash=(1.0, 1.0, 0.45)))
    outer = subtract(union(*parts, smooth_mm=3.0), ellipse_column(0.0, 46.5, 11.0, 8.5))
    # the target keeps its distance from the anterior cortex in a shallower or deeper body
    target_mm = 24.0 - (35.0 - 2.0 * body_semi[1])
    for side, post, ant in axes:
        # entry: 0.5 mm outside where the pedicle axis leaves the dorsal cortex;
        # target: the anterior third of the body, on the same axis (a grade A trajectory)
        u = np.subtract(ant, post) / np.linalg.norm(np.subtract(ant, post))
        entry = _exit_point(outer, np.asarray(post), -u)
        target = np.asarray(ant) + u * target_mm
        landmarks.append(Landmark(f"{level}_pedicle_entry_{side}", _pt(entry), "none"))
        landmarks.append(Landmark(f"{level}_pedicle_target_{side}", _pt(target), "cancellous"))
        landmarks.append(Landmark(f"{level}_pedicle_{side}", ant, "cancellous"))
    landmarks.append(Landmark(f"{level}_canal_centre", (0.0, 46.5, zc), "nerve"))
    return Bone(level, outer, _const(1.5)), landmarks


def lumbar(v: Variation = TEMPLATE) -> Anatomy:
    spacing = v.length(v.level_spacing_mm, 37.0)
    body_semi = (v.length(v.body_width_mm, 48.0) / 2.0, v.length(v.body_depth_mm, 35.0) / 2.0)
    body_y = 37.5 - body_semi[1]
    half_h = (spacing - 11.0) / 2.0  # a 10 mm disc and 1 mm of end-plate rim between bodies
    bones, landmarks = [], []
    for level, zc, medial in (("L3", spacing, 12.0), ("L4", 0.0, 17.0), ("L5", -spacing, 24.0)):
        bone, marks = _vertebra(
            level,
            zc,
            medial + v.pedicle_medial_offset_deg,
            pedicle_r=v.length(v.pedicle_width_mm, 9.2) / 2.0,
            body_semi=body_semi,
            body_half_h=half_h,
        )
        bones.append(bone)
        landmarks += marks
    disc_semi = (body_semi[0] - 0.5, body_semi[1] - 0.5)
    soft = [
        SoftStructure(
            f"disc_{n}",
            ellipse_prism(0.0, body_y, disc_semi[0], disc_semi[1], z - 5.0, z + 5.0, 2.0),
            85,
        )
        for n, z in (("L3L4", spacing / 2.0), ("L4L5", -spacing / 2.0))
    ]
    soft.append(SoftStructure("epidural_fat", ellipse_column(0.0, 46.5, 11.0, 8.5), -80))
    soft.append(SoftStructure("dural_sac", ellipse_column(0.0, 46.5, 8.0, 6.5), 8, "nerve"))
    for s in (1.0, -1.0):
        for z in (spacing / 2.0, -spacing / 2.0):
            root = capsule((s * 8.0, 44.0, z + 2.0), (s * 30.0, 40.0, z - 6.0), 2.4)
            soft.append(SoftStructure("nerve_root", root, 32, "nerve"))
    soft.append(SoftStructure("aorta", ellipse_column(14.0, -18.0, 11.0, 11.0), 42, "vessel"))
    soft.append(SoftStructure("ivc", ellipse_column(-20.0, -16.0, 12.0, 10.0), 38, "vessel"))
    # the field and box grow with the spine, so a longer spine stays inside the scan
    extra_z = 2.0 * (spacing - 37.0)
    anat = Anatomy(
        region="lumbar",
        bones=tuple(bones),
        soft=tuple(soft),
        body_semi_mm=(150.0, 115.0),
        fat_mm=18.0,
        centre_mm=(0.0, 35.0, 0.0),
        extent_z_mm=125.0 + extra_z,
        pixel_mm=0.7,
        bbox_mm=((-48.0, -33.0, -62.0 - extra_z / 2.0), (48.0, 92.0, 62.0 + extra_z / 2.0)),
        landmarks=tuple(landmarks),
    )
    return anat if v.scale == 1.0 else _scaled(anat, v.scale)


def hip(var: Variation = TEMPLATE) -> Anatomy:
    head = (-90.0, 0.0, 40.0)
    head_r = var.length(var.head_diameter_mm, 48.0) / 2.0
    neck_r = var.length(var.neck_diameter_mm, 30.0) / 2.0
    neck_mm = var.length(var.neck_length_mm, 48.0)
    # neck axis, pointing from the neck base to the head: medial (+x), anterior (-y), up (+z)
    a, v = math.radians(var.neck_shaft_deg - 90.0), math.radians(var.anteversion_deg)
    u = (math.cos(a) * math.cos(v), -math.cos(a) * math.sin(v), math.sin(a))
    n = math.sqrt(sum(c * c for c in u))
    u = (u[0] / n, u[1] / n, u[2] / n)
    base = (head[0] - neck_mm * u[0], head[1] - neck_mm * u[1], head[2] - neck_mm * u[2])
    shaft_top = (base[0] - 8.0, base[1], base[2] - 6.0)
    shaft_bottom = (shaft_top[0] + 4.0, shaft_top[1], shaft_top[2] - 220.0)
    femur = union(
        sphere(head, head_r),
        capsule(base, head, neck_r, squash=(1.0, 1.15, 1.0)),
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
        subtract(sphere(head, head_r + 16.0), sphere(head, head_r + 2.5)),
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
    pelvis = subtract(pelvis, sphere(head, head_r + 2.5))
    hx, hy = head[0], head[1]
    soft = (
        SoftStructure("cartilage", subtract(sphere(head, head_r + 2.5), sphere(head, head_r)), 110),
        SoftStructure(
            "femoral_artery", ellipse_column(hx + 22.0, hy - 36.0, 4.0, 4.0), 42, "vessel"
        ),
        SoftStructure("femoral_vein", ellipse_column(hx + 33.0, hy - 34.0, 6.0, 5.0), 38, "vessel"),
        SoftStructure("femoral_nerve", ellipse_column(hx + 10.0, hy - 38.0, 3.0, 3.0), 32, "nerve"),
        SoftStructure("sciatic_nerve", ellipse_column(hx + 6.0, hy + 46.0, 5.0, 4.0), 32, "nerve"),
    )
    # guide wire plan: from the lateral cortex along the neck axis to 5 mm short of the apex
    apex = tuple(head[i] + (head_r - 1.0) * u[i] for i in range(3))  # 1 mm inside the cortex
    # the entry lies as far outside the lateral cortex as the template's, whatever the neck
    entry = tuple(head[i] - (neck_mm + 47.0) * u[i] for i in range(3))
    landmarks = (
        Landmark("femoral_head_centre", head, "cancellous"),
        Landmark("femoral_head_apex", apex, "cortex"),  # type: ignore[arg-type]
        Landmark("femoral_neck_base", base, "cancellous"),
        Landmark("lateral_cortex_entry", entry, "none"),  # type: ignore[arg-type]
        Landmark("femoral_canal", (canal_top[0] + 0.4, canal_top[1], canal_top[2] - 20.0), "canal"),
        Landmark("sciatic_nerve_point", (hx + 6.0, hy + 46.0, head[2]), "nerve"),
    )
    anat = Anatomy(
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
    return anat if var.scale == 1.0 else _scaled(anat, var.scale)


def knee(var: Variation = TEMPLATE) -> Anatomy:
    cx = var.length(var.condyle_spacing_mm, 40.0) / 2.0  # condyle centre, either side
    femur = union(
        capsule((0.0, 0.0, 40.0), (0.0, 0.0, 220.0), 14.0),
        capsule((0.0, 2.0, 30.0), (0.0, 0.0, 50.0), 26.0, squash=(0.8, 1.0, 1.0)),
        sphere((cx, 8.0, 24.0), 24.0),
        sphere((-cx, 8.0, 24.0), 23.0),
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
        Landmark("medial_condyle_centre", (cx, 8.0, 24.0), "cancellous"),
        Landmark("lateral_condyle_centre", (-cx, 8.0, 24.0), "cancellous"),
        Landmark("tibial_plateau_centre", (0.0, 5.0, -15.0), "cancellous"),
        Landmark("tibial_tuberosity", (0.0, -25.0, -36.0), "cortex"),
        Landmark("femoral_canal", (0.0, 0.0, 74.0), "canal"),
        Landmark("popliteal_artery_point", (-4.0, 36.0, 0.0), "vessel"),
    )
    anat = Anatomy(
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
    return anat if var.scale == 1.0 else _scaled(anat, var.scale)


def anatomy(region: str, variation: Variation = TEMPLATE) -> Anatomy:
    """The region's anatomy for one person (``variation``; the template by default)."""
    builders = {"lumbar": lumbar, "hip": hip, "knee": knee}
    if region not in builders:
        raise ValueError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)}")
    if variation.scale <= 0.0:
        raise ValueError(f"anatomy scale must be positive, not {variation.scale}")
    return builders[region](variation)
