"""Virtual fluoroscopy: a C-arm shot is a digitally reconstructed radiograph (DRR).

A shot casts one perspective ray per detector pixel (512² by default) from the C-arm's source
through the case to the detector, through the *current* voxels (bone removed by the tool
shows as a darker channel) with the instrument in place, drawn from its real sizes in
``assets/instruments/`` as a strong attenuator (steel). Brighter means more attenuation, as
on a radiograph: bone is brighter than soft tissue, metal brightest.

Attenuation (1/mm, an effective beam of about 60 keV) **[unverified: textbook mass
attenuation coefficients, rounded]**: soft tissue from the CT as water-equivalent
``MU_WATER · (1 + HU/1000)``; a bone voxel is water plus ``MU_BONE_PER_G_CM3`` per g/cm³ of
bone *left* (``SimState.density``), so a voxel the tool emptied reads as fluid; the
instrument ``MU_STEEL``. Only the case's grid is seen (the case builder crops the CT around
the bones), so the shot is of that box, not of the whole body.

C-arm poses, relative to the case's patient frame (LPS; ``Plan.case_from_lps``), with the
isocentre at the middle of the plan (entry to target):

- ``ap``: beam posterior → anterior (source under the table of a supine patient); image up
  is superior, image right the patient's left (seen from the front, as radiographs are read).
- ``lateral``: beam right → left; image up superior, image right anterior.
- ``oblique``: the AP beam turned about the superior axis by ``angle_deg`` (default 30;
  positive turns the source towards the patient's right).
- ``inlet`` / ``outlet`` (pelvis): the AP beam tilted about the left axis by ``angle_deg``
  (default 40) so that it runs towards the feet (inlet) or towards the head (outlet).

Geometry **[unverified: typical mobile C-arm]**: source to isocentre 600 mm, source to
detector 1000 mm, a 300 mm square detector: 180 mm seen at the isocentre.

Radiation time: each shot is one pulse of ``SHOT_EXPOSURE_S`` of beam-on time, the figure a
C-arm's dose counter adds up **[unverified: a single low-dose pulse, configurable]**.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sim_core._fluoro_kernels import (
    KIND_BOX,
    KIND_CYLINDER,
    KIND_SPHERE,
    N_PART,
    PART_DIR,
    PART_KIND,
    PART_LENGTH,
    PART_MU,
    PART_NORMAL,
    PART_RADIUS,
    PART_TIP,
    PART_WIDTH,
    line_integrals,
)
from sim_core.instruments import Instrument
from sim_core.scenarios import Plan
from sim_core.slots import Q_NORMAL, S_DIR, S_POSE, S_TOOL

FloatArray = npt.NDArray[np.float64]

MU_WATER = 0.02  # 1/mm
MU_BONE_PER_G_CM3 = 0.02  # 1/mm added per g/cm³ of bone (cortex ~1.8 g/cm³: 0.056/mm)
MU_STEEL = 0.9  # 1/mm
SHOT_EXPOSURE_S = 0.1
VIEWS = ("ap", "lateral", "oblique", "inlet", "outlet")
DEFAULT_ANGLE_DEG = {"ap": 0.0, "lateral": 0.0, "oblique": 30.0, "inlet": 40.0, "outlet": 40.0}
TISSUE_BONE = (1, 2)  # cortex, cancellous (sim_core.case.bundle)


class FluoroError(ValueError):
    """A view that does not exist or an unusable geometry; the message is one sentence."""


@dataclass(frozen=True)
class CArm:
    source_to_isocentre_mm: float = 600.0
    source_to_detector_mm: float = 1000.0
    detector_mm: float = 300.0
    pixels: int = 512


@dataclass(frozen=True)
class View:
    """A C-arm pose by name; ``angle_deg`` only turns oblique, inlet and outlet."""

    name: str
    angle_deg: float = 0.0

    @classmethod
    def parse(cls, text: str, angle_deg: float | None = None) -> "View":
        """``ap``, ``lateral``, ``oblique``, ``oblique:-30``, ``inlet``, ``outlet:35`` …"""
        name, _, angle = text.strip().lower().partition(":")
        if name not in VIEWS:
            raise FluoroError(
                f"未知透视体位 {name!r} / unknown C-arm view {name!r} (known: {', '.join(VIEWS)})"
            )
        if angle:
            try:
                angle_deg = float(angle)
            except ValueError:
                raise FluoroError(f"角度不是数字 / angle {angle!r} is not a number") from None
        if angle_deg is None:
            angle_deg = DEFAULT_ANGLE_DEG[name]
        if not math.isfinite(angle_deg) or abs(angle_deg) > 90.0:
            raise FluoroError(f"角度超出范围 / angle {angle_deg} out of -90..90 degrees")
        return cls(name, float(angle_deg) if name in ("oblique", "inlet", "outlet") else 0.0)

    @property
    def label(self) -> str:
        return self.name if self.name in ("ap", "lateral") else f"{self.name}:{self.angle_deg:g}"


def _rotate(v: FloatArray, axis: FloatArray, angle_rad: float) -> FloatArray:
    # Rodrigues: v turned by angle about the unit axis
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.asarray(v * c + np.cross(axis, v) * s + axis * (axis @ v) * (1 - c))


def beam_lps(view: View) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(beam direction, image up, image right) as unit patient-frame (LPS) vectors."""
    left, post, sup = np.eye(3)
    if view.name == "lateral":
        return left, sup, -post
    beam, up, right = -post, sup, left  # AP
    turn = math.radians(view.angle_deg)
    if view.name == "oblique":
        beam, right = _rotate(beam, sup, turn), _rotate(right, sup, turn)
    elif view.name in ("inlet", "outlet"):
        # inlet: the beam runs towards the feet (-S); outlet: towards the head
        sign = 1.0 if view.name == "inlet" else -1.0
        beam, up = _rotate(beam, left, sign * turn), _rotate(up, left, sign * turn)
    return beam, up, right


@dataclass(frozen=True)
class Geometry:
    """A shot's rays in the case frame: pixel (u, v) at ``origin + u·du + v·dv``; v runs down."""

    source_mm: FloatArray
    origin_mm: FloatArray
    du_mm: FloatArray
    dv_mm: FloatArray
    pixels: int

    def project(self, point_mm: Any) -> tuple[float, float]:
        """Where a case-frame point lands on the detector, in pixels (u right, v down)."""
        du, dv = self.du_mm, self.dv_mm
        normal = np.cross(dv, du)
        normal /= np.linalg.norm(normal)
        ray = np.asarray(point_mm, dtype=np.float64) - self.source_mm
        hit = self.source_mm + ray * ((self.origin_mm - self.source_mm) @ normal) / (ray @ normal)
        rel = hit - self.origin_mm
        return float(rel @ du / (du @ du)), float(rel @ dv / (dv @ dv))


def shot_geometry(
    plan: Plan, view: View, carm: CArm = CArm(), isocentre_mm: Any = None
) -> Geometry:
    """Source and detector for ``view``, centred on ``isocentre_mm`` (default: mid-plan)."""
    rot = np.asarray(plan.case_from_lps, dtype=np.float64)
    beam, up, right = (rot @ v for v in beam_lps(view))
    beam, up, right = (v / np.linalg.norm(v) for v in (beam, up, right))
    if isocentre_mm is None:
        isocentre_mm = 0.5 * (np.asarray(plan.entry_mm) + np.asarray(plan.target_mm))
    iso = np.asarray(isocentre_mm, dtype=np.float64)
    source = iso - carm.source_to_isocentre_mm * beam
    centre = source + carm.source_to_detector_mm * beam
    pitch = carm.detector_mm / carm.pixels
    du, dv = pitch * right, -pitch * up
    origin = centre - (carm.pixels - 1) / 2.0 * (du + dv)
    return Geometry(source, origin, du, dv, carm.pixels)


def soft_tissue_mu(hu: npt.NDArray[Any], tissue: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Attenuation of everything but bone (1/mm): water-equivalent from HU; under bone, water."""
    mu = MU_WATER * np.clip(1.0 + hu.astype(np.float32) / 1000.0, 0.0, None)
    bone = np.isin(tissue, TISSUE_BONE)
    mu[bone] = MU_WATER
    return np.ascontiguousarray(mu, dtype=np.float32)


def attenuation(
    soft_mu: npt.NDArray[np.float32], density: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """The grid a shot casts through: soft tissue plus the bone left, 1/mm."""
    return np.ascontiguousarray(soft_mu + np.float32(MU_BONE_PER_G_CM3) * density)


def instrument_parts(instrument: Instrument, tip_mm: Any, axis: Any, normal: Any) -> FloatArray:
    """The instrument's parts (``_fluoro_kernels.PART_*`` rows) at a pose, from its real sizes.

    Burrs are their head (sphere, or cylinder of ``head_length_mm``) on a shank as long and
    thin as the 3-D view draws it (``BURR_SHANK_MM``; the instrument file does not size it),
    drills their fluted length, wires, awls, probes and screws their ``length_mm``, saws
    their blade; handles and the driver are not drawn.
    """
    axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    tip = np.asarray(tip_mm, dtype=np.float64)
    kind = instrument.kind
    if kind == "spherical_burr":
        head = _part(KIND_SPHERE, tip, axis, instrument.radius_mm)
        return np.stack([head, _shank(instrument, tip, axis)])
    if kind == "cylindrical_burr":
        length = instrument.size("head_length_mm")
        head = _part(KIND_CYLINDER, tip, axis, instrument.radius_mm, length)
        return np.stack([head, _shank(instrument, tip - length * axis, axis)])
    if kind == "oscillating_saw":
        n = np.asarray(normal, dtype=np.float64)
        n = n - (n @ axis) * axis
        blade = _part(
            KIND_BOX,
            tip,
            axis,
            0.5 * instrument.size("blade_thickness_mm"),
            instrument.size("blade_length_mm"),
            instrument.size("blade_width_mm"),
        )
        blade[PART_NORMAL : PART_NORMAL + 3] = n / np.linalg.norm(n)
        return blade[None, :]
    field = "flute_length_mm" if kind == "twist_drill" else "length_mm"
    shaft = _part(KIND_CYLINDER, tip, axis, instrument.radius_mm, instrument.size(field))
    return shaft[None, :]


BURR_SHANK_MM = 60.0  # as sim_core.view.session_geometry draws a burr's shaft


def _part(
    kind: float, tip: FloatArray, axis: FloatArray, radius: float, length: float = 0.0,
    width: float = 0.0,
) -> FloatArray:  # fmt: skip
    row = np.zeros(N_PART, dtype=np.float64)
    row[PART_KIND] = kind
    row[PART_TIP : PART_TIP + 3] = tip
    row[PART_DIR : PART_DIR + 3] = axis
    row[PART_RADIUS] = radius
    row[PART_LENGTH] = length
    row[PART_WIDTH] = width
    row[PART_MU] = MU_STEEL
    return row


def _shank(instrument: Instrument, start: FloatArray, axis: FloatArray) -> FloatArray:
    # the view's shaft radius rule (sim_core.view.session_geometry.instrument_parts)
    radius = max(min(instrument.radius_mm * 0.45, 1.2), 0.5)
    return _part(KIND_CYLINDER, start, axis, radius, BURR_SHANK_MM)


def pose_of(st: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The tool's tip, axis and blade normal as the engine left them (the tip and axis the
    view draws: ``S_TOOL``, ``S_DIR``)."""
    st = np.asarray(st, dtype=np.float64)
    normal = st[S_POSE + Q_NORMAL : S_POSE + Q_NORMAL + 3]
    return st[S_TOOL : S_TOOL + 3].copy(), st[S_DIR : S_DIR + 3].copy(), normal.copy()


def drr(
    mu: npt.NDArray[np.float32],
    spacing_mm: float,
    geometry: Geometry,
    parts: FloatArray | None = None,
    *,
    step_mm: float | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Line integrals (dimensionless, ∫µ dl) per pixel, (pixels, pixels), row 0 at the top:
    the whole, and the instrument's share of it."""
    step = float(step_mm or spacing_mm)
    if parts is None:
        parts = np.zeros((0, N_PART), dtype=np.float64)
    if min(mu.shape) < 2:
        raise FluoroError("网格太小 / the grid needs at least 2 voxels on every axis")
    out = np.zeros((geometry.pixels, geometry.pixels), dtype=np.float64)
    out_parts = np.zeros_like(out)
    line_integrals(
        np.ascontiguousarray(mu, dtype=np.float32),
        float(spacing_mm),
        geometry.source_mm,
        geometry.origin_mm,
        geometry.du_mm,
        geometry.dv_mm,
        step,
        np.ascontiguousarray(parts, dtype=np.float64),
        out,
        out_parts,
    )
    return out, out_parts


def line_integrals_numpy(
    mu: npt.NDArray[np.float32],
    spacing_mm: float,
    geometry: Geometry,
    parts: FloatArray,
    step_mm: float,
) -> FloatArray:
    """The numpy twin of ``_fluoro_kernels.line_integrals``: the same samples, vectorised."""
    n = geometry.pixels
    u, v = np.meshgrid(np.arange(n), np.arange(n))
    pix = (
        geometry.origin_mm
        + u[..., None] * geometry.du_mm
        + v[..., None] * geometry.dv_mm
        - geometry.source_mm
    ).reshape(-1, 3)
    ray_len = np.linalg.norm(pix, axis=1)
    d = pix / ray_len[:, None]
    hi = (np.asarray(mu.shape) - 1) * spacing_mm
    src = geometry.source_mm
    with np.errstate(divide="ignore", invalid="ignore"):
        ta = (0.0 - src) / d
        tb = (hi - src) / d
    parallel = np.abs(d) < 1e-12
    outside = parallel & ((src < 0) | (src > hi))
    lo_t = np.where(parallel, -1e300, np.minimum(ta, tb)).max(axis=1)
    hi_t = np.where(parallel, 1e300, np.maximum(ta, tb)).min(axis=1)
    lo_t = np.maximum(lo_t, 0.0)
    hi_t = np.minimum(hi_t, ray_len)
    hit = (hi_t > lo_t) & ~outside.any(axis=1)
    total = np.zeros(n * n)
    count = np.where(hit, np.ceil((hi_t - lo_t) / step_mm), 0).astype(np.int64)
    shape = np.asarray(mu.shape)
    for s in range(int(count.max()) if count.size else 0):
        t = lo_t + (s + 0.5) * step_mm
        live = (s < count) & (t <= hi_t)
        if not live.any():
            continue
        p = (src + t[live, None] * d[live]) / spacing_mm
        i = np.clip(p.astype(np.int64), 0, shape - 2)
        f = p - i
        acc = np.zeros(len(p))
        for corner in range(8):
            o = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
            w = np.prod(np.where(o == 1, f, 1.0 - f), axis=1)
            acc += w * mu[i[:, 0] + o[0], i[:, 1] + o[1], i[:, 2] + o[2]]
        total[live] += acc
    total *= step_mm
    for row in parts:
        total += row[PART_MU] * _chords_numpy(row, src, d, ray_len)
    return total.reshape(n, n)


def _interval(
    lo: FloatArray, hi: FloatArray, w: FloatArray, de: FloatArray, a: float, b: float
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    # clip [lo, hi] to where w + t·de lies in [a, b]; the third array says the ray can be inside
    flat = np.abs(de) < 1e-12
    with np.errstate(divide="ignore", invalid="ignore"):
        ta, tb = (a - w) / de, (b - w) / de
    t0 = np.where(flat, -np.inf, np.minimum(ta, tb))
    t1 = np.where(flat, np.inf, np.maximum(ta, tb))
    ok = ~flat | ((w >= a) & (w <= b))
    return np.maximum(lo, t0), np.minimum(hi, t1), ok


def _chords_numpy(
    row: FloatArray, src: FloatArray, d: FloatArray, ray_len: FloatArray
) -> FloatArray:
    # numpy twin of _fluoro_kernels.part_chord for every ray at once
    w = src - row[PART_TIP : PART_TIP + 3]
    r = row[PART_RADIUS]
    lo, hi = np.zeros(len(d)), ray_len.copy()
    if row[PART_KIND] == KIND_SPHERE:
        b = d @ w
        disc = b * b - (w @ w - r * r)
        q = np.sqrt(np.maximum(disc, 0.0))
        return np.where(
            disc > 0, np.maximum(0.0, np.minimum(hi, -b + q) - np.maximum(lo, -b - q)), 0.0
        )
    a = row[PART_DIR : PART_DIR + 3]
    lo, hi, ok = _interval(lo, hi, -(w @ a) * np.ones(len(d)), -(d @ a), 0.0, row[PART_LENGTH])
    if row[PART_KIND] == KIND_CYLINDER:
        p = w - (w @ a) * a
        q_ = d - np.outer(d @ a, a)
        a2 = np.einsum("ij,ij->i", q_, q_)
        b2 = q_ @ p
        c2 = p @ p - r * r
        disc = b2 * b2 - a2 * c2
        root = np.sqrt(np.maximum(disc, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            r0, r1 = (-b2 - root) / a2, (-b2 + root) / a2
        along = a2 < 1e-18
        lo = np.where(along, lo, np.maximum(lo, r0))
        hi = np.where(along, hi, np.minimum(hi, r1))
        ok &= np.where(along, c2 <= 0.0, disc > 0.0)
        return np.where(ok, np.maximum(0.0, hi - lo), 0.0)
    n = row[PART_NORMAL : PART_NORMAL + 3]
    for e, half in ((n, r), (np.cross(a, n), 0.5 * row[PART_WIDTH])):
        lo, hi, inside = _interval(lo, hi, (w @ e) * np.ones(len(d)), d @ e, -half, half)
        ok &= inside
    return np.where(ok, np.maximum(0.0, hi - lo), 0.0)


def to_image(line_integral: FloatArray, window: tuple[float, float]) -> Any:
    """8-bit grey image: brighter where more is attenuated; ``window`` (low, high) in ∫µ dl."""
    lo, hi = window
    grey = np.clip((np.asarray(line_integral) - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    return np.asarray(np.rint(255.0 * grey), dtype=np.uint8)


@dataclass(frozen=True)
class Radiograph:
    """One shot: line integrals (whole, and the instrument's share) and its view."""

    line_integral: FloatArray
    instrument: FloatArray
    view: View

    def auto_window(self) -> tuple[float, float]:
        """The window a C-arm's automatic brightness control would set: from the 20th
        percentile of the anatomy's line integrals where rays crossed the case (soft tissue
        dark grey, bone spanning the grey range) to their maximum; the instrument is left
        out so it does not squeeze the bone's range (it saturates white)."""
        tissue = self.line_integral - self.instrument
        seen = tissue[tissue > 0]
        if seen.size == 0:
            return 0.0, 1.0
        return float(np.percentile(seen, 20.0)), float(seen.max())

    def image(self, window: tuple[float, float] | None = None) -> Any:
        return to_image(self.line_integral, window or self.auto_window())


def write_png(path: Path, image: Any, caption: str = "") -> Path:
    """Write an 8-bit grey image as PNG (atomically); ``caption`` is stored as its title."""
    from PIL import Image, PngImagePlugin

    from sim_core.atomic_write import atomic_write

    info = PngImagePlugin.PngInfo()
    if caption:
        info.add_text("Title", caption)
    with atomic_write(Path(path)) as f:
        Image.fromarray(np.asarray(image, dtype=np.uint8), mode="L").save(
            f, format="PNG", pnginfo=info
        )
    return Path(path)


@dataclass
class Fluoroscope:
    """A case's C-arm: the soft-tissue grid computed once, shots cast from a session's state."""

    soft_mu: npt.NDArray[np.float32]
    spacing_mm: float
    plan: Plan
    instrument: Instrument
    carm: CArm = CArm()

    @classmethod
    def for_case(
        cls, bundle: Any, plan: Plan, instrument: Instrument, carm: CArm = CArm()
    ) -> "Fluoroscope":
        return cls(
            soft_tissue_mu(bundle.hu, bundle.tissue), bundle.spacing_mm, plan, instrument, carm
        )

    def shot(
        self, density: npt.NDArray[np.float32], st: FloatArray | None, view: View
    ) -> Radiograph:
        """One shot through ``density`` (the state's bone left); ``st`` (the state's scalars)
        places the instrument, ``None`` leaves it out."""
        if st is None:
            return self._cast(density, None, view)
        return self.shot_at(density, *pose_of(st), view)

    def shot_at(
        self, density: npt.NDArray[np.float32], tip_mm: Any, axis: Any, normal: Any, view: View
    ) -> Radiograph:
        """One shot with the instrument's tip at ``tip_mm`` pointing along ``axis``."""
        return self._cast(density, instrument_parts(self.instrument, tip_mm, axis, normal), view)

    def _cast(
        self, density: npt.NDArray[np.float32], parts: FloatArray | None, view: View
    ) -> Radiograph:
        geometry = shot_geometry(self.plan, view, self.carm)
        total, metal = drr(attenuation(self.soft_mu, density), self.spacing_mm, geometry, parts)
        return Radiograph(total, metal, view)


# --- shots in a session ------------------------------------------------------------------------


@dataclass(frozen=True)
class ShotRecord:
    """A shot taken during a session: after ``tick`` ticks, in ``view`` (``View.label``)."""

    tick: int
    view: str

    @classmethod
    def parse(cls, text: str) -> "ShotRecord":
        """``TICK:VIEW`` as the command line takes it: ``1500:lateral``, ``9000:oblique:-30``."""
        tick, _, view = text.partition(":")
        try:
            at = int(tick)
        except ValueError:
            raise FluoroError(f"透视时刻不是整数 / shot tick {tick!r} is not an integer") from None
        if at < 0:
            raise FluoroError(f"透视时刻不能为负 / shot tick {at} is negative")
        return cls(at, View.parse(view or "ap").label)

    def as_json(self) -> dict[str, Any]:
        return {"tick": self.tick, "view": self.view}


def shots_from_json(data: Any, source: str = "recording") -> tuple[ShotRecord, ...]:
    """Shots as a recording stores them (a list of ``{"tick", "view"}``), checked."""
    if not isinstance(data, list):
        raise FluoroError(f"{source}: 透视记录必须是列表 / fluoro shots must be a list")
    shots = []
    for item in data:
        if not isinstance(item, dict) or set(item) != {"tick", "view"}:
            raise FluoroError(f"{source}: 透视记录格式不对 / a fluoro shot must be {{tick, view}}")
        tick, view = item["tick"], item["view"]
        if isinstance(tick, bool) or not isinstance(tick, int) or tick < 0:
            raise FluoroError(f"{source}: 透视时刻无效 / fluoro shot tick {tick!r} is invalid")
        shots.append(ShotRecord(tick, View.parse(str(view)).label))
    return tuple(sorted(shots, key=lambda s: s.tick))


def fluoro_metrics(shots: tuple[ShotRecord, ...] | list[ShotRecord]) -> dict[str, float]:
    """What the score sheet counts: shots taken and the beam-on time they cost."""
    return {"fluoro_shots": float(len(shots)), "fluoro_time_s": len(shots) * SHOT_EXPOSURE_S}


def session_radiographs(
    model: Any, bundle: Any, inputs: npt.NDArray[Any], shots: tuple[ShotRecord, ...]
) -> list[Radiograph]:
    """Re-run a session's inputs and take each shot at its tick: the images it showed."""
    from sim_core.state import make_state
    from sim_core.step import run

    scope = Fluoroscope.for_case(bundle, model.plan, model.instrument)
    state = make_state(model)
    done = 0
    images = []
    for shot in sorted(shots, key=lambda s: s.tick):
        tick = min(shot.tick, len(inputs))
        if tick > done:
            run(model, state, inputs[done:tick])
            done = tick
        images.append(scope.shot(state.density, state.st, View.parse(shot.view)))
    return images
