"""Radiology reports on imaging studies, and the history of every signed version.

One report per study. States: draft -> preliminary (optional: a first read shared before the
final one) -> signed; a signed report changed later becomes amended, and each signature and
amendment is kept as an `ImagingReportVersion` (what it said, who signed it, when, and why it
was amended). `version` is the optimistic lock: every change bumps it, and a change made from
a stale copy is refused (409).
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinical_shell.network.models import Institution

# the structured sections of a report, in the order a report reads
REPORT_FIELDS = ("technique", "findings", "impression", "recommendation")


class Urgency(models.TextChoices):
    ROUTINE = "routine", _("常规")
    URGENT = "urgent", _("加急")
    EMERGENCY = "emergency", _("急诊")


# work-list order: the most urgent first
URGENCY_RANK = {Urgency.EMERGENCY: 0, Urgency.URGENT: 1, Urgency.ROUTINE: 2}


class ImagingReport(models.Model):
    class State(models.TextChoices):
        DRAFT = "draft", _("草稿")
        PRELIMINARY = "preliminary", _("初步报告")
        SIGNED = "signed", _("已签发")
        AMENDED = "amended", _("已修正")

    study = models.OneToOneField(
        "imaging.Study", on_delete=models.PROTECT, related_name="imaging_report"
    )
    # the reporting institution: the one that uploaded the study (where its radiologists report)
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    urgency = models.CharField(max_length=16, choices=Urgency.choices, default=Urgency.ROUTINE)
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT)
    technique = models.TextField(blank=True)
    findings = models.TextField(blank=True)
    impression = models.TextField(blank=True)
    recommendation = models.TextField(blank=True)
    # the latest signature (the first signing, or the latest amendment, which is signed too)
    signed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes: ClassVar = [
            models.Index(fields=["state", "updated_at"], name="imaging_report_state"),
        ]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(state__in=["draft", "preliminary"])
                | models.Q(signed_at__isnull=False, signed_by__isnull=False),
                name="imaging_report_signed_has_signer",
            )
        ]

    def __str__(self) -> str:
        return f"report {self.pk} on study {self.study_id}"

    @property
    def is_signed(self) -> bool:
        return self.state in (self.State.SIGNED, self.State.AMENDED)


class ImagingReportVersion(models.Model):
    """A signed text of a report: the first signature (number 1) and each amendment after it."""

    class Kind(models.TextChoices):
        SIGNATURE = "signature", _("签发")
        AMENDMENT = "amendment", _("修正")

    report = models.ForeignKey(ImagingReport, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    technique = models.TextField(blank=True)
    findings = models.TextField()
    impression = models.TextField()
    recommendation = models.TextField(blank=True)
    # why the signed text was changed (empty for the first signature)
    reason = models.CharField(max_length=500, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField()

    class Meta:
        ordering: ClassVar = ["report", "number"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["report", "number"], name="imaging_report_version_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(kind="signature") | ~models.Q(reason=""),
                name="imaging_report_amendment_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"report {self.report_id} v{self.number}"
