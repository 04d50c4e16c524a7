"""Short-lived admission tokens for the relay, and the shell's control messages to it: both
HMAC-SHA256 with the secret the shell and the relay share.

The clinical shell (which knows who may watch which operation) issues a token when it opens
the viewer; the relay, which has no database, only checks it with the shared secret. Format::

    v1.<base64url(JSON {"u": user id, "r": room, "s": live session id, "iat": unix ms,
                        "exp": unix seconds})>.<base64url(HMAC)>

The HMAC covers ``v1.<payload>`` exactly as sent, so nothing is re-serialised before checking.
A token is checked when a viewer connects. A viewer already watching stays until it leaves, or
until the shell revokes it: a control message (``c1.<payload>.<HMAC>``, the same secret, another
version prefix, so a viewer's token is never a valid control message) tells the relay to close
the sockets of a (room, session, user) or a whole session and to refuse tokens for them issued
before that moment (`iat`). See docs/streaming.md "Revocation".
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
_CONTROL_VERSION = "c1"
# a control message only bridges "the shell sent it" and "the relay read it" [s]
CONTROL_TTL_S = 30
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
    session: str = ""  # the live session the token was issued for ("": none named)
    issued_at_ms: int = 0  # unix time [ms]; a revocation refuses tokens issued before it


def issue_token(
    *,
    secret: bytes,
    user_id: str,
    room: str,
    ttl_s: int = DEFAULT_TTL_S,
    session: str = "",
    now_s: float | None = None,
) -> str:
    """A token admitting ``user_id`` to ``room`` for ``ttl_s`` seconds (at most MAX_TTL_S), as
    a viewer of live session ``session`` (its recordings and revocations go by it)."""
    _check_secret(secret)
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s {ttl_s}: expected 1..{MAX_TTL_S}")
    now = time.time() if now_s is None else now_s
    claims = {"u": user_id, "r": room, "s": session, "iat": int(now * 1000)}
    claims["exp"] = int(now) + ttl_s
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signed = f"{_VERSION}.{payload}"
    return f"{signed}.{_b64(_mac(secret, signed))}"


def verify_token(*, secret: bytes, token: str, room: str, now_s: float | None = None) -> Grant:
    """The grant in ``token`` if it is genuine, unexpired and for ``room``; else TokenError."""
    claims = _signed_claims(secret=secret, token=token, version=_VERSION, wrong="malformed token")
    user_id, token_room, expires = claims.get("u"), claims.get("r"), claims.get("exp")
    session, issued = claims.get("s", ""), claims.get("iat", 0)
    if not (isinstance(user_id, str) and isinstance(token_room, str) and type(expires) is int):
        raise TokenError(CLOSE_UNAUTHENTICATED, "malformed token")
    if not (isinstance(session, str) and type(issued) is int):
        raise TokenError(CLOSE_UNAUTHENTICATED, "malformed token")
    _check_lifetime(expires, now_s)
    if not hmac.compare_digest(token_room.encode(), room.encode()):
        raise TokenError(CLOSE_FORBIDDEN, "token is for another room")
    return Grant(
        user_id=user_id,
        room=token_room,
        expires_at_s=expires,
        session=session,
        issued_at_ms=issued,
    )


def _signed_claims(*, secret: bytes, token: str, version: str, wrong: str) -> dict[str, object]:
    """The claims of ``token`` if it is ``<version>.<payload>.<HMAC>`` signed with ``secret``;
    else TokenError 4401 (``wrong`` when the token is not of this version at all)."""
    _check_secret(secret)
    # signature first: nothing in an unsigned payload is read
    parts = token.split(".")
    if not token.isascii() or len(parts) != 3 or parts[0] != version:
        raise TokenError(CLOSE_UNAUTHENTICATED, wrong)
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
    return claims


def _check_lifetime(expires_s: int, now_s: float | None) -> None:
    now = time.time() if now_s is None else now_s
    # the lifetime cap holds even for a token made by hand with the secret
    if expires_s <= now:
        raise TokenError(CLOSE_UNAUTHENTICATED, "token expired")
    if expires_s > now + MAX_TTL_S:
        raise TokenError(CLOSE_UNAUTHENTICATED, "token lifetime too long")


class ControlError(Exception):
    """A control message the relay does not act on; the reason goes back to the sender."""


def sign_control(*, secret: bytes, message: dict[str, object], now_s: float | None = None) -> str:
    """``message`` (JSON-able, with a "kind") signed for the relay, valid CONTROL_TTL_S."""
    _check_secret(secret)
    now = time.time() if now_s is None else now_s
    claims = {**message, "at": int(now * 1000), "exp": int(now) + CONTROL_TTL_S}
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signed = f"{_CONTROL_VERSION}.{payload}"
    return f"{signed}.{_b64(_mac(secret, signed))}"


def verify_control(*, secret: bytes, text: str, now_s: float | None = None) -> dict[str, object]:
    """The claims of a genuine, fresh control message (with "at": unix ms); else ControlError."""
    _check_secret(secret)
    now = time.time() if now_s is None else now_s
    parts = text.split(".")
    if not text.isascii() or len(parts) != 3 or parts[0] != _CONTROL_VERSION:
        raise ControlError("malformed control message")
    signed = f"{parts[0]}.{parts[1]}"
    try:
        given = _unb64(parts[2])
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error):
        raise ControlError("malformed control message") from None
    if not hmac.compare_digest(given, _mac(secret, signed)):
        raise ControlError("invalid control signature")
    if not isinstance(claims, dict) or type(claims.get("exp")) is not int:
        raise ControlError("malformed control message")
    if type(claims.get("at")) is not int or not isinstance(claims.get("kind"), str):
        raise ControlError("malformed control message")
    if not now < claims["exp"] <= now + CONTROL_TTL_S + 1:
        raise ControlError("control message expired")
    return claims


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the relay secret has {len(secret)} bytes, needs {MIN_SECRET_BYTES}")


def _mac(secret: bytes, signed: str) -> bytes:
    return hmac.new(secret, signed.encode("ascii"), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---- publishing: a station sends its encoded view to a relay stream ------------------------------

_PUBLISH_VERSION = "p1"


@dataclass(frozen=True)
class PublishGrant:
    station_id: str
    room: str
    stream: str
    expires_at_s: int  # unix time
    # unix time [ms]; the shell's revocation of the stream refuses tokens issued before it
    issued_at_ms: int = 0


def issue_publish_token(
    *,
    secret: bytes,
    station_id: str,
    room: str,
    stream: str,
    ttl_s: int = DEFAULT_TTL_S,
    now_s: float | None = None,
) -> str:
    """A token letting station ``station_id`` publish into ``room``/``stream`` (every quality
    of it) for ``ttl_s`` seconds: ``p1.<base64url(JSON {"st", "r", "k", "iat", "exp"})>.<HMAC>``.

    Another version prefix than a viewer's token, so neither is ever taken for the other. The
    relay renews it for a publisher it admitted, and refuses every one issued before the shell
    revoked the stream (control ``revoke_publish``: "iat" against the message's time)."""
    _check_secret(secret)
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s {ttl_s}: expected 1..{MAX_TTL_S}")
    now = time.time() if now_s is None else now_s
    claims = {"st": station_id, "r": room, "k": stream, "iat": int(now * 1000)}
    claims["exp"] = int(now) + ttl_s
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signed = f"{_PUBLISH_VERSION}.{payload}"
    return f"{signed}.{_b64(_mac(secret, signed))}"


def verify_publish_token(
    *, secret: bytes, token: str, room: str, stream: str, now_s: float | None = None
) -> PublishGrant:
    """The grant in a genuine, unexpired publish token for exactly ``room``/``stream``; else
    TokenError (4401 not a valid publish token, 4403 for another room or stream)."""
    claims = _signed_claims(
        secret=secret, token=token, version=_PUBLISH_VERSION, wrong="not a publish token"
    )
    station, token_room, token_stream = claims.get("st"), claims.get("r"), claims.get("k")
    expires, issued = claims.get("exp"), claims.get("iat", 0)
    if not (
        isinstance(station, str) and isinstance(token_room, str) and isinstance(token_stream, str)
    ):
        raise TokenError(CLOSE_UNAUTHENTICATED, "malformed token")
    if not (type(expires) is int and type(issued) is int):
        raise TokenError(CLOSE_UNAUTHENTICATED, "malformed token")
    _check_lifetime(expires, now_s)
    same_room = hmac.compare_digest(token_room.encode(), room.encode())
    if not (same_room and hmac.compare_digest(token_stream.encode(), stream.encode())):
        raise TokenError(CLOSE_FORBIDDEN, "token is for another room or stream")
    return PublishGrant(
        station_id=station,
        room=token_room,
        stream=token_stream,
        expires_at_s=expires,
        issued_at_ms=issued,
    )
