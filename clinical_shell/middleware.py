"""Request/response middleware: error pages and API problem details, language, CSP, caching."""

from collections.abc import Callable

from django.db import DataError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.locale import LocaleMiddleware
from django.shortcuts import render
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext

from clinical_shell.audit import services as audit
from clinical_shell.errors import (
    PROBLEM_CONTENT_TYPE,
    DomainError,
    NotFoundError,
    problem_detail,
    problem_response,
    problem_title,
)


class DomainErrorPageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OverflowError):
            # an id in the URL beyond the database's integer range (SQLite's driver overflows):
            # no such record, not a server error
            exception = NotFoundError("not_found", problem_detail(404))
        elif isinstance(exception, DataError):
            # a value the database refuses (PostgreSQL: an id beyond bigint): the input's fault
            exception = DomainError(
                "invalid_value", gettext("请求中的数值超出允许范围"), status=422
            )
        if not isinstance(exception, DomainError):
            return None
        # the page says the refusal is in the audit log: make it true
        audit.record_refusal_if_missing(request, exception)
        return render(request, "error.html", {"error": exception}, status=exception.status)


class ChineseFirstLocaleMiddleware(LocaleMiddleware):
    """The person's choice, else the browser's language, else Chinese.

    Order: the language cookie set by /i18n/setlang/ (the switch on every page), then the first
    supported language in the browser's Accept-Language (en-US -> en, zh-CN -> zh-hans), then
    settings.LANGUAGE_CODE (zh-hans): a browser asking only for a language the shell lacks gets
    Chinese. The inherited process_response adds `Vary: Accept-Language` and Content-Language.
    """

    def process_request(self, request: HttpRequest) -> None:
        # get_language_from_request checks the cookie, then Accept-Language, then LANGUAGE_CODE,
        # keeping only supported languages at each step (an unknown cookie value is skipped)
        translation.activate(translation.get_language_from_request(request))
        request.LANGUAGE_CODE = translation.get_language()

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response = super().process_response(request, response)
        # the activation is per thread and outlives the request: without this, whatever the
        # thread runs next (a job, a test calling a service) would speak this request's language
        translation.deactivate()
        return response


class ContentSecurityPolicyMiddleware:
    """Adds settings.OSTEON_CONTENT_SECURITY_POLICY to every response that does not set its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        # imported here: this class was appended below others' code, whose imports it leaves be
        from django.conf import settings

        self.get_response = get_response
        # read once: the policy is part of the deployment, not of a request
        policy: dict[str, list[str]] = settings.OSTEON_CONTENT_SECURITY_POLICY
        self.header = "; ".join(f"{name} {' '.join(sources)}" for name, sources in policy.items())

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.header)
        return response


class ApiProblemDetailsMiddleware:
    """Under /api/, every error is RFC 9457 problem details, whatever produced it.

    The API's own handlers already answer in that form; this catches the rest: Django's 404 for
    an unknown path, django-ninja's 405, a 500 from an unexpected exception, a request refused
    before the API saw it (body too large). The original body is dropped, never passed on: an
    HTML debug page or a framework message could carry server paths.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or not request.path.startswith("/api/"):
            return response
        if response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE):
            return response
        status = response.status_code
        problem = problem_response(
            status=status,
            code=f"http_{status}",
            title=problem_title(status),
            detail=problem_detail(status),
        )
        # what the client needs to act on the error
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                problem[header] = response[header]
        return problem


class NoStoreMiddleware:
    """`Cache-Control: no-store` on every response that did not set its own caching.

    Pages and API answers carry patient data: neither a shared cache nor the browser's disk
    may keep them. Static files never reach this middleware (WhiteNoise, earlier in the chain,
    answers them with its long cache).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Cache-Control" not in response:
            add_never_cache_headers(response)
        return response
