"""Short-lived admission tokens for the relay: HMAC-SHA256 over user, room and expiry.

The clinical shell (which knows who may watch which operation) issues a token when it opens
the viewer; the relay, which has no database, only checks it with the shared secret. Format::

    v1.<base64url(JSON {"u": user id, "r": room, "exp": unix seconds})>.<base64url(HMAC)>

The HMAC covers ``v1.<payload>`` exactly as sent, so nothing is re-serialised before checking.
A token is checked when a viewer connects; a viewer already watching stays until it leaves.
"""

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

# a token only bridges "the shell opened the page" and "the page connected" [s]
DEFAULT_TTL_S = 60
MAX_TTL_S = 600
# a secret shorter than the HMAC output would be the weak point [bytes]
MIN_SECRET_BYTES = 32
_VERSION = "v1"
# WebSocket close codes (4000-4999 are the application's): as HTTP 401 and 403
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class TokenError(Exception):
    """The token does not admit this viewer; ``close_code`` and ``reason`` go to the viewer."""

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason


@dataclass(frozen=True)
class Grant:
    user_id: str
    room: str
    expires_at_s: int  # unix time


def issue_token(
    *,
    secret: bytes,
    user_id: str,
    room: str,
    ttl_s: int = DEFAULT_TTL_S,
    now_s: float | None = None,
) -> str:
    """A token admitting ``user_id`` to ``room`` for ``ttl_s`` seconds (at most MAX_TTL_S)."""
    _check_secret(secret)
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s {ttl_s}: expected 1..{MAX_TTL_S}")
    now = time.time() if now_s is None else now_s
    claims = {"u": user_id, "r": room, "exp": int(now) + ttl_s}
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signed = f"{_VERSION}.{payload}"
    return f"{signed}.{_b64(_mac(secret, signed))}"


def verify_token(*, secret: bytes, token: str, room: str, now_s: float | None = None) -> Grant:
    """The grant in ``token`` if it is genuine, unexpired and for ``room``; else TokenError."""
    _check_secret(secret)
    now = time.time() if now_s is None else now_s
    # signature first: nothing in an unsigned payload is read
    parts = token.split(".")
    if not token.isascii() or len(parts) != 3 or parts[0] != _VERSION:
        raise TokenError(CLOSE_UNAUTHENTICATED, "malformed token")
    signed = f"{parts[0]}.{parts[1]}"
    try:
        given = _unb64(parts[2])
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error):
        raise TokenError(CLOSE_UNAUTHENTICATED, "malformed token") from None
    if not hmac.compare_digest(given, _mac(secret, signed)):
        raise TokenError(CLOSE_UNAUTHENTICATED, "invalid token signature")
    if not isinstance(claims, dict):
        raise TokenError(CLOSE_UNAUTHENTICATED, "malformed token")
    user_id, token_room, expires = claims.get("u"), claims.get("r"), claims.get("exp")
    if not (isinstance(user_id, str) and isinstance(token_room, str) and type(expires) is int):
        raise TokenError(CLOSE_UNAUTHENTICATED, "malformed token")
    # the lifetime cap holds even for a token made by hand with the secret
    if expires <= now:
        raise TokenError(CLOSE_UNAUTHENTICATED, "token expired")
    if expires > now + MAX_TTL_S:
        raise TokenError(CLOSE_UNAUTHENTICATED, "token lifetime too long")
    if not hmac.compare_digest(token_room.encode(), room.encode()):
        raise TokenError(CLOSE_FORBIDDEN, "token is for another room")
    return Grant(user_id=user_id, room=token_room, expires_at_s=expires)


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the relay secret has {len(secret)} bytes, needs {MIN_SECRET_BYTES}")


def _mac(secret: bytes, signed: str) -> bytes:
    return hmac.new(secret, signed.encode("ascii"), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
