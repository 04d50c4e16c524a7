"""Teleconsultation and MDT meetings (远程会诊与多学科讨论).

The inviting institution owns the patient and the decision; the invited expert reads exactly the
records attached to the request while the consultation is open, and answers with an opinion report
signed like the credentialing chair's decision (HMAC over a canonical JSON payload). An MDT meeting
discusses one or more patients; each patient's decision is signed by the chair.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinical_shell.network.models import Institution
from clinical_shell.records.models import Patient

__all__ = [
    "ConsultAttachment",
    "ConsultPriority",
    "ConsultState",
    "ConsultTimeLimit",
    "Consultation",
    "ExpertSlot",
    "MdtCase",
    "MdtMeeting",
    "OpinionReport",
    "Specialty",
]


class Specialty(models.TextChoices):
    ORTHOPEDICS = "orthopedics", _("骨科")
    SPINE = "spine", _("脊柱外科")
    RADIOLOGY = "radiology", _("影像科")
    REHABILITATION = "rehabilitation", _("康复医学科")
    ANESTHESIA = "anesthesia", _("麻醉科")
    GERIATRICS = "geriatrics", _("老年医学科")
    ONCOLOGY = "oncology", _("肿瘤科")


class ConsultPriority(models.TextChoices):
    ROUTINE = "routine", _("常规会诊")
    EMERGENCY = "emergency", _("急会诊")


class ConsultState(models.TextChoices):
    REQUESTED = "requested", _("待答复")
    ANSWERED = "answered", _("已出具意见")
    CLOSED = "closed", _("已结束")
    CANCELLED = "cancelled", _("已取消")


class ConsultTimeLimit(models.Model):
    """How long the invited side has to answer, per priority (editable rule data)."""

    priority = models.CharField(max_length=16, choices=ConsultPriority.choices, unique=True)
    answer_within_minutes = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.priority}: {self.answer_within_minutes} min"


class ExpertSlot(models.Model):
    """A time an expert offers for consultations; a request books one."""

    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    specialty = models.CharField(max_length=24, choices=Specialty.choices)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        ordering = ("starts_at", "id")
        indexes: ClassVar = [models.Index(fields=["specialty", "starts_at"], name="slot_spec")]


class Consultation(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    requesting_institution = models.ForeignKey(
        Institution, on_delete=models.PROTECT, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    priority = models.CharField(
        max_length=16, choices=ConsultPriority.choices, default=ConsultPriority.ROUTINE
    )
    state = models.CharField(
        max_length=16, choices=ConsultState.choices, default=ConsultState.REQUESTED
    )
    specialty = models.CharField(max_length=24, choices=Specialty.choices)
    # a named expert (with the slot booked), or any expert of the specialty who takes it
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    slot = models.OneToOneField(
        ExpertSlot, null=True, blank=True, on_delete=models.PROTECT, related_name="booking"
    )
    question = models.TextField(max_length=2000)
    history = models.TextField(max_length=4000)
    findings = models.TextField(max_length=4000)
    diagnosis_treatment = models.TextField(max_length=4000)
    # the signed informed-consent record
    consent_by = models.CharField(max_length=64)
    consent_relationship = models.CharField(max_length=32)
    consent_at = models.DateTimeField()
    consent_signature = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    answer_due_at = models.DateTimeField(db_index=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"consultation {self.pk} ({self.priority}, {self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in (ConsultState.REQUESTED, ConsultState.ANSWERED)


class ConsultAttachment(models.Model):
    """A record of the patient attached to a consultation or to an MDT case."""

    class Kind(models.TextChoices):
        DOCUMENT = "document", _("文书")
        STUDY = "study", _("影像检查")

    consultation = models.ForeignKey(
        Consultation, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    mdt_case = models.ForeignKey(
        "MdtCase", null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    object_id = models.BigIntegerField()


class OpinionReport(models.Model):
    """The invited expert's signed opinion (诊断意见报告)."""

    consultation = models.OneToOneField(
        Consultation, on_delete=models.PROTECT, related_name="opinion"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opinion = models.TextField(max_length=8000)
    recommendations = models.TextField(max_length=4000)
    recommend_up_referral = models.BooleanField(default=False)
    # the canonical JSON that was signed, and its signature (hex)
    payload = models.TextField()
    signature = models.CharField(max_length=128)
    signed_at = models.DateTimeField()


class MdtMeeting(models.Model):
    title = models.CharField(max_length=200)
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    chair = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    scheduled_at = models.DateTimeField()
    specialties = models.JSONField(default=list)
    participants = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+")
    minutes = models.TextField(blank=True, max_length=20000)
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-scheduled_at", "-id")

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


class MdtCase(models.Model):
    """One patient discussed at a meeting, and the decision the chair signs for them."""

    meeting = models.ForeignKey(MdtMeeting, on_delete=models.CASCADE, related_name="cases")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    summary = models.TextField(max_length=4000)
    decision = models.TextField(blank=True, max_length=4000)
    payload = models.TextField(blank=True)
    signature = models.CharField(max_length=128, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["meeting", "patient"], name="mdt_case_unique")
        ]
