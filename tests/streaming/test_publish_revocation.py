"""Revoking a published stream (control ``revoke_publish``, sent by the shell when it stops a
station's stream): the relay closes the publisher now (4403 "publishing revoked"), which does
not come back, and refuses every publish token for the stream issued before, the shell's and
the ones the relay renewed, though unexpired; a token issued after admits; another stream is
untouched; a forged, stale or malformed message revokes nothing. Real relay process, real
ffmpeg for the station's publisher."""

import asyncio
import json
import time

import pytest
from streaming_helpers import (
    RelayProcess,
    StartRelay,
    publish_token,
    publish_url,
    published_rooms,
    publisher,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from streaming.tokens import sign_control

pytestmark = pytest.mark.asyncio
LOST = json.dumps({"type": "signal_lost"})
RESTORED = json.dumps({"type": "signal_restored"})
REVOKE = {"kind": "revoke_publish", "room": "sim-1", "stream": "view"}


async def admitted(
    relay: RelayProcess, token: str, room: str = "sim-1"
) -> tuple[ClientConnection, str]:
    """A publisher's connection the relay admitted (sending nothing yet), and the publish token
    the relay renewed with its ``publish_ok``; fails if refused."""
    ws = await connect(publish_url(relay, room, "view", token))
    answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert answer["type"] == "publish_ok", answer
    return ws, answer["token"]


async def refusal(relay: RelayProcess, token: str) -> tuple[int, str]:
    """The close code and reason a publisher with ``token`` gets instead of admission."""
    async with connect(publish_url(relay, "sim-1", "view", token)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def next_signal(viewer: ClientConnection, signal: str) -> None:
    """Read ``viewer`` until ``signal`` (a text message) arrives, within 15 s."""
    async with asyncio.timeout(15):
        while await viewer.recv() != signal:
            pass


async def still_open(ws: ClientConnection) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), 0.3)


async def test_revoking_drops_the_publisher_and_refuses_older_tokens_but_not_newer_ones(
    relay_factory: StartRelay,
) -> None:
    # publishers that send nothing are not dropped as stalled while the test runs
    relay = relay_factory(published_rooms(), stall_timeout_s=60)
    token = publish_token(relay)
    # an earlier connection of the station, and the token the relay renewed for it
    earlier, renewed = await admitted(relay, token)
    await earlier.close()
    other, _ = await admitted(relay, publish_token(relay, room="sim-2"), room="sim-2")
    viewer = await connect(relay.url("sim-1", "view", token=relay.token("sim-1")))
    station = publisher(relay, token)
    try:
        await asyncio.to_thread(station.start)
        await next_signal(viewer, RESTORED)
        answer = await asyncio.to_thread(relay.control, REVOKE)
        assert answer == {"ok": True, "closed": 1}
        # the station's publisher is cut off at once and does not try again
        await next_signal(viewer, LOST)
        async with asyncio.timeout(5):
            while station.running:
                await asyncio.sleep(0.05)
        assert "4403" in station.error and "publishing revoked" in station.error
        assert station.reconnects == 0
        # the shell's token (valid for another minute) and the relay's renewal: refused
        assert await refusal(relay, token) == (4403, "publishing revoked")
        assert await refusal(relay, renewed) == (4403, "publishing revoked")
        # another stream's publisher goes on
        await still_open(other)
        # the stream started again: a token issued after the revocation admits
        await asyncio.sleep(0.01)
        again = publisher(relay, publish_token(relay))
        await asyncio.to_thread(again.start)
        await next_signal(viewer, RESTORED)
        await asyncio.to_thread(again.stop)
        assert again.error == ""
    finally:
        await asyncio.to_thread(station.stop)
        await viewer.close()
        await other.close()
    assert "publishing revoked in sim-1/view: 1 publishers closed" in relay.log()


async def test_a_forged_stale_or_malformed_revocation_revokes_nothing(
    relay_factory: StartRelay,
) -> None:
    relay = relay_factory(published_rooms(), stall_timeout_s=60)
    token = publish_token(relay)
    live, _ = await admitted(relay, token)
    cases = {
        sign_control(secret=b"x" * 48, message=REVOKE): "invalid control signature",
        sign_control(secret=relay.secret, message=REVOKE, now_s=time.time() - 60): (
            "control message expired"
        ),
        # a publish token is signed with the same secret but is no control message
        token: "malformed control message",
        sign_control(secret=relay.secret, message={**REVOKE, "stream": "../view"}): "stream:",
    }
    for text, why in cases.items():
        async with connect(f"ws://127.0.0.1:{relay.port}/control") as ws:
            await ws.send(text)
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert answer["ok"] is False and why in answer["error"]
    # the publisher was never touched, and its token still admits (replacing it)
    await still_open(live)
    newer, _ = await admitted(relay, token)
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(live.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409
    await newer.close()
    assert "publishing revoked" not in relay.log()
