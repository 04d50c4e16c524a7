"""Recording in the relay: a real relay process with a test source and ``record_dir``; live
sessions announced to it (control messages, tokens), ended, overlapping in one room, the relay
stopped by SIGTERM or losing its source; the files it leaves checked with ffprobe and box by box."""

import asyncio
import json
import signal
import struct
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from streaming_helpers import Received, RelayProcess, StartRelay, camera_rooms, stop_relay
from websockets.asyncio.client import connect

from streaming.recorder import recording_name


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def top_level_boxes(path: Path) -> list[str]:
    """The file's top-level box types, in order."""
    data = path.read_bytes()
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return boxes


def wait_for(predicate: Callable[[], object], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def assert_seekable_h264_aac(path: Path) -> float:
    """The checks a finished recording passes; its duration [s]."""
    info = probe(path)
    codecs = sorted((s["codec_type"], s["codec_name"]) for s in info["streams"])
    assert codecs == [("audio", "aac"), ("video", "h264")]
    assert "mp4" in info["format"]["format_name"].split(",")
    # faststart: the index before the media, so a browser seeks without reading to the end
    boxes = top_level_boxes(path)
    assert "moof" not in boxes, "remuxed into an ordinary MP4, not fragments"
    assert boxes.index("moov") < boxes.index("mdat")
    return float(info["format"]["duration"])


def go_live(relay: RelayProcess, session: str, streams: list[str] | None = None) -> Path:
    """Tell the relay ``session`` is live in or-3; the folder its recordings go to."""
    message = {"kind": "session_live", "room": "or-3", "session": session}
    assert relay.control({**message, "streams": streams or ["cam"]}) == {"ok": True}
    return relay.log_path.parent / "recordings" / "or-3" / session


def end(relay: RelayProcess, session: str) -> None:
    answer = relay.control({"kind": "session_end", "room": "or-3", "session": session})
    assert answer["ok"] is True


def media_start_s(path: Path) -> float:
    """The media time in the relay's file name (``-m<ms>.mp4``) [s]."""
    return int(path.name.rsplit("-m", 1)[1].removesuffix(".mp4")) / 1000


def test_the_name_carries_the_wall_and_media_start() -> None:
    at = datetime(2026, 12, 6, 7, 0, 1, 234_567, tzinfo=UTC)
    assert recording_name("field", at, 37.2004) == "field-20261206T070001.234Z-m37200.mp4"


def test_nothing_is_recorded_for_a_room_without_a_live_session(relay_factory: StartRelay) -> None:
    relay = relay_factory(camera_rooms("or-3"), record_dir="recordings")
    wait_for(relay.ffmpeg_pids, 10.0)
    time.sleep(2.0)
    assert stop_relay(relay) == 0
    assert not (relay.log_path.parent / "recordings").exists()


def test_sigterm_leaves_a_seekable_mp4_of_the_time_recorded(relay_factory: StartRelay) -> None:
    relay = relay_factory(camera_rooms("or-3"), record_dir="recordings")
    wait_for(relay.ffmpeg_pids, 10.0)
    time.sleep(1.0)  # the stream is under way: the session joins it at a keyframe
    folder = go_live(relay, "7")
    # the file exists from the session's first keyframe on
    wait_for(lambda: list(folder.glob("cam-*.mp4.part")), 15.0)
    started = time.monotonic()
    time.sleep(3.0)
    # the recording ends when the relay is told to stop
    recorded_s = time.monotonic() - started
    assert stop_relay(relay) == 0
    (recording,) = folder.iterdir()
    assert recording.name.startswith("cam-") and recording.suffix == ".mp4"
    assert abs(assert_seekable_h264_aac(recording) - recorded_s) <= 1.0
    # joined mid-run: its first frame is not at the encoder's time 0
    assert media_start_s(recording) > 0.3


def test_two_overlapping_sessions_in_one_room_get_only_their_own_time(
    relay_factory: StartRelay,
) -> None:
    relay = relay_factory(camera_rooms("or-3"), record_dir="recordings")
    wait_for(relay.ffmpeg_pids, 10.0)
    first = go_live(relay, "41")
    a_from = time.monotonic()
    wait_for(lambda: list(first.glob("*.part")), 15.0)
    time.sleep(2.0)
    second = go_live(relay, "42")
    b_from = time.monotonic()
    wait_for(lambda: list(second.glob("*.part")), 15.0)
    time.sleep(2.0)
    # the first ends while the second goes on: its file is finished now, not at relay stop
    end(relay, "41")
    a_to = time.monotonic()
    wait_for(lambda: list(first.glob("*.mp4")) and not list(first.glob("*.part")), 15.0)
    ended_at = time.time()
    time.sleep(2.0)
    end(relay, "42")
    b_to = time.monotonic()
    wait_for(lambda: list(second.glob("*.mp4")) and not list(second.glob("*.part")), 15.0)
    # a session announced again after its end is not recorded again
    go_live(relay, "41")
    time.sleep(1.5)
    assert stop_relay(relay) == 0
    (a,) = first.iterdir()
    (b,) = second.iterdir()
    assert a.stat().st_mtime <= ended_at + 0.5
    # each file covers its session's live time (from its first keyframe), not the other's
    assert abs(assert_seekable_h264_aac(a) - (a_to - a_from)) <= 1.2
    assert abs(assert_seekable_h264_aac(b) - (b_to - b_from)) <= 1.2
    # the second began later on the same encoder's timeline, by the time between the two
    assert abs(media_start_s(b) - media_start_s(a) - (b_from - a_from)) <= 1.2


@pytest.mark.asyncio
async def test_a_viewers_token_naming_a_session_starts_its_recording(
    relay_factory: StartRelay,
) -> None:
    relay = relay_factory(camera_rooms("or-3"), record_dir="recordings")
    folder = relay.log_path.parent / "recordings" / "or-3" / "9"
    received = Received()
    token = relay.token("or-3", session="9")
    async with connect(relay.url("or-3", "cam", token=token)) as ws:
        async with asyncio.timeout(10.0):
            while len(received.fragments()) < 3:
                received.add(await ws.recv())
    wait_for(lambda: list(folder.glob("cam-*.mp4.part")), 10.0)
    await asyncio.to_thread(end, relay, "9")
    await asyncio.to_thread(wait_for, lambda: list(folder.glob("cam-*.mp4")), 15.0)
    assert stop_relay(relay) == 0


def test_a_restarted_source_starts_a_second_file(relay_factory: StartRelay) -> None:
    relay = relay_factory(camera_rooms("or-3"), record_dir="recordings", restart_initial_s=0.2)
    folder = go_live(relay, "7")
    wait_for(lambda: list(folder.glob("*.part")), 15.0)
    time.sleep(1.5)
    (first_pid,) = relay.ffmpeg_pids()
    psutil.Process(first_pid).send_signal(signal.SIGKILL)
    # the first file is finished while the restarted source writes the second
    wait_for(lambda: len(list(folder.glob("*.mp4"))) == 1, 15.0)
    wait_for(lambda: list(folder.glob("*.part")), 15.0)
    time.sleep(1.5)
    assert stop_relay(relay) == 0
    files = sorted(folder.iterdir())
    assert [f.suffix for f in files] == [".mp4", ".mp4"]
    for path in files:
        assert assert_seekable_h264_aac(path) > 0.5


def test_only_the_highest_quality_is_recorded(relay_factory: StartRelay) -> None:
    rooms = {
        "or-3": {"cam": {"source": {"kind": "test", "fps": 15}, "qualities": ["720p", "360p"]}}
    }
    relay = relay_factory(rooms, record_dir="recordings")
    folder = go_live(relay, "7")
    wait_for(lambda: list(folder.glob("*.part")), 20.0)
    time.sleep(1.5)
    assert stop_relay(relay) == 0
    (recording,) = folder.iterdir()
    video = next(s for s in probe(recording)["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (1280, 720)


@pytest.mark.asyncio
async def test_a_disk_error_stops_recording_but_not_the_viewers(
    relay_factory: StartRelay, tmp_path: Path
) -> None:
    # the recordings folder cannot be made: a file is in its place
    (tmp_path / "blocked").write_bytes(b"not a folder")
    relay = relay_factory(camera_rooms("or-3"), record_dir=str(tmp_path / "blocked"))
    await asyncio.to_thread(go_live, relay, "7")
    await asyncio.to_thread(wait_for, lambda: "recording stopped" in relay.log(), 15.0)
    received = Received()
    async with connect(relay.url("or-3", "cam", token=relay.token("or-3"))) as ws:
        async with asyncio.timeout(10.0):
            while len(received.fragments()) < 3:
                received.add(await ws.recv())
    assert stop_relay(relay) == 0
    assert (tmp_path / "blocked").read_bytes() == b"not a folder"
