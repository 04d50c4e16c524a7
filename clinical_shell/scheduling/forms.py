"""Page forms: parse and shape input; the rules live in `services` (validation and the checks)."""

from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinical_shell.network.models import Institution
from clinical_shell.scheduling import selectors
from clinical_shell.scheduling.models import Booking


def grade_choices() -> list[tuple[str, str]]:
    # built per form, in the request's language (a module-level list would keep the first one)
    return [(str(g), gettext("%(grade)s级手术") % {"grade": g}) for g in (1, 2, 3, 4)]


def technique_choices() -> list[tuple[str, str]]:
    # the catalog is credentialing's; read here only for the drop-down's labels
    from clinical_shell.credentialing.models import Technique

    techniques = Technique.objects.filter(active=True).exclude(
        category=Technique.Category.HOSPITAL_MANAGED
    )
    return [("", str(_("不涉及限制类技术"))), *((t.code, t.display_name) for t in techniques)]


class SurgeonField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Any) -> str:
        user: User = obj
        person = getattr(user, "person", None)
        return person.full_name if person is not None else user.get_username()


class MarksInvalid:
    errors: Any
    fields: Any

    def mark_invalid(self) -> None:
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs.update({"class": "invalid", "aria-invalid": "true"})


class BookingForm(MarksInvalid, forms.Form):
    patient = forms.IntegerField(label=_("患者编号"), min_value=1)
    institution = forms.ModelChoiceField(queryset=Institution.objects.none(), label=_("手术机构"))
    surgeon = SurgeonField(queryset=User.objects.none(), label=_("主刀医生"))
    procedure_name = forms.CharField(label=_("手术名称"), max_length=200)
    procedure_code = forms.CharField(
        label=_("手术编码 (ICD-9-CM-3)"), max_length=16, required=False
    )
    grade = forms.TypedChoiceField(label=_("手术级别"), choices=grade_choices, coerce=int)
    technique_code = forms.ChoiceField(label=_("限制类技术"), required=False)
    scheduled_on = forms.DateField(
        label=_("手术日期"), widget=forms.DateInput(attrs={"type": "date"})
    )
    emergency_override = forms.BooleanField(label=_("急诊越权（危及生命）"), required=False)
    override_reason = forms.CharField(
        label=_("越权原因"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, institution_ids: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["institution"].queryset = Institution.objects.filter(pk__in=institution_ids)
        self.fields["surgeon"].queryset = selectors.surgeons_at(institution_ids)
        self.fields["technique_code"].choices = technique_choices()


class CancelForm(MarksInvalid, forms.Form):
    reason = forms.CharField(label=_("取消原因"), max_length=500)


class BookingFilterForm(forms.Form):
    state = forms.ChoiceField(
        label=_("状态"), required=False, choices=[("", _("全部")), *Booking.State.choices]
    )
    date_from = forms.DateField(
        label=_("起始日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("截止日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    override = forms.BooleanField(label=_("仅急诊越权"), required=False)
