"""Page forms: parse what a surgeon typed; the rules (implants, points, versions) are services'."""

from typing import Any

from django import forms
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from clinical_shell.planning.models import PlanElement
from clinical_shell.planning.services import ElementData, implant_catalog

# which element kind each implant kind serves (the implant select is grouped by these)
ELEMENT_KIND_OF_IMPLANT = {
    "pedicle_screw": PlanElement.Kind.PEDICLE_SCREW,
    "k_wire": PlanElement.Kind.K_WIRE,
    "guide_wire": PlanElement.Kind.GUIDE_WIRE,
    "drill_bit": PlanElement.Kind.DRILL_HOLE,
}
AXES = ("x", "y", "z")


class MarksInvalid:
    errors: Any
    fields: Any

    def mark_invalid(self) -> None:
        """Flag the widgets of fields with errors so the page outlines them (and screen readers)."""
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs.update({"class": "invalid", "aria-invalid": "true"})


def implant_choices() -> list[tuple[Any, Any]]:
    """The catalog as grouped choices (one group per element kind), names in the page's language."""
    english = (get_language() or "").startswith("en")
    groups: list[tuple[Any, Any]] = [("", _("无（不选内植物）"))]
    for implant_kind, element_kind in ELEMENT_KIND_OF_IMPLANT.items():
        options = [
            (i.id, i.name_en if english else i.name_zh)
            for i in implant_catalog()
            if i.kind == implant_kind
        ]
        groups.append((element_kind.label, options))
    return groups


def _coordinate(label: Any, *, required: bool = True) -> forms.FloatField:
    return forms.FloatField(
        label=label,
        required=required,
        widget=forms.NumberInput(attrs={"step": "0.1", "inputmode": "decimal"}),
    )


class VersionForm(forms.Form):
    # the plan version the page showed; another one is the service's conflict
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class PlanForm(MarksInvalid, forms.Form):
    title = forms.CharField(label=_("规划标题"), max_length=200)
    case = forms.TypedChoiceField(label=pgettext_lazy("one case", "仿真病例"), coerce=int)

    def __init__(self, *args: Any, cases: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["case"].choices = cases


class ElementForm(MarksInvalid, VersionForm):
    kind = forms.ChoiceField(label=_("类型"), choices=PlanElement.Kind.choices)
    label = forms.CharField(
        label=_("标记"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("如 L4 左")}),
    )
    implant_id = forms.ChoiceField(label=pgettext_lazy("form", "内植物"), required=False)
    entry_x = _coordinate(_("入点 x"))
    entry_y = _coordinate(_("入点 y"))
    entry_z = _coordinate(_("入点 z"))
    target_x = _coordinate(_("靶点 x"))
    target_y = _coordinate(_("靶点 y"))
    target_z = _coordinate(_("靶点 z"))
    normal_x = _coordinate(_("法向 x"), required=False)
    normal_y = _coordinate(_("法向 y"), required=False)
    normal_z = _coordinate(_("法向 z"), required=False)
    radius_mm = forms.FloatField(
        label=_("半径 (mm)"),
        required=False,
        widget=forms.NumberInput(attrs={"step": "0.1", "inputmode": "decimal"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["implant_id"].choices = implant_choices()

    @classmethod
    def initial_of(cls, element: PlanElement, version: int) -> dict[str, Any]:
        """The form's initial values for an element as stored."""
        initial: dict[str, Any] = {
            "version": version,
            "kind": element.kind,
            "label": element.label,
            "implant_id": element.implant_id,
            "radius_mm": element.radius_mm,
        }
        for name, point in (
            ("entry", element.entry_mm),
            ("target", element.target_mm),
            ("normal", element.plane_normal),
        ):
            for axis, value in zip(AXES, point or [None] * 3, strict=True):
                initial[f"{name}_{axis}"] = value
        return initial

    def element_data(self) -> ElementData:
        """The element the services check (call after is_valid())."""
        data = self.cleaned_data
        normal = [data[f"normal_{a}"] for a in AXES]
        return ElementData(
            kind=data["kind"],
            label=data["label"],
            entry_mm=[data[f"entry_{a}"] for a in AXES],
            target_mm=[data[f"target_{a}"] for a in AXES],
            implant_id=data["implant_id"],
            plane_normal=normal if all(v is not None for v in normal) else None,
            radius_mm=data["radius_mm"],
        )

    def point_rows(self) -> list[tuple[str, Any, list[forms.BoundField]]]:
        """The three points the page lays out as rows of x, y, z boxes."""
        rows = (
            ("entry", pgettext_lazy("form", "入点")),
            ("target", pgettext_lazy("form", "靶点")),
            ("normal", pgettext_lazy("form", "平面法向")),
        )
        return [(name, label, [self[f"{name}_{a}"] for a in AXES]) for name, label in rows]
