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
# failure events written during this request (a list per request, appended to in place)
_failures: ContextVar[list[int]] = ContextVar("audit_failures")


def note_failure(event_id: int) -> None:
    failures = _failures.get(None)
    if failures is not None:
        failures.append(event_id)


def noted_failures() -> list[int]:
    return list(_failures.get([]))


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
        failures = _failures.set([])
        try:
            return self.get_response(request)
        finally:
            _failures.reset(failures)
            _origin.reset(token)
