"""Writing imaging reports: draft, preliminary, sign, amend; atomic and audited.

Who may write is decided by `report_access.access_report(..., write=True)` (a radiologist of the
study's uploading institution, which treats the patient; see that module). Each public service
runs that check first, outside its own transaction, so that a refusal's audit event stays
written; the change itself then runs in one transaction on a locked row:
- a stale `version` (someone changed the report since the caller read it) -> 409 `report_changed`;
- a move from the wrong state -> 409 `report_state`;
- missing or bad fields -> 422 `report_invalid`, listing every field at once (`ReportFormError`).
Nobody is notified: a report appears where its study is read (the patient's timeline).
"""

from dataclasses import asdict, dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError
from clinical_shell.imaging.report_access import access_report, access_report_study
from clinical_shell.imaging.report_models import (
    ImagingReport,
    ImagingReportVersion,
    Urgency,
)

State = ImagingReport.State
# the longest text one section may hold [characters]
MAX_SECTION_CHARS = 20_000
MAX_REASON_CHARS = 500
# sections a report must have before it is shared (preliminary) or signed
REQUIRED_TO_SIGN = {
    "findings": gettext_lazy("签发前须填写影像所见"),
    "impression": gettext_lazy("签发前须填写诊断意见"),
}


@dataclass(frozen=True)
class ReportText:
    """The structured sections of a report."""

    technique: str = ""
    findings: str = ""
    impression: str = ""
    recommendation: str = ""


class ReportFormError(DomainError):
    """Every field problem at once (the form shows them all, the API lists them)."""

    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("report_invalid", _("报告信息不完整或有误"))
        self.errors = errors


def _text_errors(text: ReportText, urgency: str | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name, value in asdict(text).items():
        if len(value) > MAX_SECTION_CHARS:
            errors[name] = _("内容过长(最多 %(n)s 字)") % {"n": MAX_SECTION_CHARS}
    if urgency is not None and urgency not in Urgency.values:
        errors["urgency"] = _("请选择紧急程度")
    return errors


def _sign_errors(text: ReportText) -> dict[str, str]:
    return {name: str(msg) for name, msg in REQUIRED_TO_SIGN.items() if not getattr(text, name)}


def _clean(text: ReportText) -> ReportText:
    return ReportText(**{k: v.strip() for k, v in asdict(text).items()})


def _text_of(report: ImagingReport) -> ReportText:
    return ReportText(**{k: getattr(report, k) for k in asdict(ReportText())})


def _locked(report_id: int, version: int) -> ImagingReport:
    report = ImagingReport.objects.select_for_update().get(pk=report_id)
    if version != report.version:
        raise DomainError("report_changed", _("该报告已被他人更新，请刷新后重试"), status=409)
    return report


def _require_state(report: ImagingReport, allowed: tuple[str, ...]) -> None:
    if report.state not in allowed:
        raise DomainError(
            "report_state",
            _("报告当前为“%(state)s”，不能执行该操作") % {"state": State(report.state).label},
        )


def _audit(actor: User, action: str, report: ImagingReport, **detail: Any) -> None:
    audit.record(
        actor=actor,
        action=f"imaging_report.{action}",
        patient_id=report.study.patient_id,
        target=report,
        detail={"study": report.study_id, "version": report.version, "state": report.state}
        | detail,
    )


def create_draft(
    *, actor: User, study_id: int, urgency: str = Urgency.ROUTINE, text: ReportText
) -> ImagingReport:
    """Start the report of a study (one per study; a second start is refused with 409)."""
    study = access_report_study(actor, study_id, write=True, action="imaging_report.create")
    with transaction.atomic():
        text = _clean(text)
        errors = _text_errors(text, urgency)
        if errors:
            raise ReportFormError(errors)
        # the study row is the lock that keeps two first drafts apart
        type(study).objects.select_for_update().filter(pk=study.pk).first()
        if ImagingReport.objects.filter(study_id=study.pk).exists():
            raise DomainError("report_exists", _("该检查已有报告，请打开现有报告"))
        report = ImagingReport.objects.create(
            study=study,
            institution_id=study.uploaded_at_id,
            author=actor,
            urgency=urgency,
            **asdict(text),
        )
        _audit(actor, "create", report)
    return report


def save_draft(
    *, actor: User, report_id: int, version: int, urgency: str, text: ReportText
) -> ImagingReport:
    """Change an unsigned report (draft or preliminary; it keeps its state)."""
    access_report(actor, report_id, write=True, action="imaging_report.save")
    with transaction.atomic():
        report = _locked(report_id, version)
        _require_state(report, (State.DRAFT, State.PRELIMINARY))
        text = _clean(text)
        errors = _text_errors(text, urgency)
        if errors:
            raise ReportFormError(errors)
        for name, value in asdict(text).items():
            setattr(report, name, value)
        report.urgency = urgency
        report.version += 1
        report.save()
        _audit(actor, "save", report)
    return report


def mark_preliminary(*, actor: User, report_id: int, version: int) -> ImagingReport:
    """Share a draft as the preliminary read (findings and impression needed, as to sign)."""
    access_report(actor, report_id, write=True, action="imaging_report.preliminary")
    with transaction.atomic():
        report = _locked(report_id, version)
        _require_state(report, (State.DRAFT,))
        errors = _sign_errors(_text_of(report))
        if errors:
            raise ReportFormError(errors)
        report.state = State.PRELIMINARY
        report.version += 1
        report.save(update_fields=["state", "version", "updated_at"])
        _audit(actor, "preliminary", report)
    return report


def sign_report(*, actor: User, report_id: int, version: int) -> ImagingReport:
    """Sign a draft or preliminary report; its text becomes version 1 of the history."""
    access_report(actor, report_id, write=True, action="imaging_report.sign")
    with transaction.atomic():
        report = _locked(report_id, version)
        _require_state(report, (State.DRAFT, State.PRELIMINARY))
        text = _text_of(report)
        errors = _sign_errors(text)
        if errors:
            raise ReportFormError(errors)
        now = timezone.now()
        report.state = State.SIGNED
        report.signed_at = now
        report.signed_by = actor
        report.version += 1
        report.save(update_fields=["state", "signed_at", "signed_by", "version", "updated_at"])
        ImagingReportVersion.objects.create(
            report=report,
            number=1,
            kind=ImagingReportVersion.Kind.SIGNATURE,
            signed_by=actor,
            signed_at=now,
            **asdict(text),
        )
        _audit(actor, "sign", report, signed_version=1)
    return report


def amend_report(
    *, actor: User, report_id: int, version: int, text: ReportText, reason: str
) -> ImagingReport:
    """Change a signed report: the new text is signed as the next version, with its reason;
    every earlier signed version stays in the history. Nobody new is notified."""
    access_report(actor, report_id, write=True, action="imaging_report.amend")
    with transaction.atomic():
        report = _locked(report_id, version)
        _require_state(report, (State.SIGNED, State.AMENDED))
        text = _clean(text)
        reason = reason.strip()
        errors = _text_errors(text, None) | _sign_errors(text)
        if not reason:
            errors["reason"] = _("修正须说明原因")
        elif len(reason) > MAX_REASON_CHARS:
            errors["reason"] = _("内容过长(最多 %(n)s 字)") % {"n": MAX_REASON_CHARS}
        if not errors and text == _text_of(report):
            errors["findings"] = _("修正后的内容与已签发的内容相同")
        if errors:
            raise ReportFormError(errors)
        now = timezone.now()
        number = report.versions.count() + 1
        for name, value in asdict(text).items():
            setattr(report, name, value)
        report.state = State.AMENDED
        report.signed_at = now
        report.signed_by = actor
        report.version += 1
        report.save()
        ImagingReportVersion.objects.create(
            report=report,
            number=number,
            kind=ImagingReportVersion.Kind.AMENDMENT,
            reason=reason,
            signed_by=actor,
            signed_at=now,
            **asdict(text),
        )
        _audit(actor, "amend", report, signed_version=number, reason=reason)
    return report
