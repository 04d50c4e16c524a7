"""Idle session timeout (等保 level 3): a session unused for 30 minutes is signed out; the forced
password change of an account an administrator created or reset."""

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from clinical_shell.errors import problem_response, problem_title

LAST_SEEN_KEY = "osteon_last_seen"
MUST_CHANGE_KEY = "osteon_must_change_password"

# The last-seen time is written back only when it moved by more than this [s]. Writing it on
# every request made every request UPDATE the session row in its own transaction (the load
# test's largest fixed cost). A session can therefore end up to this much *later* than
# OSTEON_IDLE_TIMEOUT_SECONDS after the true last request, never earlier: 60 s on 30 min.
LAST_SEEN_WRITE_STEP_SECONDS = 60


class IdleTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and hasattr(request, "session"):
            now = time.time()
            last = request.session.get(LAST_SEEN_KEY)
            if last is not None and now - float(last) > settings.OSTEON_IDLE_TIMEOUT_SECONDS:
                logout(request)
                request.idle_timed_out = True  # type: ignore[attr-defined]
            elif last is None or now - float(last) > LAST_SEEN_WRITE_STEP_SECONDS:
                request.session[LAST_SEEN_KEY] = now
        return self.get_response(request)


# while a password must be changed, only these paths answer (the rest redirect to the change)
_FORCED_CHANGE_OPEN = ("/accounts/", "/static/", "/i18n/", "/jsi18n/")


class ForcedPasswordChangeMiddleware:
    """An account whose password an administrator set sees nothing but the change page; the API
    answers 403 problem details (code password_change_required) until it is changed.

    The flag is put in the session at sign-in (no query per request); an administrator's later
    reset changes the password, which ends the session anyway."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            isinstance(user, User)
            and user.is_authenticated
            and not request.path.startswith(_FORCED_CHANGE_OPEN)
            and request.session.get(MUST_CHANGE_KEY)
        ):
            if request.path.startswith("/api/"):
                return problem_response(
                    status=403,
                    code="password_change_required",
                    title=problem_title(403),
                    detail=_("请先修改密码"),
                )
            return redirect("accounts:password_change")
        return self.get_response(request)
