"""Propose a built case's parts from its bone segmentation, for a surgeon to confirm.

A case built from a real CT has no truth sidecar: its bones are ``bone_1``, ``bone_2`` ... and
it has no protected zones. This module looks at the segmentation and proposes what it can find,
each part with a confidence in [0, 1] and the reason for it. It is plain image analysis
(thresholds, connected components, hole filling, a profile along the body axis), no learned
model; it was checked on the lumbar CT phantom with its sidecar removed (tests/sim_core/case/
test_propose.py: three levels found, canal centre within 3 mm of the truth). A confidence is a
heuristic score from the measurements named in its reason, not a probability.

- **components**: the segmentation's connected bones (``bone_id``), volume and bounding box.
- **spinal canal**: in each slice across the cranio-caudal axis, a low-density hole enclosed by
  bone, of a canal's size, posterior to the slice's bone centre. The bony ring is closed only
  at the pedicles, so it is found in some slices; the centre line is interpolated between them.
- **vertebral levels**: only when a canal was found. The bone anterior to the canal (the
  bodies) is profiled along the cranio-caudal axis; runs of body separated by low runs (the
  discs) are levels, numbered V1, V2 ... cranial to caudal. Which level is L4 the scan rarely
  shows (no sacrum or ribs in view), so names are the surgeon's.

All points are in the case frame (mm, ``index * spacing_mm``).
"""

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

# a spinal canal's cross-section: lumbar about 250-350 mm², cervical about 150 mm² [mm²]
CANAL_AREA_MM2 = (60.0, 900.0)
# soft tissue, fat or fluid in the canal; denser is bone or contrast [HU]
CANAL_MAX_HU = 150.0
# the canal lies posterior to the slice's bone centre by at least this [mm]
CANAL_POSTERIOR_MM = 5.0
# a body profile under this fraction of the profile's 90th percentile is a gap (disc)
GAP_FRACTION = 0.3
# a body run shorter than this is an end-plate rim or an osteophyte, not a level [mm]
MIN_LEVEL_MM = 8.0
# adult vertebral body heights, cervical to lumbar (about 12-35 mm) with margin [mm]
LEVEL_HEIGHT_MM = (10.0, 45.0)
# a component smaller than this may be a fragment, a calcification or an osteophyte [mm³]
SMALL_COMPONENT_MM3 = 3000.0
# spacing of the proposed canal tube's centre points along the body axis [mm]
CANAL_POINT_STEP_MM = 10.0
# the case grid's axes are treated as patient axes when within this angle [degrees]
OBLIQUE_LIMIT_DEG = 20.0


# a reason or note in both languages, (中文, English): the page shows the reader's
Said = tuple[str, str]


def _joined(parts: list[Said]) -> Said:
    return "；".join(zh for zh, _en in parts), "; ".join(en for _zh, en in parts)


@dataclass(frozen=True)
class Axes:
    """Which case axis runs cranio-caudal (si), antero-posterior (ap) and left-right (lr)."""

    si: int
    ap: int
    lr: int
    superior_sign: int  # +1: the case index grows towards superior
    posterior_sign: int  # +1: the case index grows towards posterior
    obliquity_deg: float  # largest angle between a case axis and its patient axis


@dataclass(frozen=True)
class ComponentProposal:
    id: int
    name: str
    voxels: int
    volume_mm3: float
    bbox_min_mm: tuple[float, float, float]
    bbox_max_mm: tuple[float, float, float]
    confidence: float
    reason: str
    reason_zh: str


@dataclass(frozen=True)
class LevelProposal:
    name: str  # V1 (most cranial), V2 ...: a placeholder for the surgeon's name
    centre_mm: tuple[float, float, float]
    height_mm: float
    bone_ids: tuple[int, ...]
    confidence: float
    reason: str
    reason_zh: str


@dataclass(frozen=True)
class CanalProposal:
    points_mm: tuple[tuple[float, float, float], ...]  # centre line, cranial to caudal
    radius_mm: float  # equivalent radius of the median enclosed cross-section
    slices_found: int
    slices_with_bone: int
    confidence: float
    reason: str
    reason_zh: str


@dataclass(frozen=True)
class Proposal:
    axes: Axes
    components: tuple[ComponentProposal, ...]
    canal: CanalProposal | None
    levels: tuple[LevelProposal, ...]
    notes: tuple[Said, ...]  # what was not proposed, and why

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": "segmentation heuristics (sim_core/case/propose.py)",
            "axes": asdict(self.axes),
            "components": [asdict(c) for c in self.components],
            "canal": asdict(self.canal) if self.canal is not None else None,
            "levels": [asdict(lv) for lv in self.levels],
            "notes": [en for _zh, en in self.notes],
            "notes_zh": [zh for zh, _en in self.notes],
        }


def case_axes(patient_from_case: npt.NDArray[np.float64]) -> Axes:
    """The case axes' patient directions (LPS: +x left, +y posterior, +z superior)."""
    rot = np.asarray(patient_from_case, dtype=np.float64)[:3, :3]
    rot = rot / np.linalg.norm(rot, axis=0, keepdims=True)
    si = int(np.argmax(np.abs(rot[2])))
    rest = [a for a in range(3) if a != si]
    ap = max(rest, key=lambda a: abs(rot[1, a]))
    lr = next(a for a in rest if a != ap)
    cosines = [abs(rot[2, si]), abs(rot[1, ap]), abs(rot[0, lr])]
    obliquity = float(np.degrees(np.arccos(np.clip(min(cosines), 0.0, 1.0))))
    return Axes(
        si=si,
        ap=ap,
        lr=lr,
        superior_sign=1 if rot[2, si] > 0 else -1,
        posterior_sign=1 if rot[1, ap] > 0 else -1,
        obliquity_deg=round(obliquity, 1),
    )


def propose_parts(
    hu: npt.NDArray[np.int16],
    bone_id: npt.NDArray[np.uint8],
    spacing_mm: float,
    patient_from_case: npt.NDArray[np.float64],
) -> Proposal:
    """Propose components, the spinal canal and vertebral levels of a built case.

    ``hu`` (int16) and ``bone_id`` (uint8, 0 = no bone) are the bundle's grids, same shape,
    isotropic ``spacing_mm``; ``patient_from_case`` (4 x 4) maps the case frame to LPS.
    """
    if hu.shape != bone_id.shape or hu.ndim != 3:
        raise ValueError(f"hu {hu.shape} and bone_id {bone_id.shape} must be the same 3-D shape")
    axes = case_axes(patient_from_case)
    notes: list[Said] = []
    components = _components(bone_id, spacing_mm)
    if axes.obliquity_deg > OBLIQUE_LIMIT_DEG:
        notes.append(
            (
                f"扫描相对患者轴线倾斜 {axes.obliquity_deg}°：未建议椎管和椎体节段"
                "（它们是在病例网格的横断层面上查找的）",
                f"scan oblique by {axes.obliquity_deg}° to the patient axes: no canal or levels "
                "proposed (they are searched in slices across the case grid)",
            )
        )
        return Proposal(axes, components, None, (), tuple(notes))
    # slices across the body axis, each as (ap, lr), index 0 = most cranial
    order = (axes.si, axes.ap, axes.lr)
    bone = np.transpose(bone_id > 0, order)
    soft = np.transpose(hu < CANAL_MAX_HU, order)
    ids = np.transpose(bone_id, order)
    if axes.superior_sign > 0:
        bone, soft, ids = bone[::-1], soft[::-1], ids[::-1]
    if axes.posterior_sign < 0:
        bone, soft, ids = bone[:, ::-1], soft[:, ::-1], ids[:, ::-1]

    def to_case(s: float, ap: float, lr: float) -> tuple[float, float, float]:
        # a (slice, ap, lr) position in the reordered grid, as case-frame mm
        n_si, n_ap = bone.shape[0], bone.shape[1]
        idx = [0.0, 0.0, 0.0]
        idx[axes.si] = (n_si - 1 - s) if axes.superior_sign > 0 else s
        idx[axes.ap] = ap if axes.posterior_sign > 0 else (n_ap - 1 - ap)
        idx[axes.lr] = lr
        return (
            round(idx[0] * spacing_mm, 2),
            round(idx[1] * spacing_mm, 2),
            round(idx[2] * spacing_mm, 2),
        )

    found = _canal_sections(bone, soft, spacing_mm)
    canal, centre_ap = _canal(found, bone, spacing_mm, to_case)
    if canal is None:
        notes.append(
            (
                "未找到椎管（任何层面上骨中心后方都没有被骨包绕的低密度孔）：未建议椎体节段",
                "no spinal canal found (no low-density hole enclosed by bone posterior to the "
                "bone's centre in any slice): no vertebral levels proposed",
            )
        )
        return Proposal(axes, components, None, (), tuple(notes))
    levels = _levels(bone, ids, centre_ap, canal.radius_mm, spacing_mm, to_case)
    if not levels:
        notes.append(
            (
                "找到了椎管，但没有找到椎间隙之间的椎体",
                "a canal was found but no run of vertebral body between disc gaps",
            )
        )
    notes.append(
        (
            "节段名 V1、V2 …… 从头侧到尾侧排列；各是哪一节椎骨需由医生判断"
            "（根据扫描两端、骶骨或肋骨）",
            "level names V1, V2 ... run cranial to caudal; which vertebra each is needs the "
            "surgeon (the scan's ends, sacrum or ribs decide it)",
        )
    )
    notes.append(
        (
            "未建议神经根和血管：请用管道画出",
            "nerve roots and vessels are not proposed: draw them as tubes",
        )
    )
    return Proposal(axes, components, canal, tuple(levels), tuple(notes))


def _components(bone_id: npt.NDArray[np.uint8], spacing_mm: float) -> tuple[ComponentProposal, ...]:
    counts = np.bincount(bone_id.ravel(), minlength=int(bone_id.max()) + 1)
    boxes = ndimage.find_objects(bone_id)
    out = []
    for i, box in enumerate(boxes, start=1):
        if box is None:
            continue
        volume = float(counts[i]) * spacing_mm**3
        lo = tuple(round(s.start * spacing_mm, 2) for s in box)
        hi = tuple(round((s.stop - 1) * spacing_mm, 2) for s in box)
        extent = [h - low for h, low in zip(hi, lo, strict=True)]
        if volume < SMALL_COMPONENT_MM3:
            confidence = 0.4
            said = (
                f"连通骨块 {volume:.0f} mm³（小于 {SMALL_COMPONENT_MM3:.0f} mm³）："
                "可能是骨折块、骨赘或钙化",
                f"connected bone of {volume:.0f} mm³ (under {SMALL_COMPONENT_MM3:.0f} mm³): "
                "may be a fragment, an osteophyte or a calcification",
            )
        else:
            confidence = 0.8
            size = f"{extent[0]:.0f} × {extent[1]:.0f} × {extent[2]:.0f} mm"
            said = (
                f"连通骨块 {volume:.0f} mm³，{size}：一块骨，或在阈值处相连的几块骨",
                f"connected bone of {volume:.0f} mm³, {size}: one bone, or bones touching at "
                "the threshold",
            )
        out.append(
            ComponentProposal(
                id=i,
                name=f"bone_{i}",
                voxels=int(counts[i]),
                volume_mm3=round(volume, 1),
                bbox_min_mm=(lo[0], lo[1], lo[2]),
                bbox_max_mm=(hi[0], hi[1], hi[2]),
                confidence=confidence,
                reason=said[1],
                reason_zh=said[0],
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class _Section:
    slice: int
    ap: float  # hole centroid, voxel index in the reordered grid
    lr: float
    area_mm2: float


def _canal_sections(
    bone: npt.NDArray[np.bool_], soft: npt.NDArray[np.bool_], spacing_mm: float
) -> list[_Section]:
    """Per slice, the largest canal-sized soft hole enclosed by bone behind the bone centre."""
    px_mm2 = spacing_mm**2
    lo, hi = (a / px_mm2 for a in CANAL_AREA_MM2)
    found = []
    for s in range(bone.shape[0]):
        b2 = bone[s]
        n_bone = int(np.count_nonzero(b2))
        if n_bone * px_mm2 < CANAL_AREA_MM2[0]:
            continue
        holes = ndimage.binary_fill_holes(b2) & ~b2 & soft[s]
        labels, n = ndimage.label(holes)
        if n == 0:
            continue
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        bone_ap = float(np.mean(np.nonzero(b2)[0]))
        best: _Section | None = None
        for h in range(1, n + 1):
            if not lo <= sizes[h] <= hi:
                continue
            ap_idx, lr_idx = np.nonzero(labels == h)
            ap, lr = float(ap_idx.mean()), float(lr_idx.mean())
            if (ap - bone_ap) * spacing_mm < CANAL_POSTERIOR_MM:
                continue
            if best is None or sizes[h] * px_mm2 > best.area_mm2:
                best = _Section(s, ap, lr, float(sizes[h]) * px_mm2)
        if best is not None:
            found.append(best)
    return found


def _canal(
    found: list[_Section],
    bone: npt.NDArray[np.bool_],
    spacing_mm: float,
    to_case: Any,
) -> tuple[CanalProposal | None, npt.NDArray[np.float64]]:
    """The canal tube through the found sections, and its AP centre (voxels) per slice."""
    n = bone.shape[0]
    with_bone = np.flatnonzero(bone.reshape(n, -1).any(axis=1))
    if len(found) < 2 or len(with_bone) == 0:
        return None, np.zeros(0)
    slices = np.array([f.slice for f in found], dtype=np.float64)
    ap = np.array([f.ap for f in found])
    lr = np.array([f.lr for f in found])
    # a section off the run of the others is a hole elsewhere (a foramen, a marrow space)
    keep = (np.abs(ap - np.median(ap)) * spacing_mm <= 10.0) & (
        np.abs(lr - np.median(lr)) * spacing_mm <= 10.0
    )
    if keep.sum() < 2:
        return None, np.zeros(0)
    slices, ap, lr = slices[keep], ap[keep], lr[keep]
    areas = np.array([f.area_mm2 for f, k in zip(found, keep, strict=True) if k])
    radius = float(np.sqrt(np.median(areas) / np.pi))
    # centre line: interpolated between found sections, constant past the ends
    span = np.arange(with_bone[0], with_bone[-1] + 1, dtype=np.float64)
    centre_ap = np.full(n, np.nan)
    centre_ap[with_bone[0] : with_bone[-1] + 1] = np.interp(span, slices, ap)
    centre_lr = np.interp(span, slices, lr)
    step = max(1, round(CANAL_POINT_STEP_MM / spacing_mm))
    picks = list(range(0, len(span), step))
    if picks[-1] != len(span) - 1:
        picks.append(len(span) - 1)
    points = tuple(
        to_case(float(span[i]), float(centre_ap[int(span[i])]), centre_lr[i]) for i in picks
    )
    # how straight the found centres run: residual of a line fit, in mm
    residual = 0.0
    if len(slices) >= 3:
        for values in (ap, lr):
            fit = np.polyval(np.polyfit(slices, values, 1), slices)
            residual = max(residual, float(np.sqrt(np.mean((values - fit) ** 2))) * spacing_mm)
    covered_mm = (slices.max() - slices.min()) * spacing_mm
    length_mm = (with_bone[-1] - with_bone[0]) * spacing_mm
    confidence = 0.85
    reasons: list[Said] = [
        (
            f"在 {len(with_bone)} 个有骨层面中的 {len(slices)} 个层面上，骨中心后方有被骨包绕的"
            "低密度孔（骨环只在椎弓根处闭合）",
            f"low-density hole enclosed by bone, posterior to the bone's centre, in "
            f"{len(slices)} of {len(with_bone)} slices with bone (the bony ring closes only at "
            "the pedicles)",
        ),
        (
            f"截面积中位数 {np.median(areas):.0f} mm²（等效半径 {radius:.1f} mm）",
            f"median cross-section {np.median(areas):.0f} mm² (equivalent radius {radius:.1f} mm)",
        ),
    ]
    if covered_mm < 0.5 * length_mm:
        confidence -= 0.3
        reasons.append(
            (
                f"只在 {length_mm:.0f} mm 中的 {covered_mm:.0f} mm 找到：其余为外推",
                f"found over {covered_mm:.0f} of {length_mm:.0f} mm: extrapolated beyond",
            )
        )
    if residual > 3.0:
        confidence -= 0.25
        reasons.append(
            (
                f"找到的中心点偏离直线 {residual:.1f} mm",
                f"found centres wander {residual:.1f} mm off a straight line",
            )
        )
    else:
        reasons.append(
            (
                f"找到的中心点与直线相差 {residual:.1f} mm（均方根）以内",
                f"found centres within {residual:.1f} mm (rms) of a straight line",
            )
        )
    canal = CanalProposal(
        points_mm=points,
        radius_mm=round(radius, 1),
        slices_found=len(slices),
        slices_with_bone=len(with_bone),
        confidence=round(max(confidence, 0.1), 2),
        reason=_joined(reasons)[1],
        reason_zh=_joined(reasons)[0],
    )
    return canal, centre_ap


def _runs(flags: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, stop) of each run of True."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _levels(
    bone: npt.NDArray[np.bool_],
    ids: npt.NDArray[np.uint8],
    centre_ap: npt.NDArray[np.float64],
    canal_radius_mm: float,
    spacing_mm: float,
    to_case: Any,
) -> list[LevelProposal]:
    n, n_ap = bone.shape[0], bone.shape[1]
    # the body: bone anterior to the canal's front wall (2 mm margin), so posterior elements,
    # whose facet joints bridge the disc gaps, stay out of the profile
    profile = np.zeros(n)
    front = np.zeros(n, dtype=np.int64)
    for s in range(n):
        if np.isnan(centre_ap[s]):
            continue
        front[s] = max(0, int(centre_ap[s] - (canal_radius_mm + 2.0) / spacing_mm))
        profile[s] = np.count_nonzero(bone[s, : front[s]]) * spacing_mm**2
    smooth = ndimage.uniform_filter1d(profile, size=max(1, round(3.0 / spacing_mm)))
    peak = float(np.percentile(smooth[smooth > 0], 90)) if np.any(smooth > 0) else 0.0
    if peak <= 0.0:
        return []
    with_bone = np.flatnonzero(profile > 0)
    first, last = int(with_bone[0]), int(with_bone[-1])
    levels: list[LevelProposal] = []
    for start, stop in _runs(smooth >= GAP_FRACTION * peak):
        height = (stop - start) * spacing_mm
        if height < MIN_LEVEL_MM:
            continue
        confidence = 0.8
        reasons: list[Said] = [
            (
                f"椎间隙之间的椎体，高 {height:.0f} mm",
                f"vertebral body {height:.0f} mm high between disc gaps",
            )
        ]
        gaps: list[Said] = []
        for edge, side, side_zh in ((start - 1, "cranial", "头侧"), (stop, "caudal", "尾侧")):
            lo, hi = max(edge - int(6 / spacing_mm), 0), min(edge + int(6 / spacing_mm), n)
            depth = float(smooth[lo:hi].min()) / peak
            if edge < 1 or edge >= n - 1:
                # the body reaches the grid's end: the scan cut it
                confidence -= 0.25
                gaps.append((f"被扫描的{side_zh}端截断", f"cut by the {side} end of the scan"))
            elif edge <= first or edge >= last:
                gaps.append((f"扫描中最{side_zh}的椎体", f"the most {side} body in the scan"))
            else:
                gaps.append(
                    (
                        f"{side_zh}间隙处骨量降到椎体的 {depth:.0%}",
                        f"{side} gap down to {depth:.0%} of the body profile",
                    )
                )
        reasons += gaps
        if not LEVEL_HEIGHT_MM[0] <= height <= LEVEL_HEIGHT_MM[1]:
            confidence -= 0.3
            limits = f"{LEVEL_HEIGHT_MM[0]:.0f}-{LEVEL_HEIGHT_MM[1]:.0f} mm"
            reasons.append(
                (
                    f"高度不在 {limits} 之内：可能是两个椎体，或不完整的一个",
                    f"height outside {limits}: two bodies, or a partial one",
                )
            )
        # the components holding most of this run's body
        run_ids = ids[start:stop]
        counts = np.bincount(run_ids[run_ids > 0], minlength=1)
        bone_ids = tuple(
            int(i) for i in np.argsort(-counts, kind="stable") if counts[i] >= 0.2 * counts.max()
        )
        if not bone_ids or counts.max() == 0:
            bone_ids = ()
        mid = (start + stop - 1) / 2.0
        body = bone[start:stop, : int(front[int(mid)])]
        ap_idx, lr_idx = np.nonzero(body.any(axis=0))
        centre = to_case(
            mid,
            float(ap_idx.mean()) if len(ap_idx) else float(centre_ap[int(mid)]),
            float(lr_idx.mean()) if len(lr_idx) else n_ap / 2.0,
        )
        levels.append(
            LevelProposal(
                name=f"V{len(levels) + 1}",
                centre_mm=centre,
                height_mm=round(height, 1),
                bone_ids=bone_ids,
                confidence=round(max(confidence, 0.1), 2),
                reason=_joined(reasons)[1],
                reason_zh=_joined(reasons)[0],
            )
        )
    return levels
