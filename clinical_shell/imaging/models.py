"""DICOM studies, series and instances: the index in the database, the files on disk by UID.

A study belongs to the patient it was linked to, or waits in the reconciliation queue (no patient)
until someone with write access to the right patient links it. Files live under
`settings.OSTEON_DICOM_ROOT/<study UID>/<series UID>/<SOP instance UID>.dcm`.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinical_shell.jobs.models import Job
from clinical_shell.network.models import Institution
from clinical_shell.records.models import Patient


class Study(models.Model):
    class LinkedBy(models.TextChoices):
        UPLOADER = "uploader", _("上传时指定")
        RESIDENT_ID = "resident_id", _("DICOM 患者号即身份证号")
        RECONCILED = "reconciled", _("人工核对")
        NONE = "none", _("待核对")

    class UnlinkedReason(models.TextChoices):
        # stored as the code and shown in the reader's language (a stored sentence would keep
        # the language of the upload)
        NO_PATIENT_ID = "no_patient_id", _("DICOM 无患者号")
        NOT_RESIDENT_ID = "not_resident_id", _("患者号不是身份证号")
        NO_PATIENT_IN_CARE = "no_patient_in_care", _("未找到对应患者")

    # unique per uploading institution, not network-wide: an upload must not learn from a refusal
    # that another institution holds a study with this UID (each institution keeps its own copy)
    study_uid = models.CharField(max_length=64, db_index=True)
    patient = models.ForeignKey(
        Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    linked_by = models.CharField(max_length=16, choices=LinkedBy.choices)
    # why the study waits for reconciliation (empty once linked)
    unlinked_reason = models.CharField(max_length=200, blank=True, choices=UnlinkedReason.choices)
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
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["uploaded_at", "study_uid"], name="study_uid_per_institution"
            )
        ]

    def __str__(self) -> str:
        return f"{self.description or self.study_uid}"


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="series")
    series_uid = models.CharField(max_length=64, db_index=True)
    modality = models.CharField(max_length=16)
    number = models.IntegerField(null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["study", "series_uid"], name="series_uid_per_study")
        ]

    def __str__(self) -> str:
        return f"{self.modality} {self.description or self.series_uid}"


class Instance(models.Model):
    series = models.ForeignKey(Series, on_delete=models.PROTECT, related_name="instances")
    sop_uid = models.CharField(max_length=64, db_index=True)
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
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["series", "sop_uid"], name="sop_uid_per_series")
        ]


class SimulationCase(models.Model):
    """A simulator case bundle built from one CT series, linked to the series' patient.

    The bundle lives on disk at `path` (a directory written atomically by the case builder);
    `content_hash` is the bundle's own digest, so a station can check it loaded the same case.
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    series = models.ForeignKey(Series, on_delete=models.PROTECT, related_name="cases")
    path = models.CharField(max_length=500)
    content_hash = models.CharField(max_length=80)
    spacing_mm = models.FloatField()
    # [{"id", "name", "voxels", "volume_mm3", ...}] as the builder reports them
    bones = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes: ClassVar = [
            models.Index(fields=["patient", "created_at"], name="case_patient_created")
        ]

    def __str__(self) -> str:
        return f"case {self.pk} ({self.content_hash[:19]})"


class CaseBuildJob(models.Model):
    """One request to build a simulation case from a CT series; its run is a background job.

    The job (`jobs.Job`, kind "case_build") carries status, progress, queue position and error;
    this row carries what is built from what, and links `case` once done. Nothing is left at
    `case_path` unless the job is done.
    """

    series = models.ForeignKey(Series, on_delete=models.PROTECT, related_name="case_builds")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    # null only while the request's own transaction creates both rows
    job = models.OneToOneField(
        "jobs.Job", null=True, blank=True, on_delete=models.PROTECT, related_name="case_build"
    )
    spacing_mm = models.FloatField()
    # the memory the build was estimated to need when requested [bytes] (full field of view)
    estimated_bytes = models.BigIntegerField(null=True, blank=True)
    # where the bundle goes (and, once done, is); decided when the job is created
    case_path = models.CharField(max_length=500)
    case = models.OneToOneField(
        SimulationCase, null=True, blank=True, on_delete=models.PROTECT, related_name="job"
    )
    # the failed job this one repeats (the "retry" button), if any
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="retries"
    )

    class Meta:
        indexes: ClassVar = [
            models.Index(fields=["series"], name="case_job_series"),
            models.Index(fields=["patient", "requested_at"], name="case_job_patient"),
        ]

    # a build's statuses are its job's
    Status = Job.Status

    def __str__(self) -> str:
        return f"case build {self.pk}"

    @property
    def status(self) -> str:
        return self.job.status if self.job is not None else Job.Status.QUEUED

    def get_status_display(self) -> str:
        return str(
            self.job.get_status_display() if self.job is not None else Job.Status.QUEUED.label
        )

    @property
    def subject(self) -> str:
        """Its background job's subject."""
        return f"imaging.casebuildjob:{self.pk}"


class StudyLinkRequest(models.Model):
    """Reconciliation with two people: one proposes which patient a waiting study belongs to,
    another (not the proposer) approves it before the study joins that patient's record.

    Changing an image's identity decides whose record it becomes part of; as with a patient
    merge, no one person both proposes and carries it out (service, and a database check).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("待批准")
        APPROVED = "approved", _("已批准")
        REJECTED = "rejected", _("已驳回")

    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="link_requests")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
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
                fields=["study"],
                condition=models.Q(status="pending"),
                name="study_link_request_one_pending",
            ),
            models.CheckConstraint(
                condition=~models.Q(decided_by=models.F("requested_by")),
                name="study_link_request_decided_by_another",
            ),
        ]


from clinical_shell.imaging.annotation_models import CaseAnnotationVersion  # noqa: E402, F401
from clinical_shell.imaging.key_images_models import KeyImage  # noqa: E402, F401
from clinical_shell.imaging.report_models import ImagingReport, ImagingReportVersion  # noqa: E402, F401
