"""The shell's control of the relay (``/control``): revoking one viewer, ending a session, and
refusing what is not a fresh message signed with the shared secret. A real relay process."""

import asyncio
import time

import pytest
from streaming_helpers import Received, RelayProcess, StartRelay, camera_rooms
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from streaming.tokens import sign_control

pytestmark = pytest.mark.asyncio


async def playing(relay: RelayProcess, *, user: str, session: str) -> ClientConnection:
    """A viewer of or-3/cam that has received its first fragment."""
    token = relay.token("or-3", user_id=user, session=session)
    ws = await connect(relay.url("or-3", "cam", token=token))
    received = Received()
    async with asyncio.timeout(15.0):
        while not received.fragments():
            received.add(await ws.recv())
    return ws


async def closed_within(ws: ClientConnection, seconds: float) -> Close:
    """Read until the relay closes ``ws``; fails if it is still open after ``seconds``."""
    with pytest.raises(ConnectionClosed) as caught:
        async with asyncio.timeout(seconds):
            while True:
                await ws.recv()
    assert caught.value.rcvd is not None
    return caught.value.rcvd


async def still_playing(ws: ClientConnection, fragments: int) -> None:
    """``ws`` goes on receiving media: ``fragments`` more binary messages within 5 s."""
    async with asyncio.timeout(5.0):
        while fragments > 0:
            fragments -= isinstance(await ws.recv(), bytes)


async def control(relay: RelayProcess, message: dict[str, object]) -> dict[str, object]:
    return await asyncio.to_thread(relay.control, message)


async def test_revoking_a_user_closes_their_sockets_now_and_refuses_their_old_token(
    relay: RelayProcess,
) -> None:
    removed = await playing(relay, user="7", session="41")
    staying = await playing(relay, user="8", session="41")
    old_token = relay.token("or-3", user_id="7", session="41")
    revoked_at = time.monotonic()
    answer = await control(relay, {"kind": "revoke", "room": "or-3", "session": "41", "user": "7"})
    assert answer == {"ok": True, "closed": 1}
    close = await closed_within(removed, 2.0)
    assert time.monotonic() - revoked_at < 2.0
    assert (close.code, close.reason) == (4403, "access revoked")
    # the token the page still holds (valid for another minute) no longer admits
    async with connect(relay.url("or-3", "cam", token=old_token)) as again:
        close = await closed_within(again, 5.0)
    assert (close.code, close.reason) == (4403, "access revoked")
    # the other viewer goes on watching
    await still_playing(staying, 3)
    await staying.close()
    # invited again: a token issued after the revocation admits
    await asyncio.sleep(0.01)
    back = await playing(relay, user="7", session="41")
    await back.close()


async def test_ending_a_session_closes_all_its_viewers_not_another_sessions(
    relay: RelayProcess,
) -> None:
    viewers = [await playing(relay, user=u, session="41") for u in ("7", "8", "9")]
    other = await playing(relay, user="7", session="42")
    answer = await control(relay, {"kind": "session_end", "room": "or-3", "session": "41"})
    assert answer == {"ok": True, "closed": 3}
    for ws in viewers:
        close = await closed_within(ws, 2.0)
        assert (close.code, close.reason) == (4403, "session ended")
    # a fresh token for the ended session is refused too: it never comes back
    token = relay.token("or-3", user_id="7", session="41")
    async with connect(relay.url("or-3", "cam", token=token)) as again:
        close = await closed_within(again, 5.0)
    assert close.reason == "session ended"
    await still_playing(other, 2)
    await other.close()


async def test_it_refuses_unsigned_stale_and_malformed_control_messages(
    relay: RelayProcess,
) -> None:
    viewer = await playing(relay, user="7", session="41")
    revoke = {"kind": "revoke", "room": "or-3", "session": "41", "user": "7"}
    url = f"ws://127.0.0.1:{relay.port}/control"
    cases = {
        sign_control(secret=b"x" * 48, message=revoke): "invalid control signature",
        sign_control(secret=relay.secret, message=revoke, now_s=time.time() - 60): (
            "control message expired"
        ),
        # a viewer's token is signed with the same secret but is no control message
        relay.token("or-3", user_id="7", session="41"): "malformed control message",
        sign_control(secret=relay.secret, message={**revoke, "room": "../etc"}): "room:",
        sign_control(secret=relay.secret, message={**revoke, "kind": "reboot"}): "unknown kind",
    }
    for text, why in cases.items():
        async with connect(url) as ws:
            await ws.send(text)
            answer = await ws.recv()
            close = await closed_within(ws, 5.0)
        assert '"ok": false' in str(answer) and why in str(answer)
        assert close.code == 4401
    # the viewer was never touched
    await still_playing(viewer, 2)
    await viewer.close()


async def test_a_token_without_a_session_is_still_admitted(relay_factory: StartRelay) -> None:
    relay = relay_factory(camera_rooms("or-3"))
    ws = await playing(relay, user="7", session="")
    await ws.close()
