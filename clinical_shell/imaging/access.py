"""Who may see, add to or link which study; every decision audited.

A linked study is the patient's record: `records.access.access_patient` decides and audits.
A study waiting for reconciliation has no patient yet; people with a clinical role at the
institution that uploaded it may see it (to link it), nobody else. A linked study may also be
read (never changed) by someone another app grants it to without a care relationship: the
receiving side of an open referral that shares it, the expert of an open consultation, the
participants of a meeting that discusses it (`register_study_grant`); the grant is audited.
"""

from collections.abc import Callable

from django.contrib.auth.models import AnonymousUser, User
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import NotFoundError, PermissionDeniedError
from clinical_shell.imaging.models import CaseBuildJob, Instance, Series, SimulationCase, Study
from clinical_shell.network.models import CLINICAL_ROLES
from clinical_shell.network.selectors import institution_ids_with_roles
from clinical_shell.records.access import access_patient, clinical_institution_ids, memberships_of

# (reader, study) -> why the reader may see it ("referral:12"), or None
StudyGrant = Callable[[User, Study], str | None]
_STUDY_GRANTS: list[StudyGrant] = []


def register_study_grant(grant: StudyGrant) -> None:
    if grant not in _STUDY_GRANTS:
        _STUDY_GRANTS.append(grant)


def _granted(user: User | AnonymousUser, study: Study) -> str | None:
    """Asked by the records rule only when the reader has no care relationship."""
    if not isinstance(user, User) or study.patient_id is None:
        return None
    for grant in _STUDY_GRANTS:
        why = grant(user, study)
        if why is not None:
            return why
    return None


def imaging_institution_ids(user: User | AnonymousUser) -> list[int]:
    """Institutions where the user may upload and reconcile images (any clinical role)."""
    if not user.is_authenticated:
        return []
    return institution_ids_with_roles(int(user.pk), CLINICAL_ROLES)


def may_add_to_study(user: User | AnonymousUser, study: Study) -> bool:
    """Adding instances to an existing study changes that patient's record (no audit: the
    upload's own audit event names every study it touched)."""
    if study.patient_id is None:
        return study.uploaded_at_id in imaging_institution_ids(user)
    # a study is added to only at the institution that uploaded it
    return study.uploaded_at_id in clinical_institution_ids(user)


def _check_linked_study(
    user: User | AnonymousUser, study: Study, *, write: bool, reason: str
) -> None:
    """A linked study is its patient's record, and read as such; it also belongs to the
    institution that uploaded it (records.access.RecordScope): another institution reads it only
    while it is shared with them, and never changes it."""
    patient_id = study.patient_id
    assert patient_id is not None  # the caller handles a study waiting to be linked
    memberships = memberships_of(user)
    asked: list[str | None] = []

    def grant(_patient_id: int) -> str | None:
        if not asked:  # asked at most once, by the records rule or below
            asked.append(_granted(user, study))
        return asked[0]

    access_patient(
        user, patient_id, write=write, reason=reason, memberships=memberships, grant=grant
    )
    if study.uploaded_at_id in memberships.institution_ids(write=write):
        return
    if not write and grant(patient_id) is not None:
        return
    audit.record(
        actor=user if user.is_authenticated else None,
        action="study.write" if write else "study.read",
        success=False,
        patient_id=patient_id,
        target=study,
        reason=reason,
        detail={"why": "not_shared"},
    )
    raise PermissionDeniedError(
        "study_not_shared",
        _("该检查由其他机构上传，未通过转诊或会诊共享给您所在机构"),
    )


def access_study(
    user: User | AnonymousUser, study_id: int, *, write: bool = False, reason: str = ""
) -> Study:
    study = Study.objects.select_related("patient", "uploaded_at").filter(pk=study_id).first()
    if study is None:
        raise NotFoundError(
            "study_not_found", _("未找到编号为 %(study_id)s 的影像检查") % {"study_id": study_id}
        )
    if study.patient_id is not None:
        _check_linked_study(user, study, write=write, reason=reason or "imaging")
        return study
    allowed = study.uploaded_at_id in imaging_institution_ids(user)
    audit.record(
        actor=user,
        action="study.write" if write else "study.read",
        success=allowed,
        target=study,
        reason=reason,
        detail={} if allowed else {"why": "not_at_uploading_institution"},
    )
    if not allowed:
        raise PermissionDeniedError(
            "study_forbidden",
            _("待核对的检查仅上传机构可见"),
        )
    return study


def access_series(
    user: User | AnonymousUser, series_id: int, *, write: bool = False, reason: str = ""
) -> Series:
    series = Series.objects.filter(pk=series_id).first()
    if series is None:
        raise NotFoundError(
            "series_not_found", _("未找到编号为 %(series_id)s 的序列") % {"series_id": series_id}
        )
    series.study = access_study(user, series.study_id, write=write, reason=reason or "view series")
    return series


def access_case_build(
    user: User | AnonymousUser, job_id: int, *, write: bool = False, reason: str = ""
) -> CaseBuildJob:
    """A case-build job is part of its patient's record: readable when the patient is, and
    retried or cancelled (write=True) by those who may change the record."""
    job = (
        CaseBuildJob.objects.select_related("job", "series__study", "case", "requested_by__person")
        .filter(pk=job_id)
        .first()
    )
    if job is None:
        raise NotFoundError(
            "case_build_not_found", _("未找到编号为 %(job_id)s 的构建任务") % {"job_id": job_id}
        )
    _check_linked_study(user, job.series.study, write=write, reason=reason or "case build")
    return job


def may_change_case_build(user: User | AnonymousUser, job: CaseBuildJob) -> bool:
    """Whether to offer the retry and cancel buttons (no audit: the retry or cancel itself is
    checked and audited)."""
    return job.series.study.uploaded_at_id in clinical_institution_ids(user, write=True)


def access_case(
    user: User | AnonymousUser, case_id: int, *, write: bool = False, reason: str = ""
) -> SimulationCase:
    """A simulation case is its patient's record, read (and, with ``write``, annotated) as the
    study it was built from."""
    case = SimulationCase.objects.select_related("series").filter(pk=case_id).first()
    if case is None:
        raise NotFoundError(
            "case_not_found", _("未找到编号为 %(case_id)s 的仿真病例") % {"case_id": case_id}
        )
    case.series.study = access_study(
        user, case.series.study_id, write=write, reason=reason or "simulation case"
    )
    return case


def access_instance(user: User | AnonymousUser, instance_id: int) -> Instance:
    instance = Instance.objects.select_related("series").filter(pk=instance_id).first()
    if instance is None:
        raise NotFoundError(
            "instance_not_found",
            _("未找到编号为 %(instance_id)s 的影像") % {"instance_id": instance_id},
        )
    instance.series.study = access_study(user, instance.series.study_id, reason="image file")
    return instance
