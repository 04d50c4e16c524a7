"""A relay run as its own process (``python -m streaming.relay``), a viewer that records what
it receives, and a station's publisher of moving pictures, for the streaming tests."""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from websockets.sync.client import connect as sync_connect

from streaming.fmp4 import Fmp4Splitter, Fragment, InitSegment
from streaming.publisher import StreamPublisher
from streaming.tokens import issue_publish_token, issue_token, sign_control

ROOT = Path(__file__).resolve().parents[2]
# 15 fps at 360p, the smallest rung: two test encodes fit in a 2-core box beside other work
TEST_FPS = 15
# what a test publisher sends: small pictures, few of them
PUBLISH_SIZE = (320, 180)
PUBLISH_FPS = 10


@dataclass
class RelayProcess:
    process: subprocess.Popen[str]
    port: int
    secret: bytes
    log_path: Path

    def url(self, room: str, stream: str, quality: str = "360p", *, token: str) -> str:
        return f"ws://127.0.0.1:{self.port}/rooms/{room}/streams/{stream}/{quality}?token={token}"

    def token(
        self, room: str, *, user_id: str = "expert-1", ttl_s: int = 60, session: str = ""
    ) -> str:
        return issue_token(
            secret=self.secret, user_id=user_id, room=room, ttl_s=ttl_s, session=session
        )

    def control(self, message: dict[str, Any], *, secret: bytes | None = None) -> dict[str, Any]:
        """Send one signed control message (as the shell does); the relay's answer."""
        signed = sign_control(secret=secret or self.secret, message=message)
        with sync_connect(f"ws://127.0.0.1:{self.port}/control", open_timeout=5) as ws:
            ws.send(signed)
            answer: dict[str, Any] = json.loads(ws.recv(timeout=5))
        return answer

    def ffmpeg_pids(self) -> list[int]:
        children = psutil.Process(self.process.pid).children(recursive=True)
        return [c.pid for c in children if c.name() == "ffmpeg"]

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


# relay_factory (conftest): start a relay with rooms and config options, stopped after the test
StartRelay = Callable[..., RelayProcess]


def camera_rooms(*rooms: str) -> dict[str, Any]:
    """Each room with one stand-in camera ``cam`` (ffmpeg test source) at 360p."""
    source = {"kind": "test", "fps": TEST_FPS}
    return {room: {"cam": {"source": source, "qualities": ["360p"]}} for room in rooms}


def start_relay(
    tmp_path: Path,
    rooms: dict[str, Any],
    *,
    port: int = 0,
    secret: bytes | None = None,
    **options: Any,
) -> RelayProcess:
    """Write a config and secret under ``tmp_path``, start the relay on ``port`` (0: a free
    one) with ``secret`` (None: a new one)."""
    secret = secret or secrets.token_urlsafe(48).encode()
    (tmp_path / "relay.secret").write_bytes(secret + b"\n")
    config = {"secret_file": "relay.secret", "rooms": rooms, **options}
    (tmp_path / "relay.json").write_text(json.dumps(config), encoding="utf-8")
    log_path = tmp_path / "relay.log"
    argv = [sys.executable, "-m", "streaming.relay", "--port", str(port), "--config", "relay.json"]
    process = subprocess.Popen(
        argv,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=log_path.open("w"),
        text=True,
    )
    assert process.stdout is not None
    # the relay prints {"listening": host, "port": N} once it accepts connections
    line = process.stdout.readline()
    if not line:
        process.wait(10)
        raise AssertionError(f"the relay did not start:\n{log_path.read_text()}")
    return RelayProcess(process, int(json.loads(line)["port"]), secret, log_path)


def stop_relay(relay: RelayProcess) -> int:
    """SIGTERM the relay and wait for it; its return code."""
    if relay.process.poll() is None:
        relay.process.send_signal(signal.SIGTERM)
    try:
        return relay.process.wait(15)
    finally:
        if relay.process.poll() is None:
            relay.process.kill()
            relay.process.wait()


@dataclass
class Received:
    """What a viewer got, message by message, and the same cut into segments."""

    messages: list[bytes | str] = field(default_factory=list)
    segments: list[InitSegment | Fragment | str] = field(default_factory=list)
    splitter: Fmp4Splitter = field(default_factory=Fmp4Splitter)

    def add(self, message: bytes | str) -> None:
        self.messages.append(message)
        if isinstance(message, str):
            self.segments.append(message)
            # a fresh init segment after a restart begins a new stream
            self.splitter = Fmp4Splitter()
            return
        if message[4:8] == b"ftyp":
            # the relay sends an init segment as a message of its own: a newer publisher's
            # comes with no signal before it
            self.splitter = Fmp4Splitter()
        self.segments.extend(self.splitter.feed(message))

    def fragments(self) -> list[Fragment]:
        return [s for s in self.segments if isinstance(s, Fragment)]

    def mp4_bytes(self) -> bytes:
        return b"".join(m for m in self.messages if isinstance(m, bytes))


def published_rooms() -> dict[str, Any]:
    """sim-1 with a published ``view`` and a camera ``cam``; sim-2 with a published ``view``."""
    publish = {"source": {"kind": "publish"}, "qualities": ["360p"]}
    camera = {"source": {"kind": "test", "fps": 10}, "qualities": ["360p"]}
    return {"sim-1": {"view": publish, "cam": camera}, "sim-2": {"view": publish}}


def moving_frames() -> Callable[[], tuple[int, int, bytes]]:
    """A bar sweeping across the picture: frames that differ, as a rendered view's do."""
    count = 0
    width, height = PUBLISH_SIZE

    def grab() -> tuple[int, int, bytes]:
        nonlocal count
        count += 1
        time.sleep(0.05)  # a renderer takes time
        frame = np.full((height, width, 3), 40, dtype=np.uint8)
        x = (count * 8) % width
        frame[:, x : x + 16] = (230, 200, 60)
        return width, height, frame.tobytes()

    return grab


def publish_url(relay: RelayProcess, room: str, stream: str, token: str) -> str:
    return f"ws://127.0.0.1:{relay.port}/publish/rooms/{room}/streams/{stream}/360p?token={token}"


def publisher(
    relay: RelayProcess, token: str, room: str = "sim-1", stream: str = "view"
) -> StreamPublisher:
    """A station's publisher of `moving_frames` into ``room``/``stream`` (not started)."""
    return StreamPublisher(
        url=publish_url(relay, room, stream, token),
        grab_frame=moving_frames(),
        size=PUBLISH_SIZE,
        fps=PUBLISH_FPS,
        quality="360p",
    )


def publish_token(relay: RelayProcess, room: str = "sim-1", stream: str = "view", **kw: Any) -> str:
    """A publish token for station 7, as the shell signs it."""
    return issue_publish_token(secret=relay.secret, station_id="7", room=room, stream=stream, **kw)
