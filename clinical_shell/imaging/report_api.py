"""`/api/v1/imaging-reports`: the radiologist's work list and the report actions, under the same
access rules and audit as the pages; refusals and illegal moves are problem details
(403/404/409/422, field problems listed in `errors`), nothing changed."""

from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import ProblemOut, problem_response, problem_title
from clinical_shell.imaging import report_selectors as selectors
from clinical_shell.imaging import report_services as services
from clinical_shell.imaging.models import Study
from clinical_shell.imaging.report_access import access_report, access_report_study
from clinical_shell.imaging.report_models import ImagingReport
from clinical_shell.imaging.report_schemas import (
    AmendIn,
    DraftIn,
    DraftPatch,
    ReportOut,
    ReportTextIn,
    VersionIn,
    WorklistParams,
    WorklistRowOut,
)

router = Router(tags=["imaging reports / 影像报告"])

ERRORS: dict[int, type[Schema]] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
}

T = TypeVar("T")


def _run(fn: Callable[[], T]) -> T | HttpResponse:
    """Field problems listed one by one (the problem handler alone would drop them)."""
    try:
        return fn()
    except services.ReportFormError as exc:
        return problem_response(
            status=exc.status,
            code=exc.code,
            title=problem_title(exc.status),
            detail=str(exc.message),
            errors=[{"field": k, "message": str(v)} for k, v in exc.errors.items()],
        )


class AuditedWorklistPagination(PageNumberPagination):
    """Pages of the work list; the patients a page names are audited, as on the page."""

    def paginate_queryset(
        self, queryset: QuerySet[Study], pagination: Any, request: HttpRequest, **params: Any
    ) -> Any:
        page = super().paginate_queryset(queryset, pagination, request, **params)
        page[self.items_attribute] = list(page[self.items_attribute])
        selectors.audit_listed(signed_in_user(request), page[self.items_attribute])
        return page


def _text(payload: ReportTextIn) -> services.ReportText:
    return services.ReportText(
        technique=payload.technique,
        findings=payload.findings,
        impression=payload.impression,
        recommendation=payload.recommendation,
    )


def _out(result: ImagingReport | HttpResponse, status: int = 200) -> Any:
    if isinstance(result, HttpResponse):
        return result
    return Status(status, selectors.report_of_study(result.study_id))


@router.get(
    "/worklist", response={200: list[WorklistRowOut], **ERRORS}, summary="Work list / 待报告"
)
@paginate(AuditedWorklistPagination)
def worklist(request: HttpRequest, params: Query[WorklistParams]) -> QuerySet[Study]:
    """Studies of your institutions waiting for a signed report, most urgent and oldest first."""
    user = signed_in_user(request)
    return selectors.worklist(user, selectors.WorklistFilter(**params.dict()))


@router.get("/studies/{study_id}", response={200: ReportOut, **ERRORS}, summary="Report of a study")
def report_of_study(request: HttpRequest, study_id: int) -> Any:
    """The study's report (404 `report_not_found` when none was started)."""
    study = access_report_study(signed_in_user(request), study_id)
    report = selectors.report_of_study(study.pk)
    if report is None:
        return problem_response(
            status=404,
            code="report_not_found",
            title=problem_title(404),
            detail=_("该检查尚无报告"),
        )
    return report


@router.post(
    "/studies/{study_id}", response={201: ReportOut, **ERRORS}, summary="Start a draft / 起草"
)
def create_draft(request: HttpRequest, study_id: int, payload: DraftIn) -> Any:
    user = signed_in_user(request)
    result = _run(
        lambda: services.create_draft(
            actor=user, study_id=study_id, urgency=payload.urgency, text=_text(payload)
        )
    )
    return _out(result, 201)


@router.get("/{report_id}", response={200: ReportOut, **ERRORS}, summary="A report / 报告")
def get_report(request: HttpRequest, report_id: int) -> Any:
    report = access_report(signed_in_user(request), report_id)
    return selectors.report_of_study(report.study_id)


@router.put("/{report_id}", response={200: ReportOut, **ERRORS}, summary="Save draft / 保存")
def save_draft(request: HttpRequest, report_id: int, payload: DraftPatch) -> Any:
    user = signed_in_user(request)
    result = _run(
        lambda: services.save_draft(
            actor=user,
            report_id=report_id,
            version=payload.version,
            urgency=payload.urgency,
            text=_text(payload),
        )
    )
    return _out(result)


@router.post(
    "/{report_id}/preliminary",
    response={200: ReportOut, **ERRORS},
    summary="Share as preliminary / 初步报告",
)
def mark_preliminary(request: HttpRequest, report_id: int, payload: VersionIn) -> Any:
    user = signed_in_user(request)
    result = _run(
        lambda: services.mark_preliminary(actor=user, report_id=report_id, version=payload.version)
    )
    return _out(result)


@router.post("/{report_id}/sign", response={200: ReportOut, **ERRORS}, summary="Sign / 签发")
def sign(request: HttpRequest, report_id: int, payload: VersionIn) -> Any:
    user = signed_in_user(request)
    result = _run(
        lambda: services.sign_report(actor=user, report_id=report_id, version=payload.version)
    )
    return _out(result)


@router.post("/{report_id}/amend", response={200: ReportOut, **ERRORS}, summary="Amend / 修正")
def amend(request: HttpRequest, report_id: int, payload: AmendIn) -> Any:
    user = signed_in_user(request)
    result = _run(
        lambda: services.amend_report(
            actor=user,
            report_id=report_id,
            version=payload.version,
            text=_text(payload),
            reason=payload.reason,
        )
    )
    return _out(result)
