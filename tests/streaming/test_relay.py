"""The relay with real ffmpeg and real WebSockets on loopback: a process started by the test,
viewers joining late, reading slowly, losing the source, holding bad tokens, and the stop."""

import asyncio
import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from streaming_helpers import Received, RelayProcess, StartRelay, camera_rooms, stop_relay
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from streaming.fmp4 import Fragment, InitSegment
from streaming.tokens import issue_token

pytestmark = pytest.mark.asyncio
LOST = json.dumps({"type": "signal_lost"})
RESTORED = json.dumps({"type": "signal_restored"})


async def watch(ws: ClientConnection, received: Received, seconds: float) -> None:
    """Receive for ``seconds`` into ``received``."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            received.add(await asyncio.wait_for(ws.recv(), left))
        except TimeoutError:
            return


async def watch_until(
    ws: ClientConnection, received: Received, done: Callable[[Received], bool], timeout_s: float
) -> None:
    async with asyncio.timeout(timeout_s):
        while not done(received):
            received.add(await ws.recv())


def gaps(fragments: list[Fragment]) -> list[int]:
    """Indexes of fragments that do not follow the one before them."""
    return [
        i
        for i in range(1, len(fragments))
        if fragments[i].sequence != fragments[i - 1].sequence + 1
    ]


async def test_a_late_joiner_gets_the_init_segment_then_a_keyframe_first(
    relay: RelayProcess,
) -> None:
    url = relay.url("or-3", "cam", token=relay.token("or-3"))
    await asyncio.sleep(1.3)  # the stream is under way
    first, second = Received(), Received()

    async def join(after_s: float, received: Received) -> None:
        await asyncio.sleep(after_s)
        async with connect(url) as ws:
            await watch(ws, received, 2.5)

    # joined 0.5 s apart: at least one lands in the middle of a 1 s GOP
    await asyncio.gather(join(0.0, first), join(0.5, second))
    for received in (first, second):
        assert isinstance(received.messages[0], bytes) and received.messages[0][4:8] == b"ftyp"
        assert isinstance(received.segments[0], InitSegment)
        fragments = received.fragments()
        assert fragments[0].sequence > 1, "joined late, so not at the stream's first fragment"
        assert fragments[0].keyframe
        assert not all(f.keyframe for f in fragments), "small fragments between keyframes"
        assert gaps(fragments) == []


async def test_what_a_viewer_receives_is_a_playable_mp4(
    relay: RelayProcess, tmp_path: Path
) -> None:
    received = Received()
    async with connect(relay.url("or-3", "cam", token=relay.token("or-3"))) as ws:
        await watch(ws, received, 2.5)
    path = tmp_path / "viewer.mp4"
    path.write_bytes(received.mp4_bytes())
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        check=True,
        text=True,
    )
    info = json.loads(probe.stdout)
    assert sorted(s["codec_name"] for s in info["streams"]) == ["aac", "h264"]
    assert float(info["format"]["duration"]) > 0


async def test_a_slow_viewer_skips_to_keyframes_while_a_fast_one_misses_nothing(
    relay_factory: StartRelay,
) -> None:
    relay = relay_factory(queue_fragments=3, send_buffer_bytes=32 * 1024)
    url = relay.url("or-3", "cam", token=relay.token("or-3"))
    # the slow viewer: a tiny receive buffer and a client that stops reading after one message
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", relay.port))
    fast, slow = Received(), Received()
    async with connect(url, sock=sock, max_queue=1) as slow_ws, connect(url) as fast_ws:
        await watch(fast_ws, fast, 6.0)
        # now the slow one reads what reached it
        await watch(slow_ws, slow, 1.5)
    fast_fragments, slow_fragments = fast.fragments(), slow.fragments()
    # the fast viewer got every fragment, at the source's pace (5 a second)
    assert gaps(fast_fragments) == []
    assert len(fast_fragments) >= 25
    # the slow one lost some, and each time picked up again at a keyframe
    skips = gaps(slow_fragments)
    assert skips, f"slow viewer lost nothing ({len(slow_fragments)} fragments)"
    assert all(slow_fragments[i].keyframe for i in skips)
    assert slow_fragments[0].keyframe


async def test_a_lost_source_is_signalled_then_restored_with_a_fresh_init(
    relay: RelayProcess,
) -> None:
    received = Received()
    async with connect(relay.url("or-3", "cam", token=relay.token("or-3"))) as ws:
        await watch_until(ws, received, lambda r: len(r.fragments()) >= 2, 10.0)
        (old_pid,) = relay.ffmpeg_pids()
        psutil.Process(old_pid).send_signal(signal.SIGKILL)

        def restored_and_playing(r: Received) -> bool:
            if RESTORED not in r.segments:
                return False
            after = r.segments[r.segments.index(RESTORED) :]
            return any(isinstance(s, Fragment) for s in after)

        await watch_until(ws, received, restored_and_playing, 10.0)
    texts = [json.loads(s) for s in received.segments if isinstance(s, str)]
    assert texts == [{"type": "signal_lost"}, {"type": "signal_restored"}]
    # after the restore: a new init segment, then a keyframe, from a new ffmpeg
    lost_at = received.segments.index(LOST)
    restored = received.segments.index(RESTORED)
    assert restored == lost_at + 1
    assert isinstance(received.segments[restored + 1], InitSegment)
    first_after = received.segments[restored + 2]
    assert isinstance(first_after, Fragment) and first_after.keyframe
    assert relay.ffmpeg_pids() != [old_pid]


async def test_a_stalled_source_is_signalled_lost_within_the_stall_timeout(
    relay_factory: StartRelay,
) -> None:
    # ffmpeg stopped (SIGSTOP) sends nothing and does not exit, like a hung rtsp camera
    relay = relay_factory(stall_timeout_s=1.0, restart_initial_s=0.2)
    received = Received()
    async with connect(relay.url("or-3", "cam", token=relay.token("or-3"))) as ws:
        await watch_until(ws, received, lambda r: len(r.fragments()) >= 1, 10.0)
        (stalled,) = relay.ffmpeg_pids()
        psutil.Process(stalled).send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        await watch_until(ws, received, lambda r: LOST in r.segments, 5.0)
        assert time.monotonic() - stopped_at < 2.5
        # the hung ffmpeg is killed (SIGTERM waits while stopped, so SIGKILL), a new one runs
        await watch_until(ws, received, lambda r: RESTORED in r.segments, 10.0)
    assert not psutil.pid_exists(stalled)


async def test_it_refuses_missing_bad_expired_and_wrong_room_tokens(
    relay_factory: StartRelay,
) -> None:
    relay = relay_factory(camera_rooms("or-3", "or-9"))
    good = relay.token("or-3")
    version, payload, mac = good.split(".")
    cases = {
        "": (4401, "malformed token"),
        f"{version}.{payload}.{mac[:-2]}AA": (4401, "invalid token signature"),
        issue_token(secret=b"x" * 48, user_id="expert-1", room="or-3"): (
            4401,
            "invalid token signature",
        ),
        issue_token(secret=relay.secret, user_id="u", room="or-3", now_s=time.time() - 120): (
            4401,
            "token expired",
        ),
        relay.token("or-9"): (4403, "token is for another room"),
    }
    for token, (code, reason) in cases.items():
        async with connect(relay.url("or-3", "cam", token=token)) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (code, reason)
    # a good token, but no such stream
    async with connect(relay.url("or-3", "endoscope", token=good)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
    # and the right one is let in
    received = Received()
    async with connect(relay.url("or-9", "cam", token=relay.token("or-9"))) as ws:
        await watch_until(ws, received, lambda r: len(r.fragments()) >= 1, 10.0)


async def test_sigterm_closes_viewers_and_leaves_no_ffmpeg(relay_factory: StartRelay) -> None:
    relay = relay_factory(camera_rooms("or-3", "or-9"))
    received = Received()
    async with connect(relay.url("or-3", "cam", token=relay.token("or-3"))) as ws:
        await watch_until(ws, received, lambda r: len(r.fragments()) >= 1, 10.0)
        pids = relay.ffmpeg_pids()
        assert len(pids) == 2
        assert await asyncio.to_thread(stop_relay, relay) == 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    # reaped by the relay before it exited: not running, not zombies, not reparented
    assert [pid for pid in pids if psutil.pid_exists(pid)] == []
