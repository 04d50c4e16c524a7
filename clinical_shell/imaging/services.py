"""Imaging's writes: import uploads, link studies to patients, request and cancel case builds.

Uploads are imported by `uploads.import_upload` (re-exported here with its helpers, the write API
other apps and pages use). A case build is a background job (clinical_shell.jobs, kind
"case_build"): `request_case_build` writes the build row and its job, refusing up front a build
that would need more memory than a job may use; a worker runs `case_builds.run_case_build`.
"""

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, PermissionDeniedError
from clinical_shell.imaging.case_builds import (
    BUILDABLE_MODALITIES,
    CASE_SPACING_RANGE_MM,
    DEFAULT_CASE_SPACING_MM,
    case_root,
    estimate_case_build_bytes,
)
from clinical_shell.imaging.models import CaseBuildJob, Series, Study, StudyLinkRequest
from clinical_shell.imaging.uploads import ImportReport, dicom_root, import_upload, instance_path
from clinical_shell.jobs import services as jobs
from clinical_shell.jobs.models import Job
from clinical_shell.records.models import Patient

__all__ = [
    "CASE_SPACING_RANGE_MM",
    "DEFAULT_CASE_SPACING_MM",
    "ImportReport",
    "approve_study_link",
    "cancel_case_build",
    "dicom_root",
    "import_upload",
    "instance_path",
    "reject_study_link",
    "request_case_build",
    "request_study_link",
    "retry_case_build",
    "run_case_build",
]


@transaction.atomic
def request_study_link(
    *, actor: User, study: Study, patient: Patient, reason: str
) -> StudyLinkRequest:
    """Propose the patient a waiting study belongs to; it joins that record only when another
    person approves (`approve_study_link`).

    Preconditions: the caller checked `access_study(write=True)` on the study and
    `access_patient(write=True)` on the patient.
    """
    locked = Study.objects.select_for_update().get(pk=study.pk)
    if locked.patient_id is not None:
        raise DomainError("study_already_linked", _("该检查已关联患者"))
    if not reason.strip():
        raise DomainError("reason_required", _("请说明核对依据"), status=422)
    if StudyLinkRequest.objects.filter(
        study=locked, status=StudyLinkRequest.Status.PENDING
    ).exists():
        raise DomainError("study_link_pending", _("该检查已有待批准的关联申请"))
    link_request = StudyLinkRequest.objects.create(
        study=locked, patient=patient, reason=reason.strip(), requested_by=actor
    )
    audit.record(
        actor=actor,
        action="study.link_request",
        patient_id=patient.pk,
        target=locked,
        reason=link_request.reason,
        detail={"request_id": link_request.pk, "dicom_patient_id": locked.dicom_patient_id},
    )
    return link_request


def _refuse_requester(*, actor: User, link_request: StudyLinkRequest, action: str) -> None:
    """The proposer may not decide their own request; the refusal is audited (outside the
    decision's transaction, so its audit row is kept)."""
    if link_request.requested_by_id != actor.pk:
        return
    audit.record(
        actor=actor,
        action=action,
        success=False,
        patient_id=link_request.patient_id,
        target=link_request.study,
        detail={"request_id": link_request.pk, "refused": "second_person_required"},
    )
    raise PermissionDeniedError("second_person_required", _("关联须由申请人以外的另一位人员批准"))


def _locked_pending(*, actor: User, link_request: StudyLinkRequest) -> StudyLinkRequest:
    locked = StudyLinkRequest.objects.select_for_update().get(pk=link_request.pk)
    if locked.status != StudyLinkRequest.Status.PENDING:
        raise DomainError("study_link_decided", _("该关联申请已处理"))
    if locked.requested_by_id == actor.pk:
        raise PermissionDeniedError(
            "second_person_required", _("关联须由申请人以外的另一位人员批准")
        )
    return locked


def approve_study_link(*, actor: User, link_request: StudyLinkRequest, note: str = "") -> Study:
    """A second person approves: the study joins the patient's record now.

    Preconditions: as for `request_study_link`, checked for `actor`.
    """
    _refuse_requester(actor=actor, link_request=link_request, action="study.link_approve")
    return _approve_study_link(actor=actor, link_request=link_request, note=note)


@transaction.atomic
def _approve_study_link(*, actor: User, link_request: StudyLinkRequest, note: str) -> Study:
    locked = _locked_pending(actor=actor, link_request=link_request)
    study = Study.objects.select_for_update().get(pk=locked.study_id)
    if study.patient_id is not None:
        raise DomainError("study_already_linked", _("该检查已关联患者"))
    locked.status = StudyLinkRequest.Status.APPROVED
    locked.decided_by = actor
    locked.decided_at = timezone.now()
    locked.decision_note = note.strip()
    locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    study.patient_id = locked.patient_id
    study.linked_by = Study.LinkedBy.RECONCILED
    study.unlinked_reason = ""
    study.save(update_fields=["patient", "linked_by", "unlinked_reason"])
    audit.record(
        actor=actor,
        action="study.link",
        patient_id=locked.patient_id,
        target=study,
        reason=locked.reason,
        detail={
            "dicom_patient_id": study.dicom_patient_id,
            "requested_by": locked.requested_by_id,
            "approved_by": actor.pk,
            "note": locked.decision_note,
        },
    )
    return study


def reject_study_link(
    *, actor: User, link_request: StudyLinkRequest, note: str
) -> StudyLinkRequest:
    """A second person refuses: the study keeps waiting, for another proposal."""
    _refuse_requester(actor=actor, link_request=link_request, action="study.link_reject")
    if not note.strip():
        raise DomainError("note_required", _("驳回须说明原因"), status=422)
    return _reject_study_link(actor=actor, link_request=link_request, note=note)


@transaction.atomic
def _reject_study_link(
    *, actor: User, link_request: StudyLinkRequest, note: str
) -> StudyLinkRequest:
    locked = _locked_pending(actor=actor, link_request=link_request)
    locked.status = StudyLinkRequest.Status.REJECTED
    locked.decided_by = actor
    locked.decided_at = timezone.now()
    locked.decision_note = note.strip()
    locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit.record(
        actor=actor,
        action="study.link_reject",
        patient_id=locked.patient_id,
        target=locked.study,
        reason=locked.decision_note,
        detail={"request_id": locked.pk, "requested_by": locked.requested_by_id},
    )
    return locked


@transaction.atomic
def request_case_build(
    *,
    actor: User,
    series: Series,
    spacing_mm: float = DEFAULT_CASE_SPACING_MM,
    run_in_background: bool = True,
    retry_of: CaseBuildJob | None = None,
) -> CaseBuildJob:
    """Queue a case build for a CT series as a heavy background job.

    Preconditions: the caller checked `access_series(write=True)`. One build at a time per
    series. A build whose estimated memory is above the per-job limit is refused here
    ("job_too_large"). With run_in_background=False no worker is woken: the caller runs the job
    itself (`jobs.running.run_job`, as the demo loader does to have its cases before it returns).
    """
    locked = Series.objects.select_for_update().select_related("study").get(pk=series.pk)
    patient_id = locked.study.patient_id
    if patient_id is None:
        raise DomainError("study_not_linked", _("该检查尚未关联患者，请先核对"))
    if locked.modality not in BUILDABLE_MODALITIES:
        raise DomainError(
            "not_ct_series",
            _("只能由 CT 序列构建病例，此序列为 %(modality)s") % {"modality": locked.modality},
            status=422,
        )
    low, high = CASE_SPACING_RANGE_MM
    if not low <= spacing_mm <= high:
        raise DomainError(
            "spacing_out_of_range",
            _("体素间距须在 %(low)s-%(high)s mm") % {"low": low, "high": high},
            status=422,
        )
    busy = Job.Status.QUEUED, Job.Status.RUNNING
    if CaseBuildJob.objects.filter(series=locked, job__status__in=busy).exists():
        raise DomainError("case_build_in_progress", _("该序列已有正在进行的构建任务"))
    estimated = estimate_case_build_bytes(locked, spacing_mm)
    jobs.check_memory(estimated)
    build = CaseBuildJob.objects.create(
        series=locked,
        patient_id=patient_id,
        requested_by=actor,
        spacing_mm=spacing_mm,
        estimated_bytes=estimated,
        case_path="",
        retry_of=retry_of,
    )
    # the bundle's place is fixed by the build's id: a retried build never overwrites another's
    build.case_path = str(case_root() / str(build.pk))
    build.job = jobs.enqueue(
        actor=actor,
        kind="case_build",
        subject=build.subject,
        payload={"case_build_id": build.pk},
        heavy=True,
        estimated_bytes=estimated,
        idempotency_key=f"case_build:{build.pk}",
        wake=run_in_background,
    )
    build.save(update_fields=["case_path", "job"])
    audit.record(
        actor=actor,
        action="case.build_request",
        patient_id=patient_id,
        target=build,
        detail={
            "series_id": locked.pk,
            "spacing_mm": spacing_mm,
            "job_id": build.job.pk,
            "estimated_bytes": estimated,
            **({"retry_of": retry_of.pk} if retry_of is not None else {}),
        },
    )
    return build


@transaction.atomic
def retry_case_build(
    *, actor: User, build: CaseBuildJob, run_in_background: bool = True
) -> CaseBuildJob:
    """Queue a new build of a failed or cancelled build's series, with its spacing; the old
    one stays as it ended.

    Preconditions: the caller checked `access_case_build(write=True)`. A done build has its
    case; a queued or running one may still finish.
    """
    locked = (
        CaseBuildJob.objects.select_for_update(of=("self",)).select_related("job").get(pk=build.pk)
    )
    if locked.job is None or locked.job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
        raise DomainError("case_build_not_failed", _("只能重试失败或已取消的构建任务"))
    return request_case_build(
        actor=actor,
        series=locked.series,
        spacing_mm=locked.spacing_mm,
        run_in_background=run_in_background,
        retry_of=locked,
    )


@transaction.atomic
def cancel_case_build(*, actor: User, build: CaseBuildJob, reason: str = "") -> CaseBuildJob:
    """Cancel a build that has not finished: at once if queued, at its next step if running.

    Preconditions: the caller checked `access_case_build(write=True)`.
    """
    if build.job is None:
        raise DomainError("job_finished", _("任务已结束，无法取消"))
    job = jobs.cancel_job(actor=actor, job=build.job, reason=reason)
    audit.record(
        actor=actor,
        action="case.build_cancel_request",
        patient_id=build.patient_id,
        target=build,
        reason=reason,
        detail={"job_id": job.pk, "status": job.status},
    )
    build.job = job
    return build


def run_case_build(build_id: int) -> CaseBuildJob:
    """Run a queued build in this process, now (the demo loader; a worker runs the others).

    Claims its job like a worker would: if a worker already has it, or every heavy slot is
    taken, it stays as it is. Returns the build as it then stands.
    """
    from clinical_shell.jobs.running import run_job

    build = CaseBuildJob.objects.select_related("job").get(pk=build_id)
    if build.job is not None:
        run_job(build.job.pk)
    return CaseBuildJob.objects.select_related("job", "case").get(pk=build_id)
