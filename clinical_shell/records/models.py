"""Regional patient index and clinical records.

Nothing here is hard-deleted: rows carry `deleted_at`/`deleted_reason`, and every change writes a
`RecordVersion` snapshot (see services). Merged patients point at the survivor via `merged_into`.
"""

import re
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Right, Substr
from django.utils.translation import gettext_lazy as _

from clinical_shell.network.models import Department, Institution, Person
from clinical_shell.records.identity import mask_resident_id

ICD10_PATTERN = re.compile(r"^[A-Z]\d{2}(\.\d{1,4}[A-Z]?)?$")
ICD9CM3_PATTERN = re.compile(r"^\d{2}(\.\d{1,2})?$")
# AO/OTA 2018: bone+segment (e.g. 31, 42, 2R3, 44), type A-C, group 1-3, optional subgroup
AO_OTA_PATTERN = re.compile(r"^[1-9](?:[1-9]|[RUL][1-3]|[1-9][RUL]?)?-?[ABC][1-3](?:\.[1-3])?$")


class SoftDeletable(models.Model):
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_reason = models.CharField(max_length=300, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Patient(SoftDeletable):
    class Sex(models.TextChoices):
        MALE = "M", _("男")
        FEMALE = "F", _("女")
        UNKNOWN = "U", _("未知")

    # the full number, needed on the detail page and for merges; lists show `masked_resident_id`
    resident_id = models.CharField(max_length=18, blank=True)
    resident_id_digest = models.CharField(max_length=64, blank=True, db_index=True)
    # the last six characters of `resident_id` (blank without one): search by the last 4-6, as a
    # clerk reads them off a card; indexed whole and by its last 4 and 5 (see Meta). A database
    # default keeps bulk loads that predate it (COPY in benchmarks/) working
    resident_id_suffix = models.CharField(max_length=6, blank=True, db_default="", db_index=True)
    name = models.CharField(max_length=64)
    name_pinyin = models.CharField(max_length=256)
    name_pinyin_initials = models.CharField(max_length=64)
    # identity.pinyin_sort_key(name): lists order by it (汉语拼音 order, any DB collation). Not
    # indexed on purpose: lists are scoped to an institution's patients and sorted after that
    # filter; an index would tempt the planner into an ordered scan that filters every row.
    name_sort_key = models.CharField(max_length=512)
    sex = models.CharField(max_length=1, choices=Sex.choices)
    birth_date = models.DateField()
    phone = models.CharField(max_length=32, blank=True)
    address = models.CharField(max_length=200, blank=True)
    registered_at = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_from"
    )

    class Meta:
        indexes: ClassVar = [
            # text_pattern_ops lets PostgreSQL use the btree for LIKE 'prefix%' in any collation
            models.Index(
                fields=["name"], name="patient_name_prefix", opclasses=["text_pattern_ops"]
            ),
            models.Index(
                fields=["name_pinyin_initials"],
                name="patient_initials_prefix",
                opclasses=["text_pattern_ops"],
            ),
            models.Index(
                fields=["name_pinyin"], name="patient_pinyin_prefix", opclasses=["text_pattern_ops"]
            ),
            # birth date first: an index leading with name would offer the planner a name-ordered
            # scan for ORDER BY name LIMIT n, which it takes and then filters all rows (seconds)
            models.Index(fields=["birth_date", "sex", "name"], name="patient_demographics"),
            # search by the last 4 or 5 characters of the resident ID (equality on RIGHT(...))
            models.Index(Right("resident_id_suffix", 4), name="patient_id_last4"),
            models.Index(Right("resident_id_suffix", 5), name="patient_id_last5"),
            # search by the whole given name (the name without its one-character surname): 三丰
            # finds 张三丰 by equality on SUBSTRING(name, 2)
            models.Index(Substr("name", 2), name="patient_given_name"),
            # registration-date filter (the day the row was created)
            models.Index(fields=["created_at"], name="patient_registered_on"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.masked_resident_id})"

    @property
    def masked_resident_id(self) -> str:
        return mask_resident_id(self.resident_id) if self.resident_id else ""


class CareRelationship(models.Model):
    """An institution treats (or has treated) the patient: the basis of clinical access."""

    class Kind(models.TextChoices):
        REGISTRATION = "registration", _("建档")
        ENCOUNTER = "encounter", _("就诊")
        REFERRAL = "referral", _("转诊")

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, related_name="care_relationships"
    )
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["patient", "institution", "kind"], name="care_relationship_unique"
            )
        ]
        indexes: ClassVar = [
            models.Index(fields=["institution", "patient"], name="care_inst_patient")
        ]


class Encounter(SoftDeletable):
    class Kind(models.TextChoices):
        OUTPATIENT = "outpatient", _("门诊")
        INPATIENT = "inpatient", _("住院")
        EMERGENCY = "emergency", _("急诊")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="encounters")
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    started_at = models.DateTimeField()
    attending = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    chief_complaint = models.CharField(max_length=300)
    notes = models.TextField(blank=True)

    class Meta:
        indexes: ClassVar = [
            models.Index(fields=["patient", "started_at"], name="encounter_timeline"),
            # patient search: "seen between these days" (selectors.SearchFilters.visited_*)
            models.Index(fields=["started_at"], name="encounter_started"),
        ]


class Laterality(models.TextChoices):
    """Which side a diagnosis or procedure concerns; blank on rows recorded before it was asked."""

    LEFT = "left", _("左侧")
    RIGHT = "right", _("右侧")
    BILATERAL = "bilateral", _("双侧")
    NOT_APPLICABLE = "na", _("不适用")


class Diagnosis(SoftDeletable):
    """A diagnosis of an encounter. `code_system` names the code table (assets/codes) the code was
    checked against; blank when only its format was checked (the quick encounter form, imports)."""

    class CodeSystem(models.TextChoices):
        ICD10 = "icd10", "ICD-10"

    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, related_name="diagnoses")
    icd10_code = models.CharField(max_length=10)
    code_system = models.CharField(max_length=16, choices=CodeSystem.choices, blank=True)
    description = models.CharField(max_length=200)
    ao_ota_code = models.CharField(max_length=16, blank=True)
    laterality = models.CharField(max_length=16, choices=Laterality.choices, blank=True)
    primary = models.BooleanField(default=False)

    @property
    def code(self) -> str:
        return self.icd10_code

    def clean(self) -> None:
        errors = {}
        if not ICD10_PATTERN.match(self.icd10_code):
            errors["icd10_code"] = _("ICD-10 编码格式错误(如 S72.0)")
        if self.ao_ota_code and not AO_OTA_PATTERN.match(self.ao_ota_code):
            errors["ao_ota_code"] = _("AO/OTA 分型格式错误(如 31A2.1)")
        if errors:
            raise ValidationError(errors)


class Procedure(SoftDeletable):
    """A procedure of an encounter; `code_system` as on Diagnosis."""

    class CodeSystem(models.TextChoices):
        ICD9CM3 = "icd9cm3", "ICD-9-CM-3"

    encounter = models.ForeignKey(Encounter, on_delete=models.PROTECT, related_name="procedures")
    icd9cm3_code = models.CharField(max_length=8)
    code_system = models.CharField(max_length=16, choices=CodeSystem.choices, blank=True)
    description = models.CharField(max_length=200)
    laterality = models.CharField(max_length=16, choices=Laterality.choices, blank=True)
    performed_at = models.DateTimeField()
    surgeon = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    def clean(self) -> None:
        if not ICD9CM3_PATTERN.match(self.icd9cm3_code):
            raise ValidationError({"icd9cm3_code": _("ICD-9-CM-3 编码格式错误(如 79.35)")})

    @property
    def code(self) -> str:
        return self.icd9cm3_code


class Allergy(SoftDeletable):
    class Severity(models.TextChoices):
        MILD = "mild", _("轻度")
        MODERATE = "moderate", _("中度")
        SEVERE = "severe", _("重度")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="allergies")
    substance = models.CharField(max_length=100)
    reaction = models.CharField(max_length=200, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices)


class Problem(SoftDeletable):
    """The patient's problem list: lasting conditions, across encounters and institutions."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("活动")
        RESOLVED = "resolved", _("已解决")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="problems")
    description = models.CharField(max_length=200)
    # optional ICD-10 code, checked against assets/codes/icd10.csv when given
    code = models.CharField(max_length=10, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    onset_date = models.DateField(null=True, blank=True)


class Document(SoftDeletable):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="documents")
    encounter = models.ForeignKey(
        Encounter, null=True, blank=True, on_delete=models.PROTECT, related_name="documents"
    )
    # where it was written: who reads it without a share (records.access.RecordScope)
    institution = models.ForeignKey(
        Institution, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, help_text="e.g. discharge_summary, operative_note")
    body = models.TextField(blank=True)
    author = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )


class RecordVersion(models.Model):
    """A snapshot of a record after each change: the history that replaces in-place edits."""

    model_label = models.CharField(max_length=64)
    object_id = models.BigIntegerField()
    version = models.PositiveIntegerField()
    snapshot = models.JSONField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["model_label", "object_id", "version"], name="record_version_unique"
            )
        ]


class DuplicateCandidate(models.Model):
    """Two patient rows that may be the same person, waiting for a person to decide."""

    class Reason(models.TextChoices):
        SAME_RESIDENT_ID = "same_resident_id", _("身份证号相同")
        SAME_DEMOGRAPHICS = "same_demographics", _("姓名、出生日期、性别相同")
        # 张伟 / 章伟: the same spoken name typed with another character
        SAME_PINYIN = "same_pinyin", _("拼音、出生日期、性别相同")

    class Status(models.TextChoices):
        OPEN = "open", _("待审核")
        MERGED = "merged", _("已合并")
        DISMISSED = "dismissed", _("非重复")

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    other = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=32, choices=Reason.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["patient", "other"], name="duplicate_pair_unique")
        ]


class MergeRequest(models.Model):
    """One reviewer asks to merge a duplicate pair; a second, different person decides.

    Separation of duties (等保 2.0: no one person both proposes and carries out a change to a
    patient's identity): the merge runs only when someone other than the requester approves it,
    enforced by the service and, as a last line, by a database constraint.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("待批准")
        APPROVED = "approved", _("已批准")
        REJECTED = "rejected", _("已驳回")

    candidate = models.ForeignKey(
        DuplicateCandidate, on_delete=models.PROTECT, related_name="merge_requests"
    )
    survivor = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    merged = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["candidate"],
                condition=models.Q(status="pending"),
                name="merge_request_one_pending",
            ),
            models.CheckConstraint(
                condition=~models.Q(decided_by=models.F("requested_by")),
                name="merge_request_decided_by_another",
            ),
        ]
