"""Domain errors and their one HTTP form: RFC 9457 problem details (`application/problem+json`)."""

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DataError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://osteon.invalid/problems/"


class DomainError(Exception):
    """A rule of the domain said no. `code` is stable for machines; `message` is for people."""

    status = 409

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status


class NotFoundError(DomainError):
    status = 404


class PermissionDeniedError(DomainError):
    # 404 rather than 403 would hide existence; the shell is internal, so say what is refused
    status = 403


class ProblemOut(Schema):
    """RFC 9457 problem details as the API documents them."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None


def problem_response(
    *, status: int, code: str, title: str, detail: str, errors: list[dict[str, Any]] | None = None
) -> HttpResponse:
    import json

    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    return HttpResponse(
        json.dumps(body, ensure_ascii=False, default=str),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )


# evaluated per response, in the language the middleware activated for the request
_TITLES = {
    400: _("请求无效"),
    401: _("未认证"),
    403: _("无权访问"),
    404: _("未找到"),
    409: _("冲突"),
    422: _("数据校验失败"),
    423: _("账户已锁定"),
    405: _("不支持该请求方法"),
    413: _("请求内容过大"),
    429: _("请求过于频繁"),
    500: _("服务器内部错误"),
}
_DEFAULT_TITLE = _("错误")

# details for errors raised outside the API's handlers (ApiProblemDetailsMiddleware): fixed
# words, never the original body, which may be an HTML page or carry server paths
_DETAILS = {
    400: _("请求无效"),
    401: _("需要登录或有效的访问令牌"),
    403: _("无权访问"),
    404: _("请求的资源不存在"),
    405: _("该地址不支持此请求方法"),
    413: _("请求内容超过允许的大小"),
    429: _("请求过于频繁，请稍后再试"),
    500: _("服务器内部错误，已记录，请稍后再试"),
}

logger = logging.getLogger(__name__)

# the messages django-ninja raises itself (in English); anything else passes through as written
_NINJA_DETAILS = {
    "CSRF check Failed": _("CSRF 校验失败，请刷新页面后重试"),
    "Cannot parse request body": _("无法解析请求内容"),
}


def problem_title(status: int) -> str:
    return str(_TITLES.get(status, _DEFAULT_TITLE))


def problem_detail(status: int) -> str:
    """Fixed words for a bare HTTP status, in the request's language."""
    return str(_DETAILS.get(status, _TITLES.get(status, _DEFAULT_TITLE)))


def install_problem_handlers(api: NinjaAPI) -> None:
    """Every error the API returns, whatever raised it, has the same problem-details shape.

    Titles and details are in the request's language (the locale middleware has activated it);
    a DomainError's message was translated where it was raised, during the same request.
    """

    def on_domain(request: HttpRequest, exc: DomainError) -> HttpResponse:
        from clinical_shell.audit.services import record_refusal_if_missing

        record_refusal_if_missing(request, exc)
        return problem_response(
            status=exc.status,
            code=exc.code,
            title=problem_title(exc.status),
            detail=str(exc.message),
        )

    def on_validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return problem_response(
            status=422,
            code="validation_failed",
            title=problem_title(422),
            detail=gettext("请求数据不符合要求"),
            errors=[dict(e) for e in exc.errors],
        )

    def on_auth(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return problem_response(
            status=401,
            code="not_authenticated",
            title=problem_title(401),
            detail=gettext("需要登录或有效的访问令牌"),
        )

    def on_http(request: HttpRequest, exc: HttpError) -> HttpResponse:
        message = str(exc)
        known = _NINJA_DETAILS.get(message.split(" (", 1)[0])
        response = problem_response(
            status=exc.status_code,
            code=f"http_{exc.status_code}",
            title=problem_title(exc.status_code),
            detail=str(known) if known is not None else message,
        )
        if isinstance(exc, Throttled) and exc.wait:
            response["Retry-After"] = str(int(exc.wait))
        return response

    def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return problem_response(
            status=413, code="body_too_large", title=problem_title(413), detail=problem_detail(413)
        )

    def on_suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
        return problem_response(
            status=400, code="bad_request", title=problem_title(400), detail=problem_detail(400)
        )

    def on_overflow(request: HttpRequest, exc: OverflowError) -> HttpResponse:
        # an id beyond the database's integer range (SQLite raises this): no such row
        return problem_response(
            status=404, code="not_found", title=problem_title(404), detail=problem_detail(404)
        )

    def on_data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
        # a value the database refuses (PostgreSQL: an integer out of range) that no schema
        # caught: the client's input, not the server, is at fault
        logger.warning("database refused input in %s %s: %s", request.method, request.path, exc)
        return problem_response(
            status=422,
            code="invalid_value",
            title=problem_title(422),
            detail=gettext("请求中的数值超出允许范围"),
        )

    def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        # logged in full for the operators; the client learns only that it failed
        logger.exception("unhandled error in %s %s", request.method, request.path)
        return problem_response(
            status=500, code="internal_error", title=problem_title(500), detail=problem_detail(500)
        )

    api.add_exception_handler(DomainError, on_domain)  # type: ignore[arg-type]
    api.add_exception_handler(ValidationError, on_validation)  # type: ignore[arg-type]
    api.add_exception_handler(AuthenticationError, on_auth)  # type: ignore[arg-type]
    api.add_exception_handler(HttpError, on_http)  # type: ignore[arg-type]
    api.add_exception_handler(RequestDataTooBig, on_too_big)  # type: ignore[arg-type]
    api.add_exception_handler(SuspiciousOperation, on_suspicious)  # type: ignore[arg-type]
    api.add_exception_handler(OverflowError, on_overflow)  # type: ignore[arg-type]
    api.add_exception_handler(DataError, on_data_error)  # type: ignore[arg-type]
    api.add_exception_handler(Exception, on_unexpected)  # type: ignore[arg-type]
