"""Every write to the records: validated, versioned (RecordVersion), audited, never hard-deleted."""

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, PermissionDeniedError
from clinical_shell.network.models import Department, Institution
from clinical_shell.records import coding, merge_moves
from clinical_shell.records.identity import (
    PhoneError,
    ResidentIdError,
    birth_date_of,
    normalize_phone,
    normalize_resident_id,
    pinyin_full,
    pinyin_initials,
    pinyin_sort_key,
    resident_id_digest,
    sex_of,
)
from clinical_shell.records.models import (
    AO_OTA_PATTERN,
    ICD9CM3_PATTERN,
    ICD10_PATTERN,
    Allergy,
    CareRelationship,
    Diagnosis,
    Document,
    DuplicateCandidate,
    Encounter,
    Laterality,
    MergeRequest,
    Patient,
    Problem,
    Procedure,
    RecordVersion,
)


class RecordValidationError(DomainError):
    """Field-level problems; `field_errors` maps field name to a message for inline display."""

    status = 422

    def __init__(self, field_errors: dict[str, str]) -> None:
        super().__init__("invalid_record", "; ".join(f"{k}: {v}" for k, v in field_errors.items()))
        self.field_errors = field_errors


def _snapshot(instance: models.Model) -> dict[str, Any]:
    data = model_to_dict(instance)
    return {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in data.items()}


def _write_version(instance: Any, *, actor: User | None, reason: str = "") -> None:
    RecordVersion.objects.create(
        model_label=instance._meta.label_lower,
        object_id=instance.pk,
        version=instance.version,
        snapshot=_snapshot(instance),
        changed_by_id=actor.pk if actor is not None else None,
        reason=reason[:300],
    )


def validate_demographics(
    *, name: str, sex: str, birth_date: date | None, resident_id: str, phone: str = ""
) -> dict[str, str]:
    """Every problem with a patient's identity at once, keyed by field; empty when all is well.

    A resident ID number is checked by GB 11643 (format, birth date, check character) and then
    against the sex and birth date given: the number encodes both. A phone number must be a
    mainland mobile or a landline with its area code (`identity.normalize_phone`).
    """
    errors: dict[str, str] = {}
    try:
        normalize_phone(phone)
    except PhoneError as exc:
        errors["phone"] = str(exc)
    if not name.strip():
        errors["name"] = _("姓名不能为空")
    if sex not in Patient.Sex.values:
        errors["sex"] = _("性别无效(须为 M、F 或 U)")
    if birth_date is None:
        errors["birth_date"] = _("请填写出生日期")
    elif birth_date > timezone.localdate():
        errors["birth_date"] = _("出生日期不能晚于今天")
    if resident_id.strip():
        try:
            normalized = normalize_resident_id(resident_id)
        except ResidentIdError as exc:
            errors["resident_id"] = str(exc)
        else:
            if birth_date is not None and birth_date_of(normalized) != birth_date:
                errors.setdefault("birth_date", _("出生日期与身份证号不符"))
            if sex in ("M", "F") and sex_of(normalized) != sex:
                errors.setdefault("sex", _("性别与身份证号不符"))
    return errors


@transaction.atomic
def register_patient(
    *,
    actor: User,
    institution: Institution,
    name: str,
    sex: str,
    birth_date: date,
    resident_id: str = "",
    phone: str = "",
    address: str = "",
) -> Patient:
    """Register a patient at `institution`; a possible duplicate goes to the review queue.

    Every field problem is reported at once (`validate_demographics`). The registration page
    shows possible duplicates (selectors.possible_duplicates) before it calls this.
    """
    name = name.strip()
    errors = validate_demographics(
        name=name, sex=sex, birth_date=birth_date, resident_id=resident_id, phone=phone
    )
    if errors:
        raise RecordValidationError(errors)
    normalized = normalize_resident_id(resident_id) if resident_id.strip() else ""
    patient = Patient.objects.create(
        resident_id=normalized,
        resident_id_digest=resident_id_digest(normalized) if normalized else "",
        resident_id_suffix=normalized[-6:],
        name=name,
        name_pinyin=pinyin_full(name),
        name_pinyin_initials=pinyin_initials(name),
        name_sort_key=pinyin_sort_key(name),
        sex=sex,
        birth_date=birth_date,
        phone=normalize_phone(phone),
        address=address,
        registered_at=institution,
    )
    CareRelationship.objects.create(
        patient=patient, institution=institution, kind=CareRelationship.Kind.REGISTRATION
    )
    _write_version(patient, actor=actor, reason="registered")
    duplicates = _flag_duplicates(patient)
    audit.record(
        actor=actor,
        action="patient.register",
        patient_id=patient.pk,
        target=patient,
        detail={"institution": institution.code, "possible_duplicates": duplicates},
    )
    return patient


def _flag_duplicates(patient: Patient) -> int:
    """Queue every live patient with the same ID digest, or same name + birth date + sex, or
    the same spelled pinyin + birth date + sex."""
    live = Patient.objects.filter(deleted_at__isnull=True, merged_into__isnull=True).exclude(
        pk=patient.pk
    )
    found: dict[int, str] = {}
    if patient.resident_id_digest:
        for pk in live.filter(resident_id_digest=patient.resident_id_digest).values_list(
            "pk", flat=True
        ):
            found[pk] = DuplicateCandidate.Reason.SAME_RESIDENT_ID
    same_people = live.filter(name=patient.name, birth_date=patient.birth_date, sex=patient.sex)
    for pk in same_people.values_list("pk", flat=True):
        found.setdefault(pk, DuplicateCandidate.Reason.SAME_DEMOGRAPHICS)
    same_sound = live.filter(
        name_pinyin=patient.name_pinyin, birth_date=patient.birth_date, sex=patient.sex
    )
    for pk in same_sound.values_list("pk", flat=True) if patient.name_pinyin else []:
        found.setdefault(pk, DuplicateCandidate.Reason.SAME_PINYIN)
    # a pair already queued (either way round, e.g. before a demographics change) stays as it is
    queued = DuplicateCandidate.objects.filter(
        models.Q(patient=patient, other_id__in=found)
        | models.Q(other=patient, patient_id__in=found)
    ).values_list("patient_id", "other_id")
    for first, second in queued:
        found.pop(second if first == patient.pk else first, None)
    DuplicateCandidate.objects.bulk_create(
        DuplicateCandidate(patient=patient, other_id=pk, reason=reason)
        for pk, reason in found.items()
    )
    return len(found)


@transaction.atomic
def update_patient(
    *,
    actor: User,
    patient: Patient,
    reason: str,
    phone: str | None = None,
    address: str | None = None,
    name: str | None = None,
    sex: str | None = None,
    birth_date: date | None = None,
    resident_id: str | None = None,
) -> Patient:
    """Change demographics (the fields given); a new version with `reason` keeps the old ones.

    Sex, birth date and resident ID are checked together as at registration; a changed ID
    number gets a new digest (search) and may show a new possible duplicate.
    """
    errors: dict[str, str] = {}
    if not reason.strip():
        errors["reason"] = _("修改须说明原因")
    new_name = name.strip() if name is not None and name.strip() else patient.name
    new_sex = sex if sex is not None else patient.sex
    new_birth = birth_date if birth_date is not None else patient.birth_date
    new_id = resident_id.strip().upper() if resident_id is not None else patient.resident_id
    errors.update(
        validate_demographics(
            name=new_name,
            sex=new_sex,
            birth_date=new_birth,
            resident_id=new_id,
            # a stored number from before the check is not refused when it is left as it was
            phone=phone if phone is not None and phone.strip() != patient.phone else "",
        )
    )
    if errors:
        raise RecordValidationError(errors)
    fields = ["version", "updated_at"]
    if phone is not None:
        # a number stored before numbers were checked stays as it is unless it is changed
        kept = phone.strip() == patient.phone
        patient.phone = patient.phone if kept else normalize_phone(phone)
        fields = [*fields, "phone"]
    if address is not None:
        patient.address, fields = address.strip(), [*fields, "address"]
    if new_name != patient.name:
        patient.name = new_name
        patient.name_pinyin = pinyin_full(patient.name)
        patient.name_pinyin_initials = pinyin_initials(patient.name)
        patient.name_sort_key = pinyin_sort_key(patient.name)
        fields = [*fields, "name", "name_pinyin", "name_pinyin_initials", "name_sort_key"]
    if new_sex != patient.sex:
        patient.sex, fields = new_sex, [*fields, "sex"]
    if new_birth != patient.birth_date:
        patient.birth_date, fields = new_birth, [*fields, "birth_date"]
    id_changed = new_id != patient.resident_id
    if id_changed:
        patient.resident_id = normalize_resident_id(new_id) if new_id else ""
        patient.resident_id_digest = (
            resident_id_digest(patient.resident_id) if patient.resident_id else ""
        )
        patient.resident_id_suffix = patient.resident_id[-6:]
        fields = [*fields, "resident_id", "resident_id_digest", "resident_id_suffix"]
    patient.version += 1
    patient.save(update_fields=fields)
    _write_version(patient, actor=actor, reason=reason)
    duplicates = _flag_duplicates(patient) if id_changed else 0
    audit.record(
        actor=actor,
        action="patient.update",
        patient_id=patient.pk,
        target=patient,
        reason=reason,
        detail={
            "fields": sorted(set(fields) - {"version", "updated_at"}),
            "possible_duplicates": duplicates,
        },
    )
    return patient


@dataclass(frozen=True)
class DiagnosisIn:
    icd10_code: str
    description: str
    ao_ota_code: str = ""
    primary: bool = False


@dataclass(frozen=True)
class ProcedureIn:
    icd9cm3_code: str
    description: str
    performed_at: datetime


@dataclass(frozen=True)
class EncounterIn:
    kind: str
    started_at: datetime
    chief_complaint: str
    notes: str = ""
    department_id: int | None = None
    diagnoses: list[DiagnosisIn] = field(default_factory=list)
    procedures: list[ProcedureIn] = field(default_factory=list)


def validate_encounter(data: EncounterIn) -> dict[str, str]:
    """Field errors keyed like the form (diagnoses.0.icd10_code); empty when all is well."""
    errors: dict[str, str] = {}
    if data.kind not in Encounter.Kind.values:
        errors["kind"] = _("就诊类型无效")
    if not data.chief_complaint.strip():
        errors["chief_complaint"] = _("主诉不能为空")
    if data.started_at > timezone.now():
        errors["started_at"] = _("就诊时间不能晚于现在")
    for i, dx in enumerate(data.diagnoses):
        if not ICD10_PATTERN.match(dx.icd10_code.strip().upper()):
            errors[f"diagnoses.{i}.icd10_code"] = _("ICD-10 编码格式错误(如 S72.0)")
        if dx.ao_ota_code and not AO_OTA_PATTERN.match(dx.ao_ota_code.strip().upper()):
            errors[f"diagnoses.{i}.ao_ota_code"] = _("AO/OTA 分型格式错误(如 31A2.1)")
        if not dx.description.strip():
            errors[f"diagnoses.{i}.description"] = _("诊断描述不能为空")
    for i, px in enumerate(data.procedures):
        if not ICD9CM3_PATTERN.match(px.icd9cm3_code.strip()):
            errors[f"procedures.{i}.icd9cm3_code"] = _("ICD-9-CM-3 编码格式错误(如 79.35)")
    return errors


@transaction.atomic
def record_encounter(
    *,
    actor: User,
    patient: Patient,
    institution: Institution,
    data: EncounterIn,
    attending_id: int | None = None,
) -> Encounter:
    """Record an encounter with its diagnoses and procedures; opens the care relationship."""
    errors = validate_encounter(data)
    if errors:
        raise RecordValidationError(errors)
    department = None
    if data.department_id is not None:
        department = Department.objects.filter(
            pk=data.department_id, institution=institution
        ).first()
        if department is None:
            raise RecordValidationError({"department_id": _("科室不属于该机构")})
    encounter = Encounter.objects.create(
        patient=patient,
        institution=institution,
        department=department,
        kind=data.kind,
        started_at=data.started_at,
        attending_id=attending_id,
        chief_complaint=data.chief_complaint.strip(),
        notes=data.notes,
    )
    # codes here are checked for their format only; one the code table lists is marked checked
    diagnoses = Diagnosis.objects.bulk_create(
        Diagnosis(
            encounter=encounter,
            icd10_code=dx.icd10_code.strip().upper(),
            code_system=Diagnosis.CodeSystem.ICD10
            if coding.lookup(coding.ICD10, dx.icd10_code) is not None
            else "",
            description=dx.description.strip(),
            ao_ota_code=dx.ao_ota_code.strip().upper(),
            primary=dx.primary,
        )
        for dx in data.diagnoses
    )
    Procedure.objects.bulk_create(
        Procedure(
            encounter=encounter,
            icd9cm3_code=px.icd9cm3_code.strip(),
            code_system=Procedure.CodeSystem.ICD9CM3
            if coding.lookup(coding.ICD9CM3, px.icd9cm3_code) is not None
            else "",
            description=px.description.strip(),
            performed_at=px.performed_at,
        )
        for px in data.procedures
    )
    CareRelationship.objects.get_or_create(
        patient=patient, institution=institution, kind=CareRelationship.Kind.ENCOUNTER
    )
    _write_version(encounter, actor=actor, reason="recorded")
    audit.record(
        actor=actor,
        action="encounter.create",
        patient_id=patient.pk,
        target=encounter,
        detail={"institution": institution.code, "diagnoses": len(diagnoses)},
    )
    return encounter


@transaction.atomic
def delete_encounter(*, actor: User, encounter: Encounter, reason: str) -> Encounter:
    """Soft delete: the row stays, marked with when and why; its history keeps every version."""
    if not reason.strip():
        raise RecordValidationError({"reason": _("删除须说明原因")})
    if encounter.deleted_at is not None:
        raise DomainError("already_deleted", _("该就诊记录已删除"))
    encounter.deleted_at = timezone.now()
    encounter.deleted_reason = reason.strip()[:300]
    encounter.version += 1
    encounter.save(update_fields=["deleted_at", "deleted_reason", "version", "updated_at"])
    _write_version(encounter, actor=actor, reason=reason)
    audit.record(
        actor=actor,
        action="encounter.delete",
        patient_id=encounter.patient_id,
        target=encounter,
        reason=reason,
    )
    return encounter


@transaction.atomic
def add_allergy(
    *, actor: User, patient: Patient, substance: str, severity: str, reaction: str = ""
) -> Allergy:
    if severity not in Allergy.Severity.values or not substance.strip():
        raise RecordValidationError({"severity": _("过敏信息不完整(须填写过敏物质和严重程度)")})
    allergy = Allergy.objects.create(
        patient=patient, substance=substance.strip(), severity=severity, reaction=reaction
    )
    _write_version(allergy, actor=actor, reason="recorded")
    audit.record(actor=actor, action="allergy.create", patient_id=patient.pk, target=allergy)
    return allergy


@transaction.atomic
def remove_allergy(*, actor: User, allergy: Allergy, reason: str) -> Allergy:
    """Soft delete an allergy entry (recorded in error, or disproved); its history stays."""
    _soft_delete(allergy, actor=actor, reason=reason)
    audit.record(
        actor=actor,
        action="allergy.delete",
        patient_id=allergy.patient_id,
        target=allergy,
        reason=reason,
    )
    return allergy


def _soft_delete(row: Any, *, actor: User, reason: str) -> None:
    """Mark a row deleted with when and why, as a new version; the caller audits."""
    if not reason.strip():
        raise RecordValidationError({"reason": _("删除须说明原因")})
    if row.deleted_at is not None:
        raise DomainError("already_deleted", _("该记录已删除"))
    row.deleted_at = timezone.now()
    row.deleted_reason = reason.strip()[:300]
    row.version += 1
    row.save(update_fields=["deleted_at", "deleted_reason", "version", "updated_at"])
    _write_version(row, actor=actor, reason=reason)


def _laterality_error(laterality: str) -> dict[str, str]:
    if laterality not in Laterality.values:
        return {"laterality": _("请选择侧别(左侧、右侧、双侧或不适用)")}
    return {}


@dataclass(frozen=True)
class CodedDiagnosisIn:
    """A diagnosis picked from the ICD-10 table; `description` defaults to the table's name."""

    code: str
    laterality: str
    description: str = ""
    ao_ota_code: str = ""
    primary: bool = False


@dataclass(frozen=True)
class CodedProcedureIn:
    """A procedure picked from the ICD-9-CM-3 table; `description` defaults to the table's name."""

    code: str
    laterality: str
    performed_at: datetime | None
    description: str = ""


def validate_coded_diagnosis(data: CodedDiagnosisIn) -> dict[str, str]:
    """Every problem at once, keyed by field: the code must be in the ICD-10 table (and the
    AO/OTA class, when given, in the AO/OTA table); laterality is always stated."""
    errors = _laterality_error(data.laterality)
    if not data.code.strip():
        errors["code"] = _("请填写诊断编码")
    elif coding.lookup(coding.ICD10, data.code) is None:
        errors["code"] = _("编码表中没有该 ICD-10 编码:%(code)s") % {"code": data.code.strip()}
    if data.ao_ota_code.strip() and coding.lookup(coding.AOOTA, data.ao_ota_code) is None:
        errors["ao_ota_code"] = _("编码表中没有该 AO/OTA 分型:%(code)s") % {
            "code": data.ao_ota_code.strip()
        }
    if len(data.description.strip()) > 200:
        errors["description"] = _("诊断描述不能超过200字")
    return errors


def validate_coded_procedure(data: CodedProcedureIn) -> dict[str, str]:
    """As `validate_coded_diagnosis`, against the ICD-9-CM-3 table; the time is required."""
    errors = _laterality_error(data.laterality)
    if not data.code.strip():
        errors["code"] = _("请填写手术操作编码")
    elif coding.lookup(coding.ICD9CM3, data.code) is None:
        errors["code"] = _("编码表中没有该 ICD-9-CM-3 编码(或只是类目):%(code)s") % {
            "code": data.code.strip()
        }
    if data.performed_at is None:
        errors["performed_at"] = _("请填写手术操作时间")
    elif data.performed_at > timezone.now():
        errors["performed_at"] = _("手术操作时间不能晚于现在")
    if len(data.description.strip()) > 200:
        errors["description"] = _("手术操作描述不能超过200字")
    return errors


@transaction.atomic
def add_diagnosis(*, actor: User, encounter: Encounter, data: CodedDiagnosisIn) -> Diagnosis:
    """Add a coded diagnosis to an encounter (several per encounter; one primary at most).

    The caller opened the encounter for writing (access_encounter(write=True)).
    """
    errors = validate_coded_diagnosis(data)
    if errors:
        raise RecordValidationError(errors)
    entry = coding.lookup(coding.ICD10, data.code)
    assert entry is not None  # validated above
    ao_entry = coding.lookup(coding.AOOTA, data.ao_ota_code) if data.ao_ota_code.strip() else None
    if data.primary:
        # a new primary diagnosis demotes the previous one, as a new version of it
        for previous in encounter.diagnoses.filter(primary=True, deleted_at__isnull=True):
            previous.primary = False
            previous.version += 1
            previous.save(update_fields=["primary", "version", "updated_at"])
            _write_version(previous, actor=actor, reason="primary moved")
    diagnosis = Diagnosis.objects.create(
        encounter=encounter,
        icd10_code=entry.code,
        code_system=Diagnosis.CodeSystem.ICD10,
        description=data.description.strip() or entry.name_zh,
        ao_ota_code=ao_entry.code if ao_entry is not None else "",
        laterality=data.laterality,
        primary=data.primary,
    )
    _write_version(diagnosis, actor=actor, reason="recorded")
    audit.record(
        actor=actor,
        action="diagnosis.create",
        patient_id=encounter.patient_id,
        target=diagnosis,
        detail={
            "encounter_id": encounter.pk,
            "code": diagnosis.icd10_code,
            "laterality": diagnosis.laterality,
        },
    )
    return diagnosis


@transaction.atomic
def remove_diagnosis(*, actor: User, diagnosis: Diagnosis, reason: str) -> Diagnosis:
    """Soft delete a diagnosis (recorded in error); its versions keep what it said."""
    _soft_delete(diagnosis, actor=actor, reason=reason)
    audit.record(
        actor=actor,
        action="diagnosis.delete",
        patient_id=diagnosis.encounter.patient_id,
        target=diagnosis,
        reason=reason,
        detail={"encounter_id": diagnosis.encounter_id, "code": diagnosis.icd10_code},
    )
    return diagnosis


@transaction.atomic
def add_procedure(
    *, actor: User, encounter: Encounter, data: CodedProcedureIn, surgeon_id: int | None = None
) -> Procedure:
    """Add a coded procedure to an encounter; the caller opened it for writing."""
    errors = validate_coded_procedure(data)
    if errors:
        raise RecordValidationError(errors)
    entry = coding.lookup(coding.ICD9CM3, data.code)
    assert entry is not None and data.performed_at is not None  # validated above
    procedure = Procedure.objects.create(
        encounter=encounter,
        icd9cm3_code=entry.code,
        code_system=Procedure.CodeSystem.ICD9CM3,
        description=data.description.strip() or entry.name_zh,
        laterality=data.laterality,
        performed_at=data.performed_at,
        surgeon_id=surgeon_id,
    )
    _write_version(procedure, actor=actor, reason="recorded")
    audit.record(
        actor=actor,
        action="procedure.create",
        patient_id=encounter.patient_id,
        target=procedure,
        detail={
            "encounter_id": encounter.pk,
            "code": procedure.icd9cm3_code,
            "laterality": procedure.laterality,
        },
    )
    return procedure


@transaction.atomic
def remove_procedure(*, actor: User, procedure: Procedure, reason: str) -> Procedure:
    """Soft delete a procedure (recorded in error); its versions keep what it said."""
    _soft_delete(procedure, actor=actor, reason=reason)
    audit.record(
        actor=actor,
        action="procedure.delete",
        patient_id=procedure.encounter.patient_id,
        target=procedure,
        reason=reason,
        detail={"encounter_id": procedure.encounter_id, "code": procedure.icd9cm3_code},
    )
    return procedure


def validate_problem(
    *, description: str, code: str, status: str, onset_date: date | None
) -> dict[str, str]:
    """Every problem of a problem-list entry at once; the ICD-10 code is optional."""
    errors: dict[str, str] = {}
    if not description.strip():
        errors["description"] = _("问题描述不能为空")
    if code.strip() and coding.lookup(coding.ICD10, code) is None:
        errors["code"] = _("编码表中没有该 ICD-10 编码:%(code)s") % {"code": code.strip()}
    if status not in Problem.Status.values:
        errors["status"] = _("状态无效")
    if onset_date is not None and onset_date > timezone.localdate():
        errors["onset_date"] = _("起病日期不能晚于今天")
    return errors


@transaction.atomic
def add_problem(
    *,
    actor: User,
    patient: Patient,
    description: str,
    code: str = "",
    status: str = Problem.Status.ACTIVE,
    onset_date: date | None = None,
) -> Problem:
    """Add an entry to the patient's problem list; the caller opened the patient for writing."""
    errors = validate_problem(
        description=description, code=code, status=status, onset_date=onset_date
    )
    if errors:
        raise RecordValidationError(errors)
    entry = coding.lookup(coding.ICD10, code) if code.strip() else None
    problem = Problem.objects.create(
        patient=patient,
        description=description.strip(),
        code=entry.code if entry is not None else "",
        status=status,
        onset_date=onset_date,
    )
    _write_version(problem, actor=actor, reason="recorded")
    audit.record(
        actor=actor,
        action="problem.create",
        patient_id=patient.pk,
        target=problem,
        detail={"code": problem.code, "status": problem.status},
    )
    return problem


@transaction.atomic
def set_problem_status(*, actor: User, problem: Problem, status: str, reason: str = "") -> Problem:
    """Mark a problem resolved (or active again), as a new version."""
    if status not in Problem.Status.values:
        raise RecordValidationError({"status": _("状态无效")})
    if problem.deleted_at is not None:
        raise DomainError("already_deleted", _("该记录已删除"))
    problem.status = status
    problem.version += 1
    problem.save(update_fields=["status", "version", "updated_at"])
    _write_version(problem, actor=actor, reason=reason or f"status {status}")
    audit.record(
        actor=actor,
        action="problem.update",
        patient_id=problem.patient_id,
        target=problem,
        reason=reason,
        detail={"status": status},
    )
    return problem


@transaction.atomic
def remove_problem(*, actor: User, problem: Problem, reason: str) -> Problem:
    """Soft delete a problem-list entry recorded in error."""
    _soft_delete(problem, actor=actor, reason=reason)
    audit.record(
        actor=actor,
        action="problem.delete",
        patient_id=problem.patient_id,
        target=problem,
        reason=reason,
    )
    return problem


@transaction.atomic
def add_document(
    *,
    actor: User,
    patient: Patient,
    title: str,
    kind: str,
    body: str,
    encounter: Encounter | None = None,
    institution: Institution | None = None,
) -> Document:
    """A document written at `institution` (an encounter's document: the encounter's own)."""
    if not title.strip():
        raise RecordValidationError({"title": _("文书标题不能为空")})
    if encounter is not None:
        institution = encounter.institution
    if institution is None:
        raise ValueError("a document needs the institution that writes it")
    document = Document.objects.create(
        patient=patient,
        encounter=encounter,
        institution=institution,
        title=title.strip(),
        kind=kind,
        body=body,
    )
    _write_version(document, actor=actor, reason="recorded")
    audit.record(actor=actor, action="document.create", patient_id=patient.pk, target=document)
    return document


@transaction.atomic
def open_care_relationship(
    *, actor: User, patient: Patient, institution: Institution, kind: str
) -> CareRelationship:
    """For other apps (referrals): an institution starts treating the patient."""
    relation, _created = CareRelationship.objects.get_or_create(
        patient=patient, institution=institution, kind=kind
    )
    audit.record(
        actor=actor,
        action="care.open",
        patient_id=patient.pk,
        target=relation,
        detail={"institution": institution.code, "kind": kind},
    )
    return relation


@transaction.atomic
def dismiss_duplicate(
    *, actor: User, candidate: DuplicateCandidate, reason: str = ""
) -> DuplicateCandidate:
    """Mark the pair as two different people; the caller opened both (access_duplicate)."""
    if candidate.status != DuplicateCandidate.Status.OPEN:
        raise DomainError("duplicate_closed", _("该疑似重复已处理"))
    candidate.status = DuplicateCandidate.Status.DISMISSED
    candidate.reviewed_by_id = actor.pk
    candidate.reviewed_at = timezone.now()
    candidate.save(update_fields=["status", "reviewed_by", "reviewed_at"])
    audit.record(
        actor=actor,
        action="patient.duplicate_dismiss",
        patient_id=candidate.patient_id,
        target=candidate,
        reason=reason,
        detail={"other_id": candidate.other_id},
    )
    return candidate


def _check_mergeable(survivor: Patient, merged: Patient, reason: str) -> None:
    if survivor.pk == merged.pk:
        raise DomainError("merge_self", _("不能与自身合并"))
    if merged.merged_into_id is not None or survivor.merged_into_id is not None:
        raise DomainError("already_merged", _("患者已被合并"))
    if not reason.strip():
        raise RecordValidationError({"reason": _("合并须说明原因")})


def _pending_request(candidate: DuplicateCandidate) -> MergeRequest | None:
    return (
        MergeRequest.objects.select_for_update()
        .filter(candidate=candidate, status=MergeRequest.Status.PENDING)
        .first()
    )


@transaction.atomic
def request_merge(
    *,
    actor: User,
    candidate: DuplicateCandidate,
    survivor: Patient,
    merged: Patient,
    reason: str,
) -> MergeRequest:
    """Ask for `merged` to be folded into `survivor`; nothing moves until another person
    approves (`approve_merge`). The caller opened the pair (access_duplicate)."""
    locked = DuplicateCandidate.objects.select_for_update().get(pk=candidate.pk)
    if locked.status != DuplicateCandidate.Status.OPEN:
        raise DomainError("duplicate_closed", _("该疑似重复已处理"))
    if {survivor.pk, merged.pk} != {locked.patient_id, locked.other_id}:
        raise DomainError("merge_not_this_pair", _("只能合并这对疑似重复中的两份档案"), status=422)
    _check_mergeable(survivor, merged, reason)
    if _pending_request(locked) is not None:
        raise DomainError("merge_pending", _("该疑似重复已有待批准的合并申请"))
    merge_request = MergeRequest.objects.create(
        candidate=locked,
        survivor=survivor,
        merged=merged,
        reason=reason.strip(),
        requested_by=actor,
    )
    audit.record(
        actor=actor,
        action="patient.merge_request",
        patient_id=survivor.pk,
        target=merge_request,
        reason=merge_request.reason,
        detail={"merged_id": merged.pk, "candidate_id": locked.pk},
    )
    return merge_request


def _refuse_requester(*, actor: User, merge_request: MergeRequest, action: str) -> None:
    """The requester may not decide their own request: refused, and the refusal audited.

    Runs before the decision's transaction, so the audit row of the refusal is kept.
    """
    if merge_request.requested_by_id != actor.pk:
        return
    audit.record(
        actor=actor,
        action=action,
        success=False,
        patient_id=merge_request.survivor_id,
        target=merge_request,
        detail={"refused": "second_person_required"},
    )
    raise PermissionDeniedError("second_person_required", _("合并须由申请人以外的另一位审核人批准"))


def _decide(*, actor: User, merge_request: MergeRequest) -> MergeRequest:
    """The pending request, locked, when `actor` may decide it (not its requester)."""
    locked = MergeRequest.objects.select_for_update().get(pk=merge_request.pk)
    if locked.status != MergeRequest.Status.PENDING:
        raise DomainError("merge_request_decided", _("该合并申请已处理"))
    if locked.requested_by_id == actor.pk:  # (checked before; the row is now locked)
        raise PermissionDeniedError(
            "second_person_required", _("合并须由申请人以外的另一位审核人批准")
        )
    return locked


def approve_merge(*, actor: User, merge_request: MergeRequest, note: str = "") -> Patient:
    """A second person approves: the merge runs now, in one transaction. The caller opened
    the pair (access_duplicate) as `actor`."""
    _refuse_requester(actor=actor, merge_request=merge_request, action="patient.merge_approve")
    return _approve_merge(actor=actor, merge_request=merge_request, note=note)


@transaction.atomic
def _approve_merge(*, actor: User, merge_request: MergeRequest, note: str) -> Patient:
    locked = _decide(actor=actor, merge_request=merge_request)
    locked.status = MergeRequest.Status.APPROVED
    locked.decided_by = actor
    locked.decided_at = timezone.now()
    locked.decision_note = note.strip()
    locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit.record(
        actor=actor,
        action="patient.merge_approve",
        patient_id=locked.survivor_id,
        target=locked,
        reason=locked.decision_note,
        detail={"requested_by": locked.requested_by_id, "merged_id": locked.merged_id},
    )
    survivor = _merge_patients(
        actor=actor,
        survivor=Patient.objects.select_for_update().get(pk=locked.survivor_id),
        merged=Patient.objects.select_for_update().get(pk=locked.merged_id),
        reason=locked.reason,
        requested_by=locked.requested_by,
    )
    _tell_requester(locked, approved=True)
    return survivor


def reject_merge(*, actor: User, merge_request: MergeRequest, note: str) -> MergeRequest:
    """A second person refuses: nothing moves; the pair stays open for another decision."""
    _refuse_requester(actor=actor, merge_request=merge_request, action="patient.merge_reject")
    if not note.strip():
        raise RecordValidationError({"note": _("驳回须说明原因")})
    return _reject_merge(actor=actor, merge_request=merge_request, note=note)


@transaction.atomic
def _reject_merge(*, actor: User, merge_request: MergeRequest, note: str) -> MergeRequest:
    locked = _decide(actor=actor, merge_request=merge_request)
    locked.status = MergeRequest.Status.REJECTED
    locked.decided_by = actor
    locked.decided_at = timezone.now()
    locked.decision_note = note.strip()
    locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit.record(
        actor=actor,
        action="patient.merge_reject",
        patient_id=locked.survivor_id,
        target=locked,
        reason=locked.decision_note,
        detail={"requested_by": locked.requested_by_id, "merged_id": locked.merged_id},
    )
    _tell_requester(locked, approved=False)
    return locked


def _tell_requester(merge_request: MergeRequest, *, approved: bool) -> None:
    # no patient name in the notice (it may go out by e-mail): the pair's number and a link
    from clinical_shell.notifications.services import notify

    title = (
        format_lazy(gettext_lazy("合并申请已批准：疑似重复 #{}"), merge_request.candidate_id)
        if approved
        else format_lazy(gettext_lazy("合并申请被驳回：疑似重复 #{}"), merge_request.candidate_id)
    )
    requester = merge_request.requested_by
    url = reverse("records:duplicate_review", args=[merge_request.candidate_id])
    transaction.on_commit(
        lambda: notify([requester], title=title, url=url, kind="records.merge_request")
    )


def _merge_patients(
    *, actor: User, survivor: Patient, merged: Patient, reason: str, requested_by: User
) -> Patient:
    """Fold `merged` into `survivor`: records move over; its row stays (merged_into) as history.

    Only through `approve_merge`: the caller holds the transaction and the request's lock.
    """
    _check_mergeable(survivor, merged, reason)
    # every app's rows of this patient's care: visits, studies, cases, plans, referrals, ...
    moved = merge_moves.move_everything(merged, survivor)
    existing = set(
        CareRelationship.objects.filter(patient=survivor).values_list("institution_id", "kind")
    )
    CareRelationship.objects.bulk_create(
        CareRelationship(patient=survivor, institution_id=inst, kind=kind)
        for inst, kind in CareRelationship.objects.filter(patient=merged).values_list(
            "institution_id", "kind"
        )
        if (inst, kind) not in existing
    )
    if not survivor.resident_id and merged.resident_id:
        survivor.resident_id = merged.resident_id
        survivor.resident_id_digest = merged.resident_id_digest
        survivor.resident_id_suffix = merged.resident_id[-6:]
    survivor.version += 1
    survivor.save(
        update_fields=[
            "resident_id",
            "resident_id_digest",
            "resident_id_suffix",
            "version",
            "updated_at",
        ]
    )
    merged.merged_into = survivor
    merged.version += 1
    merged.save(update_fields=["merged_into", "version", "updated_at"])
    _write_version(survivor, actor=actor, reason=f"merge survivor: {reason}")
    _write_version(merged, actor=actor, reason=f"merged into {survivor.pk}: {reason}")
    DuplicateCandidate.objects.filter(
        models.Q(patient=merged, other=survivor) | models.Q(patient=survivor, other=merged),
        status=DuplicateCandidate.Status.OPEN,
    ).update(
        status=DuplicateCandidate.Status.MERGED, reviewed_by_id=actor.pk, reviewed_at=timezone.now()
    )
    audit.record(
        actor=actor,
        action="patient.merge",
        patient_id=survivor.pk,
        target=merged,
        reason=reason,
        detail={"merged_id": merged.pk, "requested_by": requested_by.pk, "moved": moved},
    )
    return survivor


def run_model_validation(instance: models.Model) -> None:
    """full_clean with DomainError, for callers that build model rows directly."""
    try:
        instance.full_clean()
    except ValidationError as exc:
        raise RecordValidationError(
            {k: "; ".join(v) for k, v in exc.message_dict.items()}
        ) from None
