"""Who may try a password now: per client address and overall (django-axes), progressive delay
per sign-in name and per client, and bounds on concurrent password hashing (admission per
process, slots per thread).

Every refusal here is decided before a password is looked at, and none depends on whether the
name typed belongs to an account.
"""

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from clinical_shell.accounts.models import SignInThrottle
from clinical_shell.errors import DomainError, problem_response, problem_title


class ThrottledError(DomainError):
    """Too many attempts: answer 429 with Retry-After (seconds)."""

    status = 429

    def __init__(self, code: str, message: str, *, retry_after_s: int) -> None:
        super().__init__(code, message)
        self.retry_after_s = max(1, retry_after_s)


class HashingBusyError(DomainError):
    """Every password-hash slot is taken: answer 503 at once rather than queue without bound."""

    status = 503
    retry_after_s = 1


def client_ip(request: HttpRequest) -> str:
    """The client's address. REMOTE_ADDR only: a client-sent X-Forwarded-For is never believed;
    behind deploy/nginx, uvicorn's --proxy-headers has put nginx's $remote_addr there."""
    return str(request.META.get("REMOTE_ADDR", "") or "unknown")[:64]


def account_key(username: str) -> str:
    return "account:" + username.strip().casefold()[:150]


def client_key(client: str) -> str:
    return "client:" + client[:150]


def _too_many(retry_after_s: int) -> ThrottledError:
    return ThrottledError(
        "too_many_attempts",
        _("登录尝试过于频繁，请 %(seconds)d 秒后再试") % {"seconds": max(1, retry_after_s)},
        retry_after_s=retry_after_s,
    )


# ---- per address and overall (django-axes) ---------------------------------------------------


def _cooloff() -> timedelta:
    return timedelta(seconds=settings.OSTEON_SIGNIN_CLIENT_COOLOFF_S)


def check_overall() -> None:
    """Raise ThrottledError while all addresses together failed too often lately."""
    since = timezone.now() - _cooloff()
    recent = AccessAttempt.objects.filter(attempt_time__gte=since)
    total = recent.aggregate(n=Sum("failures_since_start"))["n"] or 0
    if total >= settings.OSTEON_SIGNIN_GLOBAL_FAILURES:
        raise _too_many(settings.OSTEON_SIGNIN_CLIENT_COOLOFF_S)


def check_client_allowed(request: HttpRequest) -> None:
    """Raise ThrottledError when this address, or everyone together, failed too often lately."""
    check_overall()
    if not AxesProxyHandler.is_allowed(request, {}):
        raise _too_many(_client_retry_after(request))


def _client_retry_after(request: HttpRequest) -> int:
    last = (
        AccessAttempt.objects.filter(ip_address=client_ip(request))
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    if not isinstance(last, datetime):
        return 1
    return math.ceil((last + _cooloff() - timezone.now()).total_seconds())


def record_client_failure(request: HttpRequest, username: str) -> None:
    """Count a failure against the address (axes listens to Django's user_login_failed)."""
    user_login_failed.send(
        sender=__name__, credentials={"username": username[:150]}, request=request
    )


def axes_lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: Any
) -> HttpResponse:
    """axes' lockout answer (AXES_LOCKOUT_CALLABLE): our 429 with Retry-After, page or problem."""
    return throttled_response(request, _too_many(_client_retry_after(request)))


def throttled_response(
    request: HttpRequest, exc: ThrottledError | HashingBusyError
) -> HttpResponse:
    if request.path.startswith("/api/"):
        response = problem_response(
            status=exc.status, code=exc.code, title=problem_title(exc.status), detail=exc.message
        )
    else:
        response = render(
            request,
            "accounts/sign_in.html",
            {"form": None, "error": exc.message, "throttled": True},
            status=exc.status,
        )
    response["Retry-After"] = str(exc.retry_after_s)
    return response


# ---- progressive delay per sign-in name and per client ---------------------------------------


@dataclass(frozen=True)
class Standing:
    failures: int
    next_attempt_at: datetime | None
    locked: bool


def standing(key: str) -> Standing:
    row = SignInThrottle.objects.filter(key=key).first()
    if row is None:
        return Standing(0, None, False)
    return Standing(row.failures, row.next_attempt_at, row.locked_at is not None)


def check_delay(*keys: str) -> None:
    """Raise ThrottledError while any of the keys must still wait after its last failure."""
    now = timezone.now()
    waits = [
        (row.next_attempt_at - now).total_seconds()
        for row in SignInThrottle.objects.filter(key__in=keys, next_attempt_at__gt=now)
        if row.next_attempt_at is not None
    ]
    if waits:
        raise _too_many(math.ceil(max(waits)))


def _delay_after(failures: int, free: int) -> timedelta:
    if failures <= free:
        return timedelta(0)
    return timedelta(seconds=min(settings.OSTEON_SIGNIN_MAX_DELAY_S, 2 ** (failures - free)))


@transaction.atomic
def count_failure(key: str, *, free: int, window_s: int, lock_at: int | None = None) -> bool:
    """Add a failure to `key`, set its next allowed attempt; return True if this one locked it.

    A run of failures whose last one is older than `window_s` is forgotten first."""
    now = timezone.now()
    row, _created = SignInThrottle.objects.select_for_update().get_or_create(key=key)
    window = timedelta(seconds=window_s)
    if row.last_failure_at is not None and now - row.last_failure_at > window:
        row.failures = 0  # an old run of failures is forgotten
    row.failures += 1
    row.last_failure_at = now
    delay = _delay_after(row.failures, free)
    row.next_attempt_at = now + delay if delay else None
    newly_locked = lock_at is not None and row.failures >= lock_at and row.locked_at is None
    if newly_locked:
        row.locked_at = now
    row.save()
    return newly_locked


def clear(key: str) -> None:
    """Forget the failures of `key` (a successful sign-in, an unlock)."""
    SignInThrottle.objects.filter(key=key).delete()


def is_locked(key: str) -> bool:
    return SignInThrottle.objects.filter(key=key, locked_at__isnull=False).exists()


# ---- bounded password hashing -----------------------------------------------------------------

_slots_lock = threading.Lock()
_slots: threading.BoundedSemaphore | None = None
_slots_size = 0


def _semaphore() -> threading.BoundedSemaphore:
    global _slots, _slots_size
    size = max(1, int(settings.OSTEON_PASSWORD_HASH_CONCURRENCY))
    with _slots_lock:
        if _slots is None or _slots_size != size:
            # resized only when the setting changes (tests); never while hashes are in flight
            _slots, _slots_size = threading.BoundedSemaphore(size), size
        return _slots


@contextmanager
def hashing_slot() -> Iterator[None]:
    """Hold one of the process's password-hash slots, or raise HashingBusyError after the wait.

    Sync views run in threads (also under ASGI), so a thread semaphore bounds them all."""
    slots = _semaphore()
    if not slots.acquire(timeout=float(settings.OSTEON_PASSWORD_HASH_WAIT_S)):
        raise HashingBusyError("sign_in_busy", _("登录服务繁忙，请稍后再试"))
    try:
        yield
    finally:
        slots.release()


# ---- admission: how many password-checking requests a process takes in at once ----------------

# POSTs to these run a password hash (the second-factor page does not)
_HASHING_PATHS = frozenset({"/accounts/sign-in/", "/accounts/unlock/", "/accounts/password/"})
_admitted_lock = threading.Lock()
_admitted = 0


def _enter() -> bool:
    global _admitted
    with _admitted_lock:
        if _admitted >= max(1, int(settings.OSTEON_PASSWORD_HASH_QUEUE)):
            return False
        _admitted += 1
        return True


def _leave() -> None:
    global _admitted
    with _admitted_lock:
        _admitted -= 1


def _busy() -> HttpResponse:
    # answered before sessions, language and the database: fixed words in both languages
    response = HttpResponse(
        "登录服务繁忙，请稍后再试 / Sign-in is busy: try again in a moment",
        status=503,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = "1"
    return response


class SignInAdmissionMiddleware:
    """Refuses a password-checking request at once (503 + Retry-After) while
    OSTEON_PASSWORD_HASH_QUEUE of them are already in the process, waiting or hashing.

    Under uvicorn Django runs every sync view in one thread per process, so requests queue
    before `hashing_slot` is reached; this counter sits first in MIDDLEWARE and runs in the
    event loop, so the queue itself is bounded. `hashing_slot` bounds threads (WSGI, tests)."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        if request.method != "POST" or request.path not in _HASHING_PATHS:
            return self.get_response(request)
        if not _enter():
            return _busy()
        try:
            return self.get_response(request)
        finally:
            _leave()

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or request.path not in _HASHING_PATHS:
            response: HttpResponse = await self.get_response(request)
            return response
        if not _enter():
            return _busy()
        try:
            response = await self.get_response(request)
            return response
        finally:
            _leave()
