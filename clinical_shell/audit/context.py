"""Where the current request comes from, for audit events written deep inside services."""

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse


@dataclass(frozen=True)
class RequestOrigin:
    source_ip: str = ""
    user_agent: str = ""


_NO_ORIGIN = RequestOrigin()
_origin: ContextVar[RequestOrigin] = ContextVar("audit_origin")


def current_origin() -> RequestOrigin:
    return _origin.get(_NO_ORIGIN)


def origin_of(request: HttpRequest) -> RequestOrigin:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it
    return RequestOrigin(
        source_ip=str(request.META.get("REMOTE_ADDR", ""))[:64],
        user_agent=str(request.META.get("HTTP_USER_AGENT", ""))[:300],
    )


class AuditOriginMiddleware:
    """Makes the request's address and user agent available to `audit.services.record`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _origin.set(origin_of(request))
        try:
            return self.get_response(request)
        finally:
            _origin.reset(token)
