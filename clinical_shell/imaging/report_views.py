"""Imaging report pages: the radiologist's work list, the report editor beside the images, the
sign confirmation, the printable report, and the amendment form with the signed history.
Thin: access, one service or selector, render; the services check and audit every change."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import DomainError
from clinical_shell.imaging import key_images_selectors
from clinical_shell.imaging import report_selectors as selectors
from clinical_shell.imaging import report_services as services
from clinical_shell.imaging.models import Study
from clinical_shell.imaging.report_access import access_report, access_report_study, may_report
from clinical_shell.imaging.report_models import REPORT_FIELDS, ImagingReport, Urgency

PAGE_SIZE = 20


def _int(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _text_from(data: Any) -> services.ReportText:
    return services.ReportText(**{name: data.get(name, "") for name in REPORT_FIELDS})


def _page_error(exc: DomainError) -> tuple[dict[str, str], str]:
    """Field problems and a banner for a refused change; refusals of access go to the error
    page (raised again)."""
    if isinstance(exc, services.ReportFormError):
        return {k: str(v) for k, v in exc.errors.items()}, str(exc.message)
    if exc.status in (401, 403, 404):
        raise exc
    return {}, str(exc.message)


@login_required
@require_http_methods(["GET"])
def worklist(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    f = selectors.WorklistFilter(
        q=request.GET.get("q", "")[:100],
        urgency=request.GET.get("urgency", "")[:16],
        state=request.GET.get("state", "")[:16],
    )
    page = Paginator(selectors.worklist(user, f), PAGE_SIZE).get_page(request.GET.get("page"))
    selectors.audit_listed(user, list(page.object_list))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "imaging/reports/worklist.html",
        {
            "page": page,
            "filter": f,
            "query": query.urlencode(),
            "urgencies": Urgency.choices,
            "states": _state_choices(),
        },
    )


def _state_choices() -> list[tuple[str, str]]:
    return [
        ("none", _("未开始")),
        (ImagingReport.State.DRAFT, str(ImagingReport.State.DRAFT.label)),
        (ImagingReport.State.PRELIMINARY, str(ImagingReport.State.PRELIMINARY.label)),
    ]


def _study_context(study: Study) -> dict[str, Any]:
    return {"study": study, "first_series_id": selectors.first_series_id(study.pk)}


@login_required
@require_http_methods(["GET", "POST"])
def study_report(request: HttpRequest, study_id: int) -> HttpResponse:
    """The study's report: the editor while unsigned (for its radiologists), else the report."""
    user = signed_in_user(request)
    write = request.method == "POST"
    study = access_report_study(user, study_id, write=write, action="imaging_report.save")
    report = selectors.report_of_study(study.pk)
    errors: dict[str, str] = {}
    error = ""
    data: dict[str, str] = {}
    if write:
        data = {k: request.POST.get(k, "") for k in (*REPORT_FIELDS, "urgency")}
        action = request.POST.get("action", "save")
        try:
            report = _save(user, study, report, request.POST)
            if action == "preliminary":
                services.mark_preliminary(actor=user, report_id=report.pk, version=report.version)
            if action == "sign":
                return redirect("radiology:sign", report_id=report.pk)
            return redirect("radiology:study_report", study_id=study.pk)
        except DomainError as exc:
            errors, error = _page_error(exc)
            report = selectors.report_of_study(study.pk)
    elif report is not None:
        data = {k: getattr(report, k) for k in (*REPORT_FIELDS, "urgency")}
    return render(
        request,
        "imaging/reports/report.html",
        {
            **_study_context(study),
            "report": report,
            # the slices the readers marked, each a link into the viewer at that slice
            "key_images": key_images_selectors.key_images_of_study(study.pk),
            "may_write": may_report(user, study),
            "data": data,
            "errors": errors,
            "error": error,
            "fields": _field_labels(),
            "urgencies": Urgency.choices,
        },
        status=422 if errors else (409 if error else 200),
    )


def _save(user: User, study: Study, report: ImagingReport | None, post: Any) -> ImagingReport:
    urgency = post.get("urgency", Urgency.ROUTINE)
    if report is None:
        return services.create_draft(
            actor=user, study_id=study.pk, urgency=urgency, text=_text_from(post)
        )
    version = _int(post.get("version"))
    return services.save_draft(
        actor=user,
        report_id=report.pk,
        version=version if version is not None else -1,
        urgency=urgency,
        text=_text_from(post),
    )


def _field_labels() -> list[tuple[str, str]]:
    return [
        ("technique", _("检查技术")),
        ("findings", _("影像所见")),
        ("impression", _("诊断意见")),
        ("recommendation", _("建议")),
    ]


@login_required
@require_http_methods(["GET", "POST"])
def sign(request: HttpRequest, report_id: int) -> HttpResponse:
    """Confirmation before signing: the report as it will read, then one button."""
    user = signed_in_user(request)
    report = access_report(user, report_id, write=True, action="imaging_report.sign")
    errors: dict[str, str] = {}
    error = ""
    if request.method == "POST":
        version = _int(request.POST.get("version"))
        try:
            services.sign_report(
                actor=user, report_id=report.pk, version=version if version is not None else -1
            )
            return redirect("radiology:study_report", study_id=report.study_id)
        except DomainError as exc:
            errors, error = _page_error(exc)
        report.refresh_from_db()
    return render(
        request,
        "imaging/reports/sign_confirm.html",
        {
            **_study_context(report.study),
            "report": report,
            "errors": errors,
            "error": error,
            "fields": _field_labels(),
        },
        status=422 if errors else (409 if error else 200),
    )


@login_required
@require_http_methods(["GET"])
def print_report(request: HttpRequest, report_id: int) -> HttpResponse:
    """The report as printed (signed text, signer, time; unsigned ones say so)."""
    report = access_report(signed_in_user(request), report_id)
    full = selectors.report_of_study(report.study_id)
    return render(
        request,
        "imaging/reports/print.html",
        {**_study_context(report.study), "report": full, "fields": _field_labels()},
    )


@login_required
@require_http_methods(["GET", "POST"])
def amend(request: HttpRequest, report_id: int) -> HttpResponse:
    """Change a signed report, with its reason; the signed history below the form."""
    user = signed_in_user(request)
    report = access_report(user, report_id, write=True, action="imaging_report.amend")
    errors: dict[str, str] = {}
    error = ""
    data = {k: getattr(report, k) for k in REPORT_FIELDS} | {"reason": ""}
    if request.method == "POST":
        data = {k: request.POST.get(k, "") for k in (*REPORT_FIELDS, "reason")}
        version = _int(request.POST.get("version"))
        try:
            services.amend_report(
                actor=user,
                report_id=report.pk,
                version=version if version is not None else -1,
                text=_text_from(request.POST),
                reason=data["reason"],
            )
            return redirect("radiology:study_report", study_id=report.study_id)
        except DomainError as exc:
            errors, error = _page_error(exc)
    full = selectors.report_of_study(report.study_id)
    return render(
        request,
        "imaging/reports/amend.html",
        {
            **_study_context(report.study),
            "report": full,
            "data": data,
            "errors": errors,
            "error": error,
            "fields": _field_labels(),
        },
        status=422 if errors else (409 if error else 200),
    )
