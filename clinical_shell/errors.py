"""Domain errors and their one HTTP form: RFC 9457 problem details (`application/problem+json`)."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

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


_TITLES = {
    400: "请求无效 / bad request",
    401: "未认证 / not authenticated",
    403: "无权访问 / forbidden",
    404: "未找到 / not found",
    409: "冲突 / conflict",
    422: "数据校验失败 / validation failed",
    423: "账户已锁定 / locked",
}


def install_problem_handlers(api: NinjaAPI) -> None:
    """Every error the API returns, whatever raised it, has the same problem-details shape."""

    def on_domain(request: HttpRequest, exc: DomainError) -> HttpResponse:
        return problem_response(
            status=exc.status,
            code=exc.code,
            title=_TITLES.get(exc.status, "错误 / error"),
            detail=str(exc.message),
        )

    def on_validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return problem_response(
            status=422,
            code="validation_failed",
            title=_TITLES[422],
            detail="请求数据不符合要求 / the request data is invalid",
            errors=[dict(e) for e in exc.errors],
        )

    def on_auth(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return problem_response(
            status=401,
            code="not_authenticated",
            title=_TITLES[401],
            detail="需要登录或有效的访问令牌 / sign in or send a valid bearer token",
        )

    def on_http(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return problem_response(
            status=exc.status_code,
            code=f"http_{exc.status_code}",
            title=_TITLES.get(exc.status_code, "错误 / error"),
            detail=str(exc),
        )

    api.add_exception_handler(DomainError, on_domain)  # type: ignore[arg-type]
    api.add_exception_handler(ValidationError, on_validation)  # type: ignore[arg-type]
    api.add_exception_handler(AuthenticationError, on_auth)  # type: ignore[arg-type]
    api.add_exception_handler(HttpError, on_http)  # type: ignore[arg-type]
