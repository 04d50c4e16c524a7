"""Restricted techniques, surgical grades, institution licences, requirements, applications,
committee votes, signed decisions and the privileges they grant.

The catalog (techniques, grades) and the rules (requirements, committees) are rows, not code:
provinces and hospitals tighten the national rules and the national lists get revised.
"""

from datetime import date
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from clinical_shell.network.models import Institution


class Technique(models.Model):
    """A technology on the restricted list (national 2022 edition or a provincial addition)."""

    class Category(models.TextChoices):
        PROHIBITED = "prohibited", _("禁止类")
        RESTRICTED_NATIONAL = "restricted_national", _("国家限制类")
        RESTRICTED_PROVINCIAL = "restricted_provincial", _("省级限制类")
        HOSPITAL_MANAGED = "hospital_managed", _("医院自我管理")

    code = models.SlugField(max_length=48, unique=True)
    name = models.CharField(max_length=128)
    name_en = models.CharField(max_length=160, blank=True)
    category = models.CharField(max_length=24, choices=Category.choices)
    orthopedic = models.BooleanField(default=False)
    # where the item comes from and how sure the domain sheet is about it
    source = models.CharField(max_length=300, blank=True)
    version = models.CharField(max_length=32, blank=True)
    effective_from = models.DateField(null=True, blank=True)
    verified = models.BooleanField(default=False)
    active = models.BooleanField(default=True)

    class Meta:
        ordering: ClassVar = ["-orthopedic", "code"]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.name_en and (get_language() or "").startswith("en"):
            return self.name_en
        return self.name


class SurgicalGrade(models.Model):
    """Grade 1-4 of the 2022 surgical grading rules (手术分级管理办法)."""

    level = models.PositiveSmallIntegerField(unique=True)
    name = models.CharField(max_length=32)
    name_en = models.CharField(max_length=64, blank=True)
    definition = models.CharField(max_length=300)
    definition_en = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering: ClassVar = ["level"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(level__gte=1, level__lte=4), name="surgical_grade_1_to_4"
            )
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.name_en and (get_language() or "").startswith("en"):
            return self.name_en
        return self.name

    @property
    def display_definition(self) -> str:
        if self.definition_en and (get_language() or "").startswith("en"):
            return self.definition_en
        return self.definition


class InstitutionLicence(models.Model):
    """What an institution may do: its hospital grade and the highest surgical grade it filed."""

    institution = models.OneToOneField(
        Institution, on_delete=models.PROTECT, related_name="surgical_licence"
    )
    # 1, 2, 3: 一级, 二级, 三级 hospital (the level of the hospital grading system)
    hospital_grade = models.PositiveSmallIntegerField()
    max_surgical_grade = models.PositiveSmallIntegerField()
    note = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(max_surgical_grade__gte=1, max_surgical_grade__lte=4),
                name="licence_grade_1_to_4",
            ),
            models.CheckConstraint(
                condition=models.Q(hospital_grade__gte=1, hospital_grade__lte=3),
                name="licence_hospital_grade_1_to_3",
            ),
        ]


class TechniqueFiling(models.Model):
    """An institution's filing (备案) of a restricted technique (Order No. 1, art. 11)."""

    class Status(models.TextChoices):
        FILED = "filed", _("已备案")
        SUSPENDED = "suspended", _("已暂停")

    institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="technique_filings"
    )
    technique = models.ForeignKey(Technique, on_delete=models.PROTECT, related_name="filings")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.FILED)
    filed_on = models.DateField()
    # the technology lead: a physician registered at this institution
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["institution", "technique"], name="technique_filing_unique"
            )
        ]


class PracticeRecord(models.Model):
    """What credentialing needs to know about a surgeon that the network does not hold."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="practice_record"
    )
    practising_since = models.DateField()
    # the direct supervisor: may not vote on this surgeon's applications
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    def years_of_practice(self, on: date) -> int:
        years = on.year - self.practising_since.year
        if (on.month, on.day) < (self.practising_since.month, self.practising_since.day):
            years -= 1
        return max(years, 0)


class Requirement(models.Model):
    """What a privilege (a technique, or a surgical grade) requires before the committee votes."""

    technique = models.ForeignKey(
        Technique, null=True, blank=True, on_delete=models.PROTECT, related_name="requirements"
    )
    grade = models.PositiveSmallIntegerField(null=True, blank=True)
    min_years_practice = models.PositiveSmallIntegerField(default=0)
    # 1, 2, 3 (一级 .. 三级); 0: any
    min_hospital_grade = models.PositiveSmallIntegerField(default=0)
    committee_approval = models.BooleanField(default=True)
    # a granted privilege lasts this long (then re-credentialing)
    validity_days = models.PositiveIntegerField(default=730)
    source = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=(
                    models.Q(technique__isnull=False, grade__isnull=True)
                    | models.Q(technique__isnull=True, grade__gte=1, grade__lte=4)
                ),
                name="requirement_technique_xor_grade",
            )
        ]

    def __str__(self) -> str:
        if self.technique_id is not None:
            return str(self.technique)
        return str(_("%(grade)s级手术") % {"grade": self.grade})


class ModuleRequirement(models.Model):
    """So many verified passes of a training module, with a minimum score, within so many days."""

    requirement = models.ForeignKey(
        Requirement, on_delete=models.CASCADE, related_name="module_requirements"
    )
    module = models.ForeignKey(
        "training.Module", on_delete=models.PROTECT, related_name="credentialing_requirements"
    )
    passes = models.PositiveSmallIntegerField(default=1)
    min_score = models.FloatField()
    within_days = models.PositiveIntegerField(default=365)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["requirement", "module"], name="module_requirement_unique"
            )
        ]


class Committee(models.Model):
    """The credentialing committee of an institution and its voting rules."""

    institution = models.OneToOneField(
        Institution, on_delete=models.PROTECT, related_name="credentialing_committee"
    )
    chair = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # votes needed before a decision may be taken
    quorum = models.PositiveSmallIntegerField(default=3)
    # approvals must be more than this share of the votes cast (50: a simple majority)
    majority_percent = models.PositiveSmallIntegerField(default=50)

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(quorum__gte=1, majority_percent__lt=100),
                name="committee_rules_sane",
            )
        ]


class Application(models.Model):
    class Status(models.TextChoices):
        UNDER_REVIEW = "under_review", _("审核中")
        GRANTED = "granted", _("已批准")
        REFUSED = "refused", _("未批准")
        WITHDRAWN = "withdrawn", _("已撤回")

    applicant = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requirement = models.ForeignKey(
        Requirement, on_delete=models.PROTECT, related_name="applications"
    )
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UNDER_REVIEW)
    # the automatic check when it was submitted (what the committee saw first)
    eligibility = models.JSONField(default=dict)
    statement = models.TextField(blank=True)
    submitted_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar = ["-submitted_at", "-id"]
        constraints: ClassVar = [
            # one open application per surgeon, privilege and institution
            models.UniqueConstraint(
                fields=["applicant", "requirement", "institution"],
                condition=models.Q(status="under_review"),
                name="application_one_open",
            )
        ]

    def __str__(self) -> str:
        return f"application {self.pk}"


class Vote(models.Model):
    application = models.ForeignKey(Application, on_delete=models.PROTECT, related_name="votes")
    member = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approve = models.BooleanField()
    comment = models.TextField(blank=True)
    cast_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["cast_at", "id"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["application", "member"], name="vote_one_per_member")
        ]


class Decision(models.Model):
    """The committee's decision, signed by the chair (HMAC-SHA256 with the server's key)."""

    application = models.OneToOneField(
        Application, on_delete=models.PROTECT, related_name="decision"
    )
    granted = models.BooleanField()
    chair = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approvals = models.PositiveSmallIntegerField()
    refusals = models.PositiveSmallIntegerField()
    note = models.TextField(blank=True)
    # the canonical JSON that was signed, and its signature (hex)
    payload = models.TextField()
    signature = models.CharField(max_length=128)
    decided_at = models.DateTimeField()


class Privilege(models.Model):
    """A surgeon's authorisation for a technique or up to a surgical grade at one institution."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("有效")
        SUSPENDED = "suspended", _("已暂停")
        REVOKED = "revoked", _("已撤销")

    surgeon = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    technique = models.ForeignKey(
        Technique, null=True, blank=True, on_delete=models.PROTECT, related_name="privileges"
    )
    grade = models.PositiveSmallIntegerField(null=True, blank=True)
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    valid_from = models.DateField()
    valid_until = models.DateField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(max_length=500, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    application = models.OneToOneField(
        Application, null=True, blank=True, on_delete=models.PROTECT, related_name="privilege"
    )
    granted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["-valid_from", "-id"]
        indexes: ClassVar = [
            models.Index(fields=["surgeon", "institution", "status"], name="privilege_lookup")
        ]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=(
                    models.Q(technique__isnull=False, grade__isnull=True)
                    | models.Q(technique__isnull=True, grade__gte=1, grade__lte=4)
                ),
                name="privilege_technique_xor_grade",
            ),
            models.CheckConstraint(
                condition=models.Q(valid_until__gte=models.F("valid_from")),
                name="privilege_dates_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"privilege {self.pk}"

    @property
    def scope_display(self) -> str:
        if self.technique_id is not None and self.technique is not None:
            return self.technique.display_name
        return str(_("%(grade)s级手术") % {"grade": self.grade})
