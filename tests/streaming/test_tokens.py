"""Admission tokens: what the shell issues, the relay accepts, and what it refuses."""

import base64
import json

import pytest

from streaming.tokens import (
    CLOSE_FORBIDDEN,
    CLOSE_UNAUTHENTICATED,
    CONTROL_TTL_S,
    MAX_TTL_S,
    ControlError,
    Grant,
    PublishGrant,
    TokenError,
    issue_publish_token,
    issue_token,
    sign_control,
    verify_control,
    verify_publish_token,
    verify_token,
)

SECRET = b"s" * 32
NOW_S = 1_800_000_000.0


def refused(token: str, *, room: str = "or-3", now_s: float = NOW_S) -> TokenError:
    with pytest.raises(TokenError) as caught:
        verify_token(secret=SECRET, token=token, room=room, now_s=now_s)
    return caught.value


def test_it_admits_the_user_to_the_room_until_expiry() -> None:
    token = issue_token(
        secret=SECRET, user_id="expert-1", room="or-3", ttl_s=60, session="41", now_s=NOW_S
    )
    grant = verify_token(secret=SECRET, token=token, room="or-3", now_s=NOW_S + 59)
    assert grant == Grant(
        user_id="expert-1",
        room="or-3",
        expires_at_s=int(NOW_S) + 60,
        session="41",
        issued_at_ms=int(NOW_S * 1000),
    )


def test_control_messages_are_signed_fresh_and_apart_from_tokens() -> None:
    message = {"kind": "revoke", "room": "or-3", "session": "41", "user": "7"}
    signed = sign_control(secret=SECRET, message=message, now_s=NOW_S)
    claims = verify_control(secret=SECRET, text=signed, now_s=NOW_S + 1)
    assert claims == {**message, "at": int(NOW_S * 1000), "exp": int(NOW_S) + CONTROL_TTL_S}
    with pytest.raises(ControlError, match="expired"):
        verify_control(secret=SECRET, text=signed, now_s=NOW_S + CONTROL_TTL_S)
    with pytest.raises(ControlError, match="signature"):
        verify_control(secret=b"t" * 32, text=signed, now_s=NOW_S)
    # a viewer's token, though signed with the same secret, is not a control message
    token = issue_token(secret=SECRET, user_id="7", room="or-3", now_s=NOW_S)
    with pytest.raises(ControlError, match="malformed"):
        verify_control(secret=SECRET, text=token, now_s=NOW_S)
    # nor is a control message a token
    with pytest.raises(TokenError, match="malformed"):
        verify_token(secret=SECRET, token=signed, room="or-3", now_s=NOW_S)


def test_it_refuses_an_expired_token() -> None:
    token = issue_token(secret=SECRET, user_id="expert-1", room="or-3", ttl_s=60, now_s=NOW_S)
    error = refused(token, now_s=NOW_S + 60)
    assert (error.close_code, error.reason) == (CLOSE_UNAUTHENTICATED, "token expired")


def test_it_refuses_a_token_for_another_room() -> None:
    token = issue_token(secret=SECRET, user_id="expert-1", room="or-9", now_s=NOW_S)
    error = refused(token)
    assert (error.close_code, error.reason) == (CLOSE_FORBIDDEN, "token is for another room")


def test_it_refuses_tampered_claims_and_signatures() -> None:
    token = issue_token(secret=SECRET, user_id="expert-1", room="or-9", now_s=NOW_S)
    version, payload, mac = token.split(".")
    # the room rewritten in the payload: the signature no longer matches
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["r"] = "or-3"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert refused(f"{version}.{forged}.{mac}").reason == "invalid token signature"
    # a signature from another secret
    other = issue_token(secret=b"t" * 32, user_id="expert-1", room="or-3", now_s=NOW_S)
    assert refused(other).reason == "invalid token signature"
    for bad in ("", "v1", "v2.a.b", f"{version}.{payload}.%%%", f"{token}.x", "v1.ä.b"):
        error = refused(bad)
        assert error.close_code == CLOSE_UNAUTHENTICATED


def test_it_refuses_a_lifetime_over_the_cap_even_if_signed() -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        issue_token(secret=SECRET, user_id="u", room="or-3", ttl_s=MAX_TTL_S + 1)
    long_lived = issue_token(secret=SECRET, user_id="u", room="or-3", now_s=NOW_S + 3600)
    assert refused(long_lived).reason == "token lifetime too long"


def test_it_refuses_a_short_secret() -> None:
    with pytest.raises(ValueError, match="needs 32"):
        issue_token(secret=b"short", user_id="u", room="or-3")


def test_publish_tokens_carry_when_they_were_issued_and_are_apart_from_viewer_tokens() -> None:
    token = issue_publish_token(
        secret=SECRET, station_id="7", room="station-7", stream="view", now_s=NOW_S
    )
    grant = verify_publish_token(
        secret=SECRET, token=token, room="station-7", stream="view", now_s=NOW_S + 59
    )
    assert grant == PublishGrant(
        station_id="7",
        room="station-7",
        stream="view",
        expires_at_s=int(NOW_S) + 60,
        issued_at_ms=int(NOW_S * 1000),
    )
    viewer = issue_token(secret=SECRET, user_id="7", room="station-7", now_s=NOW_S)
    with pytest.raises(TokenError, match="not a publish token"):
        verify_publish_token(
            secret=SECRET, token=viewer, room="station-7", stream="view", now_s=NOW_S
        )
    with pytest.raises(TokenError, match="malformed token"):
        verify_token(secret=SECRET, token=token, room="station-7", now_s=NOW_S)
