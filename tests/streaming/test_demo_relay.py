"""`osteon demo` (make run) starts the live relay with the demo room's streams as ffmpeg test
pictures, signed with the shell's relay secret, and stops it with the shell."""

import asyncio
import secrets
import signal
import socket
from pathlib import Path

import psutil
import pytest
from streaming_helpers import Received
from websockets.asyncio.client import connect

from osteon import demo
from streaming.fmp4 import Fragment, InitSegment
from streaming.tokens import issue_token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _first_segments(url: str, timeout_s: float) -> Received:
    received = Received()
    async with asyncio.timeout(timeout_s):
        while True:  # the relay needs a moment to listen
            try:
                ws = await connect(url)
                break
            except OSError:
                await asyncio.sleep(0.2)
        async with ws:
            while not any(isinstance(s, Fragment) for s in received.segments):
                received.add(await ws.recv())
    return received


def test_the_demo_relay_serves_the_demo_room_with_the_shells_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    secret = secrets.token_urlsafe(48).encode()
    (key_dir / "stream_relay_secret").write_bytes(secret + b"\n")
    monkeypatch.setenv("OSTEON_KEY_DIR", str(key_dir))
    monkeypatch.delenv("OSTEON_STREAM_RELAY_SECRET", raising=False)
    monkeypatch.delenv("OSTEON_STREAM_RELAY_SECRET_PATH", raising=False)
    port = _free_port()
    relay = demo.start_relay(port, config_dir=tmp_path)
    assert relay is not None
    try:
        token = issue_token(secret=secret, user_id="7", room=demo.DEMO_RELAY_ROOM, ttl_s=60)
        for stream in demo.DEMO_RELAY_STREAMS:
            url = (
                f"ws://127.0.0.1:{port}/rooms/{demo.DEMO_RELAY_ROOM}/streams/{stream}/360p"
                f"?token={token}"
            )
            received = asyncio.run(_first_segments(url, 30.0))
            assert isinstance(received.segments[0], InitSegment)
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(15)
    assert not psutil.pid_exists(relay.pid) or psutil.Process(relay.pid).status() == "zombie"


def test_without_the_shells_secret_the_demo_runs_without_a_relay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OSTEON_KEY_DIR", str(tmp_path / "no-keys"))
    monkeypatch.delenv("OSTEON_STREAM_RELAY_SECRET", raising=False)
    monkeypatch.delenv("OSTEON_STREAM_RELAY_SECRET_PATH", raising=False)
    assert demo.start_relay(_free_port(), config_dir=tmp_path) is None
    assert not (tmp_path / "relay.json").exists()


def test_the_demo_relay_takes_the_local_stations_published_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    secret = secrets.token_urlsafe(48).encode()
    (key_dir / "stream_relay_secret").write_bytes(secret + b"\n")
    monkeypatch.setenv("OSTEON_KEY_DIR", str(key_dir))
    monkeypatch.delenv("OSTEON_STREAM_RELAY_SECRET", raising=False)
    monkeypatch.delenv("OSTEON_STREAM_RELAY_SECRET_PATH", raising=False)
    port = _free_port()
    relay = demo.start_relay(port, config_dir=tmp_path, station_id="5")
    assert relay is not None

    async def first_message(url: str) -> object:
        async with asyncio.timeout(30):
            while True:
                try:
                    ws = await connect(url)
                    break
                except OSError:
                    await asyncio.sleep(0.2)
            async with ws:
                return await ws.recv()

    try:
        # the station's room is declared published: until the station publishes, "no signal"
        token = issue_token(secret=secret, user_id="7", room="station-5", ttl_s=60)
        url = f"ws://127.0.0.1:{port}/rooms/station-5/streams/view/360p?token={token}"
        assert asyncio.run(first_message(url)) == '{"type": "signal_lost"}'
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(15)
