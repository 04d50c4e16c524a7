"""Idle session timeout (等保 level 3): a session unused for 30 minutes is signed out."""

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

LAST_SEEN_KEY = "osteon_last_seen"

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
