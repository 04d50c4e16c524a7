"""DICOM studies, series and instances: the index in the database, the files on disk by UID.

A study belongs to the patient it was linked to, or waits in the reconciliation queue (no patient)
until someone with write access to the right patient links it. Files live under
`settings.OSTEON_DICOM_ROOT/<study UID>/<series UID>/<SOP instance UID>.dcm`.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinical_shell.network.models import Institution
from clinical_shell.records.models import Patient


class Study(models.Model):
    class LinkedBy(models.TextChoices):
        UPLOADER = "uploader", _("上传时指定")
        RESIDENT_ID = "resident_id", _("DICOM 患者号即身份证号")
        RECONCILED = "reconciled", _("人工核对")
        NONE = "none", _("待核对")

    study_uid = models.CharField(max_length=64, unique=True)
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    linked_by = models.CharField(max_length=16, choices=LinkedBy.choices)
    # why the study waits for reconciliation (empty once linked)
    unlinked_reason = models.CharField(max_length=200, blank=True)
    uploaded_at = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # as the DICOM header says: kept for reconciliation, shown only to people who may see them
    dicom_patient_id = models.CharField(max_length=64, blank=True)
    dicom_patient_name = models.CharField(max_length=200, blank=True)
    study_date = models.DateField(null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes: ClassVar = [
            models.Index(fields=["patient", "study_date"], name="study_patient_date"),
            models.Index(fields=["uploaded_at", "patient"], name="study_queue"),
        ]

    def __str__(self) -> str:
        return f"{self.description or self.study_uid}"


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="series")
    series_uid = models.CharField(max_length=64, unique=True)
    modality = models.CharField(max_length=16)
    number = models.IntegerField(null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.modality} {self.description or self.series_uid}"


class Instance(models.Model):
    series = models.ForeignKey(Series, on_delete=models.PROTECT, related_name="instances")
    sop_uid = models.CharField(max_length=64, unique=True)
    sop_class_uid = models.CharField(max_length=64)
    transfer_syntax_uid = models.CharField(max_length=64)
    number = models.IntegerField(null=True, blank=True)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    frames = models.PositiveIntegerField(default=1)
    # position along the slice normal [mm], for ordering CT slices; null for radiographs
    slice_position_mm = models.FloatField(null=True, blank=True)
    relative_path = models.CharField(max_length=300)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes: ClassVar = [
            models.Index(fields=["series", "slice_position_mm", "number"], name="instance_order")
        ]
