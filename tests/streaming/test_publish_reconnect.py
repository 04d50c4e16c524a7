"""A station's publisher that loses the relay comes back by itself (`streaming.publisher`): the
relay restarted on its port, the publisher reconnects with the token the relay renewed (the
shell's ran out meanwhile) and a new ffmpeg, and viewers get a new init segment, then media.
It does not come back where the relay says "not you": replaced by a newer publisher, or a
token the relay refuses. Real ffmpeg, real relay processes on loopback."""

import asyncio
import time

import pytest
from streaming_helpers import (
    Received,
    RelayProcess,
    StartRelay,
    publish_token,
    published_rooms,
    publisher,
    stop_relay,
)
from websockets.asyncio.client import connect

from streaming.fmp4 import Fragment, InitSegment, media_time_s
from streaming.publisher import StreamPublisher

pytestmark = pytest.mark.asyncio


async def media(relay: RelayProcess, fragments: int) -> Received:
    """What a new viewer of sim-1/view receives until ``fragments`` fragments arrived."""
    received = Received()
    async with connect(relay.url("sim-1", "view", token=relay.token("sim-1"))) as ws:
        async with asyncio.timeout(20):
            while len(received.fragments()) < fragments:
                received.add(await ws.recv())
    return received


async def ended(station: StreamPublisher, seconds: float) -> None:
    """Wait until ``station`` stopped by itself; fails if it still runs after ``seconds``."""
    async with asyncio.timeout(seconds):
        while station.running:
            await asyncio.sleep(0.1)


async def test_a_publisher_reconnects_to_a_restarted_relay_and_viewers_get_init_then_media(
    relay_factory: StartRelay,
) -> None:
    relay = relay_factory(published_rooms())
    # the shell's token runs out 2 s from now: coming back later takes the relay's renewal
    issued_s = time.time() - 58
    station = publisher(relay, publish_token(relay, now_s=issued_s))
    await asyncio.to_thread(station.start)
    try:
        await media(relay, 2)
        await asyncio.sleep(max(0.0, issued_s + 60 - time.time()))
        await asyncio.to_thread(stop_relay, relay)
        again = relay_factory(published_rooms(), port=relay.port, secret=relay.secret)
        received = await media(again, 3)
        assert (station.reconnects, station.error, station.running) == (1, "", True)
    finally:
        await asyncio.to_thread(station.stop)
    # the publisher's new encoder run from its start (after "no signal" if the viewer was first)
    init, first = [s for s in received.segments if not isinstance(s, str)][:2]
    assert isinstance(init, InitSegment)
    assert isinstance(first, Fragment) and first.keyframe
    times = [media_time_s(init.data, f.data) or 0.0 for f in received.fragments()]
    assert times == sorted(times) and times[0] < times[-1]
    assert "publisher replaced" not in again.log()


async def test_a_publisher_replaced_by_a_newer_one_does_not_come_back(
    relay_factory: StartRelay,
) -> None:
    relay = relay_factory(published_rooms())
    first = publisher(relay, publish_token(relay))
    await asyncio.to_thread(first.start)
    second = publisher(relay, publish_token(relay))
    try:
        await media(relay, 1)
        await asyncio.to_thread(second.start)
        await ended(first, 5)
        assert "4409" in first.error and "replaced by a newer publisher" in first.error
        assert first.reconnects == 0
        # the newer one keeps the stream: no tug of war
        await media(relay, 2)
        assert (second.running, second.error, second.reconnects) == (True, "", 0)
    finally:
        await asyncio.to_thread(first.stop)
        await asyncio.to_thread(second.stop)


async def test_a_publisher_gives_up_when_the_returning_relay_refuses_its_token(
    relay_factory: StartRelay,
) -> None:
    relay = relay_factory(published_rooms())
    station = publisher(relay, publish_token(relay))
    await asyncio.to_thread(station.start)
    try:
        await media(relay, 1)
        await asyncio.to_thread(stop_relay, relay)
        # back on the same port with another secret: every token it held is refused (4401)
        relay_factory(published_rooms(), port=relay.port)
        await ended(station, 15)
    finally:
        await asyncio.to_thread(station.stop)
    assert station.error == "the relay refused: 4401 invalid token signature"
    assert station.reconnects == 0
