"""What every socket of a live session checks: who is on the other end, again on every message,
and how fast they may send. Shared by the drawing and the voice sockets."""

import time
from typing import Any

from django.contrib.auth.models import User

from clinical_shell.audit.context import RequestOrigin, _origin
from clinical_shell.errors import DomainError
from clinical_shell.live.access import access_live_session
from clinical_shell.live.models import LiveSession

CLOSE_NOT_SIGNED_IN = 4401
CLOSE_FORBIDDEN = 4403


class TokenBucket:
    """``burst`` messages at once, then ``per_s`` a second."""

    def __init__(self, burst: int, per_s: float) -> None:
        self.burst = float(burst)
        self.per_s = per_s
        self.tokens = float(burst)
        self.refilled = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.refilled) * self.per_s)
        self.refilled = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def origin_of(scope: dict[str, Any]) -> RequestOrigin:
    """The audit origin (address, browser) of a websocket's handshake."""
    client = scope.get("client") or ("", 0)
    headers = dict(scope.get("headers") or [])
    return RequestOrigin(
        source_ip=str(client[0])[:64],
        user_agent=headers.get(b"user-agent", b"").decode("latin-1")[:300],
    )


def session_if_allowed(user: User, session_id: int, scope: dict[str, Any]) -> LiveSession | None:
    """The session if `user` may take part in it right now (refusals audited by the access
    function, with the socket's origin), else None. Asked per message: an invitee removed or a
    session ended a moment ago gets nothing more."""
    token = _origin.set(origin_of(scope))
    try:
        return access_live_session(user, session_id)
    except DomainError:
        return None
    finally:
        _origin.reset(token)
