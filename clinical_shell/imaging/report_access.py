"""Who may read and who may write imaging reports; every decision audited.

Reading: a report is part of its study, so whoever may read the study may read its report
(`access_study`: the patient's care rule, or a grant such as an open referral sharing it).

Writing (draft, preliminary, sign, amend): radiologists may READ records but are not record
writers (`RECORD_WRITER_ROLES`), so `access_patient(write=True)` would refuse every one of
them. Instead the writer must
1. be able to read the study (`access_study`, audited as a patient read), and
2. hold the radiologist role, active, at the institution that uploaded the study (that
   institution reports on its own images), and
3. that institution has a care relationship with the study's patient.
A study still waiting for reconciliation (no patient) cannot be reported on. A refusal of
step 2 or 3 is audited as `imaging_report.<action>` with outcome failure and raises 403.
"""

from django.contrib.auth.models import AnonymousUser, User
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, NotFoundError, PermissionDeniedError
from clinical_shell.imaging.access import access_study
from clinical_shell.imaging.models import Study
from clinical_shell.imaging.report_models import ImagingReport
from clinical_shell.network.models import Role
from clinical_shell.network.selectors import institution_ids_with_roles
from clinical_shell.records import selectors as records

RADIOLOGIST = frozenset({Role.RADIOLOGIST})


def radiologist_institution_ids(user: User | AnonymousUser) -> list[int]:
    """Institutions where the user is an active radiologist."""
    if not user.is_authenticated:
        return []
    return institution_ids_with_roles(int(user.pk), RADIOLOGIST)


def may_report(user: User | AnonymousUser, study: Study) -> bool:
    """Whether `user` may write a report on `study` (no audit: for showing buttons)."""
    return (
        study.patient_id is not None
        and study.uploaded_at_id in radiologist_institution_ids(user)
        and records.in_care_at(study.patient_id, [study.uploaded_at_id])
    )


def require_reporter(user: User | AnonymousUser, study: Study, *, action: str) -> None:
    """Refuse (audited, 403; 409 for a study with no patient) unless `user` may report on it."""
    if study.patient_id is None:
        raise DomainError("study_not_linked", _("该检查尚未关联患者，不能书写报告"))
    if may_report(user, study):
        return
    audit.record(
        actor=user,
        action=action,
        success=False,
        patient_id=study.patient_id,
        target=study,
        detail={"why": "not_radiologist_at_uploading_institution"},
    )
    raise PermissionDeniedError(
        "not_reporting_radiologist",
        _("只有检查所属机构的放射科医生可以书写和签发影像报告"),
    )


def access_report_study(
    user: User | AnonymousUser, study_id: int, *, write: bool = False, action: str = ""
) -> Study:
    """The study, when `user` may read it (and report on it, with write=True); audited."""
    study = access_study(user, study_id, reason="imaging report")
    if write:
        require_reporter(user, study, action=action or "imaging_report.write")
    return study


def access_report(
    user: User | AnonymousUser, report_id: int, *, write: bool = False, action: str = ""
) -> ImagingReport:
    """The report, when `user` may read its study (and report on it, with write=True)."""
    report = (
        ImagingReport.objects.select_related("author__person", "signed_by__person", "institution")
        .filter(pk=report_id)
        .first()
    )
    if report is None:
        audit.record(
            actor=user if user.is_authenticated else None,
            action=action or "imaging_report.read",
            success=False,
            detail={"report": report_id, "why": "not_found"},
        )
        raise NotFoundError(
            "report_not_found",
            _("未找到编号为 %(report_id)s 的影像报告") % {"report_id": report_id},
        )
    report.study = access_report_study(user, report.study_id, write=write, action=action)
    return report
