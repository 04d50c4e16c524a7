"""Page forms: parse and shape input; the rules themselves live in `services.validate_encounter`."""

from typing import Any, ClassVar

from django import forms
from django.utils.translation import gettext_lazy as _

from clinical_shell.network.models import Department, Institution
from clinical_shell.records import services
from clinical_shell.records.models import Allergy, Encounter, Laterality, Patient, Problem


class MarksInvalid:
    errors: Any
    fields: Any

    def mark_invalid(self) -> None:
        """Flag the widgets of fields with errors so the page outlines them (and screen readers)."""
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs.update({"class": "invalid", "aria-invalid": "true"})


def _coded(system: str, **attrs: str) -> forms.TextInput:
    """A code box the page's script (records/code_search.js) offers table matches for."""
    return forms.TextInput(attrs={"data-code-system": system, "autocomplete": "off", **attrs})


def _patients_box(**attrs: str) -> forms.TextInput:
    """A box for the patient's own details: never filled from the browser's memory, which holds
    the clinician's name, phone and address (and the last patient's), not this patient's."""
    return forms.TextInput(attrs={"autocomplete": "off", **attrs})


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
    icd10_code = forms.CharField(
        label=_("诊断编码 (ICD-10)"),
        max_length=10,
        required=False,
        widget=_coded("icd10", **{"data-description": "diagnosis"}),
    )
    diagnosis = forms.CharField(label=_("诊断"), max_length=200, required=False)
    ao_ota_code = forms.CharField(
        label=_("骨折分型 (AO/OTA)"), max_length=16, required=False, widget=_coded("aoota")
    )
    icd9cm3_code = forms.CharField(
        label=_("手术编码 (ICD-9-CM-3)"),
        max_length=8,
        required=False,
        widget=_coded("icd9cm3", **{"data-description": "procedure"}),
    )
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


class ServiceChecked:
    """Adds the service's own field errors to the form's, so every problem shows at once."""

    errors: Any

    def add_service_errors(self, errors: dict[str, str]) -> None:
        for key, message in errors.items():
            # a field already refused by the form (required, format) keeps that one message
            if key not in self.errors:
                self.add_error(key if key in self.fields else None, message)  # type: ignore[attr-defined]


LATERALITY_CHOICES = [("", _("请选择")), *Laterality.choices]


class CodedDiagnosisForm(MarksInvalid, ServiceChecked, forms.Form):
    code = forms.CharField(
        label=_("诊断编码 (ICD-10)"),
        max_length=10,
        widget=_coded("icd10", **{"data-description": "description"}),
    )
    laterality = forms.ChoiceField(choices=LATERALITY_CHOICES, label=_("侧别"))
    description = forms.CharField(
        label=_("诊断描述"),
        max_length=200,
        required=False,
        help_text=_("留空时使用编码表中的名称"),
    )
    ao_ota_code = forms.CharField(
        label=_("骨折分型 (AO/OTA)"), max_length=16, required=False, widget=_coded("aoota")
    )
    primary = forms.BooleanField(label=_("主要诊断"), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.add_service_errors(services.validate_coded_diagnosis(self.to_service(data)))
        return data

    @staticmethod
    def to_service(data: dict[str, Any]) -> services.CodedDiagnosisIn:
        return services.CodedDiagnosisIn(
            code=data.get("code") or "",
            laterality=data.get("laterality") or "",
            description=data.get("description") or "",
            ao_ota_code=data.get("ao_ota_code") or "",
            primary=bool(data.get("primary")),
        )


class CodedProcedureForm(MarksInvalid, ServiceChecked, forms.Form):
    code = forms.CharField(
        label=_("手术操作编码 (ICD-9-CM-3)"),
        max_length=8,
        widget=_coded("icd9cm3", **{"data-description": "description"}),
    )
    laterality = forms.ChoiceField(choices=LATERALITY_CHOICES, label=_("侧别"))
    performed_at = forms.DateTimeField(
        label=_("手术操作时间"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    description = forms.CharField(
        label=_("手术操作描述"),
        max_length=200,
        required=False,
        help_text=_("留空时使用编码表中的名称"),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        checked = self.to_service(data)
        errors = services.validate_coded_procedure(checked)
        self.add_service_errors(errors)
        return data

    @staticmethod
    def to_service(data: dict[str, Any]) -> services.CodedProcedureIn:
        return services.CodedProcedureIn(
            code=data.get("code") or "",
            laterality=data.get("laterality") or "",
            performed_at=data.get("performed_at"),
            description=data.get("description") or "",
        )


class RemoveForm(MarksInvalid, forms.Form):
    """Remove one row (soft delete): which, and why."""

    item = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label=_("删除原因"), max_length=300)


class PatientForm(MarksInvalid, ServiceChecked, forms.Form):
    """Registration: identity checked by services.validate_demographics, all errors at once."""

    name = forms.CharField(label=_("姓名"), max_length=64, widget=_patients_box())
    sex = forms.ChoiceField(choices=[("", _("请选择")), *Patient.Sex.choices], label=_("性别"))
    birth_date = forms.DateField(
        label=_("出生日期"),
        widget=forms.DateInput(attrs={"type": "date"}),
        input_formats=["%Y-%m-%d"],
    )
    resident_id = forms.CharField(
        label=_("身份证号"),
        max_length=18,
        required=False,
        widget=_patients_box(inputmode="text"),
    )
    phone = forms.CharField(
        label=_("电话"),
        max_length=32,
        required=False,
        widget=_patients_box(inputmode="tel"),
        help_text=_("手机号，或带区号的座机号"),
    )
    address = forms.CharField(
        label=_("住址"), max_length=200, required=False, widget=_patients_box()
    )
    institution = forms.ModelChoiceField(queryset=Institution.objects.none(), label=_("建档机构"))

    def __init__(self, *args: object, institution_ids: list[int], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["institution"].queryset = Institution.objects.filter(pk__in=institution_ids)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.add_service_errors(
            services.validate_demographics(
                name=data.get("name") or "",
                sex=data.get("sex") or "",
                birth_date=data.get("birth_date"),
                resident_id=data.get("resident_id") or "",
                phone=data.get("phone") or "",
            )
        )
        return data


class DemographicsForm(MarksInvalid, ServiceChecked, forms.Form):
    """A change of demographics, with the reason kept in the record's history."""

    name = forms.CharField(label=_("姓名"), max_length=64, widget=_patients_box())
    sex = forms.ChoiceField(choices=Patient.Sex.choices, label=_("性别"))
    birth_date = forms.DateField(
        label=_("出生日期"),
        widget=forms.DateInput(attrs={"type": "date"}),
        input_formats=["%Y-%m-%d"],
    )
    resident_id = forms.CharField(
        label=_("身份证号"),
        max_length=18,
        required=False,
        widget=_patients_box(inputmode="text"),
    )
    phone = forms.CharField(
        label=_("电话"),
        max_length=32,
        required=False,
        widget=_patients_box(inputmode="tel"),
        help_text=_("手机号，或带区号的座机号"),
    )
    address = forms.CharField(
        label=_("住址"), max_length=200, required=False, widget=_patients_box()
    )
    reason = forms.CharField(label=_("修改原因"), max_length=300)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.add_service_errors(
            services.validate_demographics(
                name=data.get("name") or "",
                sex=data.get("sex") or "",
                birth_date=data.get("birth_date"),
                resident_id=data.get("resident_id") or "",
                # a number stored before numbers were checked may stay as it is
                phone=""
                if (data.get("phone") or "") == self.initial.get("phone")
                else data.get("phone") or "",
            )
        )
        return data


class AllergyForm(MarksInvalid, forms.Form):
    substance = forms.CharField(label=_("过敏物质"), max_length=100, widget=_patients_box())
    severity = forms.ChoiceField(
        choices=[("", _("请选择")), *Allergy.Severity.choices], label=_("严重程度")
    )
    reaction = forms.CharField(
        label=_("过敏反应"), max_length=200, required=False, widget=_patients_box()
    )


class ProblemForm(MarksInvalid, ServiceChecked, forms.Form):
    description = forms.CharField(label=_("问题"), max_length=200, widget=_patients_box())
    code = forms.CharField(
        label=_("诊断编码 (ICD-10)"), max_length=10, required=False, widget=_coded("icd10")
    )
    status = forms.ChoiceField(choices=Problem.Status.choices, label=_("状态"))
    onset_date = forms.DateField(
        label=_("起病日期"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        input_formats=["%Y-%m-%d"],
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        self.add_service_errors(
            services.validate_problem(
                description=data.get("description") or "",
                code=data.get("code") or "",
                status=data.get("status") or "",
                onset_date=data.get("onset_date"),
            )
        )
        return data


# dates typed as 1958-03-14, 1958/3/14 or 19580314 (the date picker sends the first)
SEARCH_DATE_FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
SEARCH_SORTS = ["name", "birth_date", "sex", "institution", "last_visit"]


def _date_box() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"})


class PatientSearchForm(forms.Form):
    """The search page's query string: text, filters and sort. Invalid filters are ignored (and
    shown as such); `institution` offers only the user's own institutions."""

    q = forms.CharField(required=False, max_length=100)
    institution = forms.TypedChoiceField(
        label=_("机构"), required=False, coerce=int, empty_value=None
    )
    sex = forms.ChoiceField(
        label=_("性别"), required=False, choices=[("", _("全部")), *Patient.Sex.choices]
    )
    age_min = forms.IntegerField(label=_("年龄自"), required=False, min_value=0, max_value=150)
    age_max = forms.IntegerField(label=_("年龄至"), required=False, min_value=0, max_value=150)
    registered_from = forms.DateField(
        label=_("建档自"), required=False, input_formats=SEARCH_DATE_FORMATS, widget=_date_box()
    )
    registered_to = forms.DateField(
        label=_("建档至"), required=False, input_formats=SEARCH_DATE_FORMATS, widget=_date_box()
    )
    visited_from = forms.DateField(
        label=_("就诊自"), required=False, input_formats=SEARCH_DATE_FORMATS, widget=_date_box()
    )
    visited_to = forms.DateField(
        label=_("就诊至"), required=False, input_formats=SEARCH_DATE_FORMATS, widget=_date_box()
    )
    mine = forms.BooleanField(label=_("我的患者"), required=False)
    recent = forms.BooleanField(label=_("最近打开"), required=False)
    sort = forms.ChoiceField(
        required=False,
        choices=[("", ""), *[(k, k) for k in SEARCH_SORTS], *[(f"-{k}", k) for k in SEARCH_SORTS]],
    )

    def __init__(
        self, *args: object, institutions: list[tuple[int, str]], **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        institution = self.fields["institution"]
        assert isinstance(institution, forms.ChoiceField)
        institution.choices = [("", _("全部机构")), *institutions]
        for name in ("age_min", "age_max"):
            self.fields[name].widget.attrs.update({"inputmode": "numeric", "style": "width:5em"})

    def cleaned(self, name: str) -> Any:
        """A field's value if it is valid, else None (a bad filter narrows nothing)."""
        data = getattr(self, "cleaned_data", {})
        return data.get(name) if name not in self.errors else None
