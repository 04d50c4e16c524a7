"""Signed distance functions (mm) for building anatomy-like phantoms.

Negative inside, positive outside. Ellipse and ellipsoid distances are first-order
approximations (exact on the axes), which is enough for partial-volume edges and cortex shells.
Every function takes float32 coordinate arrays of one shape and returns float32.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]
Point = tuple[float, float, float]
Sdf = Callable[[Array, Array, Array], Array]


def as_f32(values: object) -> Array:
    """numpy arithmetic on float32 arrays is typed loosely; this pins the result type."""
    return np.asarray(values, dtype=np.float32)


def sphere(c: Point, r_mm: float) -> Sdf:
    def f(x: Array, y: Array, z: Array) -> Array:
        return as_f32(
            np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) - np.float32(r_mm)
        )

    return f


def ellipsoid(c: Point, semi_mm: Point) -> Sdf:
    ax, ay, az = semi_mm

    def f(x: Array, y: Array, z: Array) -> Array:
        k = np.sqrt(((x - c[0]) / ax) ** 2 + ((y - c[1]) / ay) ** 2 + ((z - c[2]) / az) ** 2)
        return as_f32((k - np.float32(1.0)) * np.float32(min(semi_mm)))

    return f


def capsule(a: Point, b: Point, r_mm: float, *, squash: Point = (1.0, 1.0, 1.0)) -> Sdf:
    """Distance to segment a-b minus r; ``squash`` < 1 stretches the section along that axis."""
    s = np.asarray(squash, dtype=np.float64)
    pa = np.asarray(a) * s
    ba = (np.asarray(b) - np.asarray(a)) * s
    bb = float(ba @ ba)

    def f(x: Array, y: Array, z: Array) -> Array:
        px = x * np.float32(s[0]) - np.float32(pa[0])
        py = y * np.float32(s[1]) - np.float32(pa[1])
        pz = z * np.float32(s[2]) - np.float32(pa[2])
        h = np.clip((px * ba[0] + py * ba[1] + pz * ba[2]) / np.float32(bb), 0.0, 1.0)
        dx = px - np.float32(ba[0]) * h
        dy = py - np.float32(ba[1]) * h
        dz = pz - np.float32(ba[2]) * h
        return as_f32(np.sqrt(dx * dx + dy * dy + dz * dz) - np.float32(r_mm))

    return f


def ellipse_prism(
    cx: float, cy: float, ax: float, ay: float, z0: float, z1: float, round_mm: float = 0.0
) -> Sdf:
    """An elliptic cylinder along z from z0 to z1 with rounded rims."""
    r = np.float32(round_mm)

    def f(x: Array, y: Array, z: Array) -> Array:
        k = np.sqrt(((x - cx) / (ax - round_mm)) ** 2 + ((y - cy) / (ay - round_mm)) ** 2)
        d_xy = (k - np.float32(1.0)) * np.float32(min(ax, ay) - round_mm)
        d_z = np.maximum(np.float32(z0 + round_mm) - z, z - np.float32(z1 - round_mm))
        outside = np.sqrt(np.maximum(d_xy, 0) ** 2 + np.maximum(d_z, 0) ** 2)
        return as_f32(outside + np.minimum(np.maximum(d_xy, d_z), 0) - r)

    return f


def ellipse_column(cx: float, cy: float, ax: float, ay: float) -> Sdf:
    """An infinite elliptic cylinder along z."""

    def f(x: Array, y: Array, z: Array) -> Array:
        k = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)
        return ((k - np.float32(1.0)) * np.float32(min(ax, ay))).astype(np.float32)

    return f


def union(*parts: Sdf, smooth_mm: float = 0.0) -> Sdf:
    """Union; ``smooth_mm`` > 0 blends joints (polynomial smooth minimum)."""
    k = np.float32(smooth_mm)

    def f(x: Array, y: Array, z: Array) -> Array:
        d = parts[0](x, y, z)
        for part in parts[1:]:
            e = part(x, y, z)
            if smooth_mm > 0:
                h = np.maximum(k - np.abs(d - e), 0) / k
                d = np.minimum(d, e) - h * h * k * np.float32(0.25)
            else:
                d = np.minimum(d, e)
        return d

    return f


def subtract(base: Sdf, *cuts: Sdf) -> Sdf:
    def f(x: Array, y: Array, z: Array) -> Array:
        d = base(x, y, z)
        for cut in cuts:
            d = np.maximum(d, -cut(x, y, z))
        return d

    return f


def intersect(*parts: Sdf) -> Sdf:
    def f(x: Array, y: Array, z: Array) -> Array:
        d = parts[0](x, y, z)
        for part in parts[1:]:
            d = np.maximum(d, part(x, y, z))
        return d

    return f


def half_space(point: Point, normal: Point) -> Sdf:
    """Inside where (p - point) . normal <= 0; ``normal`` need not be unit."""
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)

    def f(x: Array, y: Array, z: Array) -> Array:
        return as_f32((x - point[0]) * n[0] + (y - point[1]) * n[1] + (z - point[2]) * n[2])

    return f


@dataclass(frozen=True)
class Bone:
    """One bone: outer surface, cortex thickness and (optional) medullary canal."""

    name: str
    outer: Sdf
    cortex_mm: Callable[[Array, Array, Array], Array | float]
    canal: Sdf | None = None


@dataclass(frozen=True)
class SoftStructure:
    """A non-bone structure painted into soft tissue; ``zone`` labels protected ones."""

    name: str
    sdf: Sdf
    hu: float
    zone: str | None = None  # "nerve" | "vessel" | None
