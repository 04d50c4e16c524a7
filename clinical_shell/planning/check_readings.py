"""A stored element's checks as a surgeon reads them on the plan pages: distances to nerve and
vessel, breach and its predicted Gertzbein–Robbins grade, the narrowest bone width against the
implant's diameter, the depth in bone against its length, and each flag as a sentence."""

from dataclasses import dataclass
from typing import Any

from django.utils.translation import get_language, pgettext
from django.utils.translation import gettext as _

from clinical_shell.planning.models import PlanElement
from sim_core.implants import ImplantError, get_implant

# the structures named in the zones column, in this order (protected_zone: scenarios only)
ZONE_KEYS = ("nerve", "vessel", "protected_zone")


@dataclass(frozen=True)
class ZoneReading:
    name: str
    # "3.2 mm", or the words for "nothing within 15 mm"
    text: str
    touches: bool


@dataclass(frozen=True)
class ElementReading:
    element: PlanElement
    kind: str
    implant: str
    entry: str
    target: str
    zones: list[ZoneReading]
    breach: str
    breach_flagged: bool
    grade: str
    width: str
    width_flagged: bool
    depth: str
    depth_flagged: bool
    warnings: list[str]


def _mm(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} mm"


def _point(point: list[float] | None) -> str:
    return "—" if not point else "(" + ", ".join(f"{x:.1f}" for x in point) + ")"


def _zone_name(key: str) -> str:
    # in context: other apps' catalogues translate the bare words for their own labels
    # ("Nerve"), and Django merges the catalogues, so a bare msgid would take theirs
    names = {
        "nerve": pgettext("protected zone", "神经"),
        "vessel": pgettext("protected zone", "血管"),
        "protected_zone": pgettext("protected zone", "保护区"),
    }
    return names.get(key, key)


def _implant_name(implant_id: str) -> str:
    if not implant_id:
        return "—"
    try:
        implant = get_implant(implant_id)
    except ImplantError:
        return implant_id
    english = (get_language() or "").startswith("en")
    return implant.name_en if english else implant.name_zh


def _warnings(element: PlanElement, checks: dict[str, Any]) -> list[str]:
    """Each flag of the checks as a sentence (an element saved before a flag existed has none)."""
    flags = set(checks.get("flags", ()))
    screw = element.kind == PlanElement.Kind.PEDICLE_SCREW
    diameter = 2.0 * float(checks.get("radius_mm") or 0.0)
    warnings: list[str] = []
    if "protected_zone_contact" in flags:
        for key in ZONE_KEYS:
            zone = checks.get("zones", {}).get(key) or {}
            clearance = zone.get("clearance_mm")
            if clearance is not None and clearance <= 0:
                warnings.append(
                    _("触及%(zone)s：距入点 %(at)s mm 处进入 %(depth)s mm")
                    % {
                        "zone": _zone_name(key),
                        "at": f"{zone.get('at_mm') or 0.0:.1f}",
                        "depth": f"{-clearance:.1f}",
                    }
                )
    if "cortical_breach" in flags:
        breach = f"{checks.get('breach_mm') or 0.0:.1f}"
        if checks.get("gr_grade"):
            warnings.append(
                _("皮质突破 %(breach)s mm（预测 Gertzbein–Robbins 分级 %(grade)s）")
                % {"breach": breach, "grade": checks["gr_grade"]}
            )
        else:
            warnings.append(_("皮质突破 %(breach)s mm") % {"breach": breach})
    if "wider_than_bone" in flags:
        values = {"diameter": f"{diameter:.1f}", "width": f"{checks.get('bone_width_mm') or 0:.1f}"}
        if screw:
            warnings.append(_("螺钉直径 %(diameter)s mm 大于最窄处骨宽 %(width)s mm") % values)
        else:
            warnings.append(_("内植物直径 %(diameter)s mm 大于最窄处骨宽 %(width)s mm") % values)
    if "longer_than_bone" in flags:
        values = {
            "length": f"{checks.get('span_length_mm') or 0:.1f}",
            "depth": f"{checks.get('bone_depth_mm') or 0:.1f}",
        }
        if screw:
            warnings.append(
                _("螺钉长度 %(length)s mm 超过骨内深度 %(depth)s mm，将穿出对侧皮质") % values
            )
        else:
            warnings.append(_("路径长度 %(length)s mm 超过骨内深度 %(depth)s mm") % values)
    return warnings


def element_reading(element: PlanElement) -> ElementReading:
    """One row of the elements table, in the active language."""
    checks: dict[str, Any] = element.checks or {}
    zones = []
    for key in ZONE_KEYS:
        zone = checks.get("zones", {}).get(key)
        if zone is None or (key == "protected_zone" and zone.get("clearance_mm") is None):
            # protected zones exist only in scenarios: not shown when none is near
            continue
        clearance = zone.get("clearance_mm")
        text = _("15 mm 内无") if clearance is None else _mm(clearance)
        zones.append(ZoneReading(_zone_name(key), text, clearance is not None and clearance <= 0))
    flags = set(checks.get("flags", ()))
    radius = checks.get("radius_mm")
    diameter = "—" if not radius else f"Ø{2.0 * radius:.1f} mm"
    return ElementReading(
        element=element,
        kind=element.get_kind_display(),
        implant=_implant_name(element.implant_id),
        entry=_point(element.entry_mm),
        target=_point(element.target_mm),
        zones=zones,
        breach=_mm(checks.get("breach_mm")),
        breach_flagged="cortical_breach" in flags,
        grade=checks.get("gr_grade") or "—",
        width=f"{_mm(checks.get('bone_width_mm'))} / {diameter}",
        width_flagged="wider_than_bone" in flags,
        depth=f"{_mm(checks.get('bone_depth_mm'))} / {_mm(checks.get('span_length_mm'))}",
        depth_flagged="longer_than_bone" in flags,
        warnings=_warnings(element, checks),
    )


def element_readings(elements: list[PlanElement]) -> list[ElementReading]:
    return [element_reading(e) for e in elements]


def sentence_templates() -> dict[str, str]:
    """The warning sentences of `_warnings` with their placeholders left in (`%(zone)s`), in
    the active language, for the 3D view's live readings (filled in there from a check).
    Passed from here: a template's {% translate %} looks a `%` up as `%%` and would miss."""
    return {
        "touches": _("触及%(zone)s：距入点 %(at)s mm 处进入 %(depth)s mm"),
        "breach_graded": _("皮质突破 %(breach)s mm（预测 Gertzbein–Robbins 分级 %(grade)s）"),
        "breach_only": _("皮质突破 %(breach)s mm"),
        "wider_screw": _("螺钉直径 %(diameter)s mm 大于最窄处骨宽 %(width)s mm"),
        "wider": _("内植物直径 %(diameter)s mm 大于最窄处骨宽 %(width)s mm"),
        "longer_screw": _("螺钉长度 %(length)s mm 超过骨内深度 %(depth)s mm，将穿出对侧皮质"),
        "longer": _("路径长度 %(length)s mm 超过骨内深度 %(depth)s mm"),
    }
