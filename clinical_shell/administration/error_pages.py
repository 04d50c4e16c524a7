"""handler403 / handler404 / handler500 (set in clinical_shell/urls.py): the styled pages.

403 and 404 extend error.html (the page DomainErrorPageMiddleware renders for DomainErrors) and
offer a way back. 500 is a standalone template rendered without a request context: the database
or a context processor may be what failed.
"""

from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, NotFoundError, PermissionDeniedError, problem_detail


def _back_url(request: HttpRequest) -> str:
    """The referring page when it is on this site, else nothing (the page offers home)."""
    referer = str(request.META.get("HTTP_REFERER", ""))
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referer
    return ""


def _page(request: HttpRequest, template: str, error: DomainError) -> HttpResponse:
    # the page says the refusal is in the audit log: make it true (signed-in requests only)
    audit.record_refusal_if_missing(request, error)
    return render(
        request, template, {"error": error, "back_url": _back_url(request)}, status=error.status
    )


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page(request, "404.html", NotFoundError("not_found", problem_detail(404)))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # a PermissionDeniedError carries its plain-language reason; Django's PermissionDenied may
    # carry one as its message; otherwise the fixed words
    if isinstance(exception, DomainError):
        error = PermissionDeniedError(exception.code, str(exception.message))
    else:
        reason = str(exception or "").strip()
        error = PermissionDeniedError("forbidden", reason or _("你没有访问此页面的权限"))
    return _page(request, "403.html", error)


def server_error(request: HttpRequest) -> HttpResponse:
    # no request context, no database: the template, the active language, the referring page
    page = loader.get_template("500.html").render({"back_url": _back_url(request)})
    return HttpResponseServerError(page)
