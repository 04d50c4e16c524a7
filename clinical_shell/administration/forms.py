"""Forms of the administration pages: parsing only; the rules are in services.py."""

from dataclasses import replace
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from clinical_shell.administration import services
from clinical_shell.administration.templatetags.institution_names import local_name
from clinical_shell.network.models import Institution


class InstitutionForm(forms.Form):
    """An institution's editable fields; the service's checks join the form's own, so every
    problem shows at once. Ranges are the service's to check (one wording on page and API)."""

    name = forms.CharField(label=_("机构名称"), max_length=128, required=False)
    name_en = forms.CharField(
        label=_("英文名称"),
        max_length=128,
        required=False,
        help_text=_("英文界面显示；留空则显示中文名称"),
    )
    level = forms.ChoiceField(label=_("级别"), choices=Institution.Level.choices)
    county = forms.CharField(label=_("所属县市"), max_length=32, required=False)
    parent_id = forms.TypedChoiceField(
        label=_("上级机构"), coerce=int, empty_value=None, required=False
    )
    longitude = forms.FloatField(
        label=_("经度"),
        required=False,
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
        help_text=_("WGS-84，度；质控地图按此位置标注机构"),
    )
    latitude = forms.FloatField(
        label=_("纬度"),
        required=False,
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    active = forms.BooleanField(
        label=_("启用"),
        required=False,
        help_text=_("停用的机构保留其记录；不再能为它新建账户或分配角色"),
    )

    def __init__(
        self,
        *args: Any,
        parents: list[Institution],
        network_fields_locked: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        parent_field = self.fields["parent_id"]
        assert isinstance(parent_field, forms.TypedChoiceField)
        parent_field.choices = [("", _("（无）")), *((p.pk, local_name(p)) for p in parents)]
        # a county administrator sees the institution's place in the network but cannot move it
        if network_fields_locked:
            for name in ("level", "county", "parent_id", "active"):
                self.fields[name].disabled = True
        for field in self.fields.values():
            field.widget.attrs.setdefault("autocomplete", "off")

    @classmethod
    def initial_of(cls, institution: Institution) -> dict[str, Any]:
        return {
            "name": institution.name,
            "name_en": institution.name_en,
            "level": institution.level,
            "county": institution.county,
            "parent_id": institution.parent_id,
            "longitude": institution.longitude,
            "latitude": institution.latitude,
            "active": institution.active,
        }

    def change(self) -> services.InstitutionChange:
        data = self.cleaned_data
        return services.InstitutionChange(
            name=data.get("name") or "",
            name_en=data.get("name_en") or "",
            level=data.get("level") or "",
            county=data.get("county") or "",
            parent_id=data.get("parent_id"),
            longitude=data.get("longitude"),
            latitude=data.get("latitude"),
            active=bool(data.get("active")),
        )

    def add_service_errors(self, errors: dict[str, str]) -> None:
        for key, message in errors.items():
            # a field the form already refused (a number that is not one) keeps that message
            if key not in self.errors:
                self.add_error(key if key in self.fields else None, message)

    def mark_invalid(self) -> None:
        """Outline the fields with errors (and tell screen readers)."""
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs.update({"class": "invalid", "aria-invalid": "true"})


class NewInstitutionForm(InstitutionForm):
    """A new institution: its code first; it opens active (closing is an edit)."""

    code = forms.CharField(
        label=_("机构代码"),
        max_length=32,
        required=False,
        help_text=_("2–32 位字母、数字、连字符或下划线，如 CX-NH-01；保存后不能修改"),
    )
    field_order = ("code", "name", "name_en", "level", "county", "parent_id")

    def __init__(self, *args: Any, parents: list[Institution], **kwargs: Any) -> None:
        super().__init__(*args, parents=parents, network_fields_locked=False, **kwargs)
        del self.fields["active"]
        self.order_fields(self.field_order)

    def change(self) -> services.InstitutionChange:
        return replace(super().change(), active=True)
