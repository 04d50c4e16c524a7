"""Publishing into the relay (a station's own encoder, `streaming.publisher`), with real ffmpeg
and real WebSockets on loopback: admission by publish token only, fan-out to a viewer whose
media time advances, signal lost when the publisher goes, refusals of every wrong token."""

import asyncio
import itertools
import json
import time
from collections.abc import Callable

import pytest
from streaming_helpers import (
    Received,
    StartRelay,
    publish_token,
    publish_url,
    published_rooms,
    publisher,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from streaming.fmp4 import Fragment, InitSegment, media_time_s
from streaming.publisher import PublishRefusedError
from streaming.tokens import issue_publish_token

pytestmark = pytest.mark.asyncio
LOST = json.dumps({"type": "signal_lost"})
RESTORED = json.dumps({"type": "signal_restored"})


async def test_a_viewer_sees_the_published_view_with_advancing_media_time_then_signal_lost(
    relay_factory: StartRelay,
) -> None:
    relay = relay_factory(published_rooms())
    url = relay.url("sim-1", "view", token=relay.token("sim-1"))
    received = Received()
    async with connect(url) as ws:
        # nobody publishes yet: the viewer is told so, not left with a black picture
        assert await asyncio.wait_for(ws.recv(), 5) == LOST
        station = publisher(relay, publish_token(relay))
        await asyncio.to_thread(station.start)
        try:
            assert await asyncio.wait_for(ws.recv(), 15) == RESTORED
            async with asyncio.timeout(20):
                while len([s for s in received.segments if isinstance(s, Fragment)]) < 15:
                    received.add(await ws.recv())
        finally:
            await asyncio.to_thread(station.stop)
        assert station.error == ""
        # the publisher left: the viewer hears it at once
        async with asyncio.timeout(5):
            while (message := await ws.recv()) != LOST:
                received.add(message)
    init = received.segments[0]
    assert isinstance(init, InitSegment)
    fragments = received.fragments()
    assert fragments[0].keyframe
    times = [media_time_s(init.data, f.data) for f in fragments]
    assert all(t is not None for t in times)
    spans = [b - a for a, b in itertools.pairwise(times)]  # type: ignore[operator]
    assert all(s > 0 for s in spans), times
    # 15 fragments of ~0.2 s: the picture's clock ran about as long as the wall clock
    assert times[-1] - times[0] > 1.5  # type: ignore[operator]
    assert "station 7 publishing" in relay.log()


@pytest.mark.parametrize(
    ("token_of", "room", "stream", "code", "reason"),
    [
        ("viewer", "sim-1", "view", 4401, "not a publish token"),
        ("expired", "sim-1", "view", 4401, "token expired"),
        ("other_secret", "sim-1", "view", 4401, "invalid token signature"),
        ("other_room", "sim-1", "view", 4403, "token is for another room or stream"),
        ("other_stream", "sim-1", "view", 4403, "token is for another room or stream"),
        ("none", "sim-1", "view", 4401, "not a publish token"),
        # an ffmpeg-fed camera is not publishable, even with a token for it
        ("camera", "sim-1", "cam", 4404, "no such published stream or quality"),
    ],
)
async def test_a_publisher_without_the_right_publish_token_is_refused(
    relay_factory: StartRelay, token_of: str, room: str, stream: str, code: int, reason: str
) -> None:
    relay = relay_factory(published_rooms())
    tokens: dict[str, Callable[[], str]] = {
        "viewer": lambda: relay.token("sim-1"),
        "expired": lambda: publish_token(relay, now_s=time.time() - 120),
        "other_secret": lambda: issue_publish_token(
            secret=b"x" * 48, station_id="7", room="sim-1", stream="view"
        ),
        "other_room": lambda: publish_token(relay, room="sim-2"),
        "other_stream": lambda: publish_token(relay, stream="cam"),
        "none": lambda: "",
        "camera": lambda: publish_token(relay, stream="cam"),
    }
    token = tokens[token_of]()
    station = publisher(relay, token, room=room, stream=stream)
    with pytest.raises(PublishRefusedError) as refused:
        await asyncio.to_thread(station.start)
    assert (refused.value.close_code, refused.value.reason) == (code, reason)
    # and a viewer of the stream never heard anything but "no signal"
    viewer_url = relay.url("sim-1", "view", token=relay.token("sim-1"))
    async with connect(viewer_url) as ws:
        assert await asyncio.wait_for(ws.recv(), 5) == LOST
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.5)


async def test_garbage_from_a_publisher_is_dropped_and_viewers_see_signal_lost(
    relay_factory: StartRelay,
) -> None:
    relay = relay_factory(published_rooms())
    viewer_url = relay.url("sim-1", "view", token=relay.token("sim-1"))
    async with connect(viewer_url) as viewer:
        assert await asyncio.wait_for(viewer.recv(), 5) == LOST
        async with connect(publish_url(relay, "sim-1", "view", publish_token(relay))) as ws:
            assert json.loads(await ws.recv())["type"] == "publish_ok"
            # a box claiming 4 GiB: refused, not waited for
            await ws.send(b"\xff\xff\xff\xffmoov" + b"\0" * 64)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(viewer.recv(), 0.5)
    assert "publisher's bytes unreadable" in relay.log()
