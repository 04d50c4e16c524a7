"""The station's view streamed live, started and stopped over the bridge: a real ZeroMQ
endpoint, a real station (its Panda3D view offscreen in a child process, ffmpeg), a real relay
process, and a viewer on loopback. Also the refusals: a command the station will not run, a
publish token the relay will not take."""

import itertools
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bridge_helpers import Bridge, enrol_station
from websockets.sync.client import ClientConnection, connect

from bridge.local_side import LocalShellSide
from bridge.messages import StartStream, StopStream, StreamStatus
from bridge.station import StationRunner
from streaming.fmp4 import Fmp4Splitter, Fragment, InitSegment, media_time_s
from streaming.tokens import issue_publish_token, issue_token

ROOT = Path(__file__).resolve().parents[2]
LOST = json.dumps({"type": "signal_lost"})
RESTORED = json.dumps({"type": "signal_restored"})


@dataclass
class Relay:
    process: subprocess.Popen[str]
    port: int
    secret: bytes
    log: Path

    def publish_url(self, room: str, stream: str = "view") -> str:
        return f"ws://127.0.0.1:{self.port}/publish/rooms/{room}/streams/{stream}/360p"

    def viewer(self, room: str, stream: str = "view") -> ClientConnection:
        token = issue_token(secret=self.secret, user_id="expert-1", room=room)
        url = f"ws://127.0.0.1:{self.port}/rooms/{room}/streams/{stream}/360p?token={token}"
        return connect(url, open_timeout=5, max_size=None)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small lumbar phantom case, built through the real CT -> case path."""
    from sim_core.case.build import build_case
    from sim_core.ct.phantom import make_phantom, write_phantom

    root = tmp_path_factory.mktemp("phantom")
    write_phantom(make_phantom("lumbar", seed=1, slices=60, matrix=96), root / "ct")
    build_case(root / "ct", root / "case")
    return root / "case"


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    """The relay as its own process, with published streams in rooms station-1 and other."""
    secret = secrets.token_urlsafe(48).encode()
    (tmp_path / "relay.secret").write_bytes(secret)
    publish = {"source": {"kind": "publish"}, "qualities": ["360p"]}
    config = {
        "secret_file": "relay.secret",
        "rooms": {"station-1": {"view": publish}, "other": {"view": publish}},
    }
    (tmp_path / "relay.json").write_text(json.dumps(config))
    log = tmp_path / "relay.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "streaming.relay", "--port", "0", "--config", "relay.json"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, log.read_text()
    yield Relay(process, int(json.loads(line)["port"]), secret, log)
    process.terminate()
    process.wait(15)


@pytest.fixture
def running_station(
    bridge: Bridge, tmp_path: Path, phantom: Path
) -> Iterator[tuple[str, StationRunner]]:
    identity = enrol_station(bridge, tmp_path / "station")
    runner = StationRunner(tmp_path / "station", view_case=phantom, echo=lambda s: None)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    yield identity.config.station_id, runner
    runner.stop()
    thread.join(timeout=40)
    assert not thread.is_alive()


def shell(bridge: Bridge) -> LocalShellSide:
    # the endpoint's own ShellSide: stream commands live in its memory
    side = bridge.endpoint.shell
    assert isinstance(side, LocalShellSide)
    return side


def wait_status(side: LocalShellSide, stream_id: str, timeout_s: float) -> StreamStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for _, status in side.stream_statuses:
            if status.stream_id == stream_id:
                return status
        time.sleep(0.1)
    raise AssertionError(f"no status for stream {stream_id} in {timeout_s} s")


def start_command(relay: Relay, station_id: str, room: str = "station-1", **kw: Any) -> StartStream:
    token = issue_publish_token(
        secret=relay.secret, station_id=station_id, room=room, stream="view"
    )
    fields = {
        "stream_id": uuid.uuid4().hex,
        "publish_url": relay.publish_url("station-1"),
        "token": token,
        "fps": 10,
        **kw,
    }
    return StartStream(**fields)


def decoded_luma_std(init: bytes, fragments: list[Fragment]) -> float:
    """The spread of grey levels in the last decoded frame: a rendered scene, not a blank."""
    data = init + b"".join(f.data for f in fragments)
    done = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:"],
        input=data,
        capture_output=True,
        check=True,
        timeout=60,
    )
    frames = np.frombuffer(done.stdout, np.uint8).reshape(-1, 360, 640)
    return float(frames[-1].std())


def test_the_shell_starts_the_stations_view_over_the_bridge_and_stops_it(
    bridge: Bridge, relay: Relay, running_station: tuple[str, StationRunner]
) -> None:
    station_id, _ = running_station
    side = shell(bridge)
    with relay.viewer("station-1") as viewer:
        assert viewer.recv(timeout=5) == LOST  # nothing published yet
        command = start_command(relay, station_id)
        side.add_stream_command(station_id, command)
        asked_at = time.monotonic()
        # the view process loads the case and draws; then ffmpeg's first fragments arrive
        assert viewer.recv(timeout=120) == RESTORED
        print(f"first init segment {time.monotonic() - asked_at:.1f} s after the command")
        splitter = Fmp4Splitter()
        segments: list[InitSegment | Fragment] = []
        deadline = time.monotonic() + 60
        while sum(isinstance(s, Fragment) for s in segments) < 12:
            assert time.monotonic() < deadline, "too few fragments"
            message = viewer.recv(timeout=10)
            assert isinstance(message, bytes), message
            segments.extend(splitter.feed(message))
        status = wait_status(side, command.stream_id, 10)
        assert (status.state, status.error) == ("publishing", "")
        # the shell stops it over the bridge: the viewer hears the signal is lost
        side.add_stream_command(station_id, StopStream(stream_id=command.stream_id))
        stopped_at = time.monotonic()
        while (message := viewer.recv(timeout=20)) != LOST:
            assert isinstance(message, bytes)
        lost_after_s = time.monotonic() - stopped_at
    init = segments[0]
    assert isinstance(init, InitSegment)
    fragments = [s for s in segments if isinstance(s, Fragment)]
    assert fragments[0].keyframe
    times = [media_time_s(init.data, f.data) or 0.0 for f in fragments]
    assert all(b > a for a, b in itertools.pairwise(times)), times
    assert times[-1] - times[0] > 1.5
    assert decoded_luma_std(init.data, fragments) > 5.0
    print(f"signal lost {lost_after_s:.1f} s after the stop command")
    assert lost_after_s < 8.0
    deadline = time.monotonic() + 15
    while not any(
        s.stream_id == command.stream_id and s.state == "stopped" for _, s in side.stream_statuses
    ):
        assert time.monotonic() < deadline, side.stream_statuses
        time.sleep(0.1)
    assert f"station {station_id} publishing" in relay.log.read_text()


def test_a_stream_the_station_or_the_relay_refuses_is_reported_failed(
    bridge: Bridge, relay: Relay, running_station: tuple[str, StationRunner]
) -> None:
    station_id, _ = running_station
    side = shell(bridge)
    # not a relay publish address: refused by the station before any view starts
    bad_url = start_command(relay, station_id, publish_url="http://evil.example/x")
    side.add_stream_command(station_id, bad_url)
    status = wait_status(side, bad_url.stream_id, 15)
    assert status.state == "failed" and "stream refused: publish_url" in status.error
    # a token for another room: the relay refuses it, the station says so
    other_room = start_command(relay, station_id, room="other")
    side.add_stream_command(station_id, other_room)
    status = wait_status(side, other_room.stream_id, 120)
    assert status.state == "failed"
    assert "the relay refused: 4403 token is for another room or stream" in status.error
    assert "publisher refused" in relay.log.read_text()
