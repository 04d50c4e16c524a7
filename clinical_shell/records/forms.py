"""Page forms: parse and shape input; the rules themselves live in `services.validate_encounter`."""

from typing import Any, ClassVar

from django import forms
from django.utils.translation import gettext_lazy as _

from clinical_shell.network.models import Department, Institution
from clinical_shell.records.models import Encounter


class MarksInvalid:
    errors: Any
    fields: Any

    def mark_invalid(self) -> None:
        """Flag the widgets of fields with errors so the page outlines them (and screen readers)."""
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs.update({"class": "invalid", "aria-invalid": "true"})


class EncounterForm(MarksInvalid, forms.Form):
    institution = forms.ModelChoiceField(queryset=Institution.objects.none(), label=_("就诊机构"))
    department = forms.ModelChoiceField(
        queryset=Department.objects.none(), label=_("科室"), required=False
    )
    kind = forms.ChoiceField(choices=Encounter.Kind.choices, label=_("就诊类型"))
    started_at = forms.DateTimeField(
        label=_("就诊时间"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    chief_complaint = forms.CharField(label=_("主诉"), max_length=300, required=False)
    icd10_code = forms.CharField(label=_("诊断编码 (ICD-10)"), max_length=10, required=False)
    diagnosis = forms.CharField(label=_("诊断"), max_length=200, required=False)
    ao_ota_code = forms.CharField(label=_("骨折分型 (AO/OTA)"), max_length=16, required=False)
    icd9cm3_code = forms.CharField(label=_("手术编码 (ICD-9-CM-3)"), max_length=8, required=False)
    procedure = forms.CharField(label=_("手术/操作"), max_length=200, required=False)
    notes = forms.CharField(
        label=_("备注"), widget=forms.Textarea(attrs={"rows": 3}), required=False
    )

    def __init__(self, *args: object, institution_ids: list[int], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["institution"].queryset = Institution.objects.filter(pk__in=institution_ids)
        self.fields["department"].queryset = Department.objects.filter(
            institution_id__in=institution_ids
        ).select_related("institution")

    # services report nested keys (diagnoses.0.icd10_code); the page has one row of each
    SERVICE_FIELD_MAP: ClassVar[dict[str, str]] = {
        "diagnoses.0.icd10_code": "icd10_code",
        "diagnoses.0.description": "diagnosis",
        "diagnoses.0.ao_ota_code": "ao_ota_code",
        "procedures.0.icd9cm3_code": "icd9cm3_code",
        "department_id": "department",
    }


class DuplicateDecisionForm(MarksInvalid, forms.Form):
    """A reviewer's decision on a duplicate pair: request a merge (survivor + reason) or dismiss;
    on a pending merge request, a second reviewer approves or rejects it (with a note)."""

    action = forms.ChoiceField(
        choices=[
            ("merge", _("合并")),
            ("dismiss", _("非同一人")),
            ("approve", _("批准合并")),
            ("reject", _("驳回")),
        ]
    )
    survivor = forms.TypedChoiceField(coerce=int, required=False, label=_("保留的档案"))
    reason = forms.CharField(label=_("原因"), max_length=300, required=False)
    note = forms.CharField(label=_("审核意见"), max_length=300, required=False)
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: object, pair_ids: tuple[int, int], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["survivor"].choices = [(str(pk), str(pk)) for pk in pair_ids]

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        # a merge cannot be undone by a click: it names the record kept and says why
        if data.get("action") == "merge":
            if not data.get("survivor"):
                self.add_error("survivor", _("请选择保留的档案"))
            if not str(data.get("reason") or "").strip():
                self.add_error("reason", _("合并须说明原因"))
        if data.get("action") == "reject" and not str(data.get("note") or "").strip():
            self.add_error("note", _("驳回须说明原因"))
        return data
