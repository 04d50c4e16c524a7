"""Voice signalling: who may join (asked again on every message), hostile frames refused, a
signal reaching only the peer it names, a participant removed or a session ended hung up on, and
the TURN credentials coturn checks. The browsers' audio itself is tested in
tests/e2e/test_live_voice.py."""

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from pytest_django.fixtures import Settings
from session_socket import SessionSocket, open_socket
from shell_personas import Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.env import SettingsError, ice_urls
from clinical_shell.live import ice, services
from clinical_shell.live.models import LiveSession
from clinical_shell.live.voice import MAX_SDP_CHARS, parse_frame

PEER = "0123456789abcdef"
OFFER = {
    "type": "signal",
    "to": PEER,
    "kind": "offer",
    "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n",
}
CANDIDATE = {
    "type": "signal",
    "to": PEER,
    "kind": "candidate",
    "candidate": "candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host",
    "sdp_mid": "0",
    "sdp_mline_index": 0,
}


@pytest.mark.parametrize(
    "frame",
    [
        None,
        [],
        {"type": "hello"},
        {**OFFER, "to": "../../other"},
        {**OFFER, "to": PEER.upper()},
        {**OFFER, "kind": "bye"},
        {**OFFER, "sdp": ""},
        {**OFFER, "sdp": "x" * (MAX_SDP_CHARS + 1)},
        {**OFFER, "sdp": {"nested": 1}},
        {**CANDIDATE, "candidate": "c" * 1001},
        {**CANDIDATE, "sdp_mline_index": True},
        {**CANDIDATE, "sdp_mline_index": -1},
        {**CANDIDATE, "sdp_mid": 7},
        {"type": "mute", "muted": "yes"},
    ],
)
def test_a_hostile_signalling_frame_is_refused(frame: Any) -> None:
    assert parse_frame(frame) is None


def test_a_signal_is_passed_on_with_only_the_fields_checked() -> None:
    assert parse_frame({**OFFER, "from": "forged", "html": "<script>"}) == {
        "type": "signal",
        "to": PEER,
        "kind": "offer",
        "sdp": OFFER["sdp"],
    }
    assert parse_frame(CANDIDATE) == CANDIDATE
    assert parse_frame({"type": "mute", "muted": True}) == {"type": "muted", "muted": True}


def _voice(session: LiveSession) -> str:
    return f"/ws/live/sessions/{session.pk}/voice/"


async def _frames_until(socket: SessionSocket, kind: str) -> dict[str, Any]:
    while True:
        frame = await socket.next()
        if frame.get("type") == kind or "closed" in frame:
            return frame


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_signal_reaches_only_the_peer_it_names_and_an_outsider_is_shut_out(
    personas: Personas, make_session: Callable[..., LiveSession]
) -> None:
    session = await sync_to_async(make_session)(
        invitees=[personas.center_surgeon, personas.committee_member]
    )
    room = _voice(session)
    creator = await open_socket(room, personas.county_surgeon)
    creator_id = (await creator.next())["peer"]
    expert = await open_socket(room, personas.center_surgeon)
    welcome = await expert.next()
    expert_id = welcome["peer"]
    assert welcome["ice_servers"] == [] and welcome["max_peers"] >= 3
    # the one already in the call hears of the newcomer (and offers to it)
    expert_name = "赵中心"
    assert await creator.next() == {"type": "joined", "peer": expert_id, "name": expert_name}
    third = await open_socket(room, personas.committee_member)
    third_id = (await third.next())["peer"]
    await _frames_until(creator, "joined")
    await _frames_until(expert, "joined")

    await creator.send_json({**OFFER, "to": expert_id})
    got = await expert.next()
    assert got == {
        **OFFER,
        "to": expert_id,
        "from": creator_id,
        "name": "王县医",
    }
    assert await third.receive_nothing(0.3)

    outsider = await open_socket(room, personas.outsider)
    assert await outsider.next() == {"closed": 4403}
    anonymous = await open_socket(room, None)
    assert await anonymous.next() == {"closed": 4401}

    joins = await sync_to_async(
        lambda: sorted(
            AuditEvent.objects.filter(
                action="live.voice.join", target_id=str(session.pk)
            ).values_list("actor_username", flat=True)
        )
    )()
    members = (personas.county_surgeon, personas.center_surgeon, personas.committee_member)
    assert joins == sorted(u.username for u in members)
    await creator.close_socket()
    assert await expert.next() == {"type": "left", "peer": creator_id}
    assert third_id != expert_id
    for socket in (expert, third):
        await socket.close_socket()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_invitee_removed_is_hung_up_on_and_an_ended_session_closes_every_voice(
    personas: Personas, make_session: Callable[..., LiveSession]
) -> None:
    session = await sync_to_async(make_session)()
    creator = await open_socket(_voice(session), personas.county_surgeon)
    await creator.next()
    expert = await open_socket(_voice(session), personas.center_surgeon)
    expert_id = (await expert.next())["peer"]
    await _frames_until(creator, "joined")

    await sync_to_async(services.remove_invitee)(
        actor=personas.county_surgeon, session=session, user_id=personas.center_surgeon.pk
    )
    # the removed expert's socket closes now; the others are told to hang up on them
    assert await _frames_until(expert, "never") == {"closed": 4403}
    await expert.close_socket()  # what the ASGI server sends the app once the socket is closed
    assert await creator.next() == {"type": "left", "peer": expert_id}

    await sync_to_async(services.end_live_session)(actor=personas.county_surgeon, session=session)
    assert await _frames_until(creator, "never") == {"closed": 4403}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_message_after_losing_access_closes_the_socket(
    personas: Personas, make_session: Callable[..., LiveSession]
) -> None:
    session = await sync_to_async(make_session)()
    expert = await open_socket(_voice(session), personas.center_surgeon)
    await expert.next()
    # taken off the list behind the socket's back (no notice delivered): the next message is
    # checked again and refused
    await sync_to_async(lambda: session.invitees.remove(personas.center_surgeon))()
    await expert.send_json({"type": "mute", "muted": True})
    assert await expert.next() == {"closed": 4403}


def test_turn_credentials_are_the_ones_coturn_checks(personas: Any, settings: Settings) -> None:
    settings.OSTEON_STUN_URLS = ("stun:stun.cx-center.example:3478",)
    settings.OSTEON_TURN_URLS = ("turn:turn.cx-center.example:3478?transport=udp",)
    settings.OSTEON_TURN_SECRET = "coturn-static-auth-secret"
    settings.OSTEON_TURN_CREDENTIAL_TTL_S = 600

    class U:
        pk = 42

    stun, turn = ice.ice_servers(U(), now_s=1_800_000_000)  # type: ignore[arg-type]
    assert stun == {"urls": ["stun:stun.cx-center.example:3478"]}
    assert turn["username"] == "1800000600:42"
    # coturn's use-auth-secret: base64(HMAC-SHA1(static-auth-secret, username))
    expected = hmac.new(b"coturn-static-auth-secret", b"1800000600:42", hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(expected).decode()
    assert turn["urls"] == ["turn:turn.cx-center.example:3478?transport=udp"]


def test_ice_urls_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSTEON_TURN_URLS", "turn:a.example:3478, turns:b.example:5349")
    assert ice_urls("OSTEON_TURN_URLS", ("turn:", "turns:")) == (
        "turn:a.example:3478",
        "turns:b.example:5349",
    )
    for bad in ("http://a.example", "turn:", "stun:a.example"):
        monkeypatch.setenv("OSTEON_TURN_URLS", bad)
        with pytest.raises(SettingsError):
            ice_urls("OSTEON_TURN_URLS", ("turn:", "turns:"))
