"""The live relay: one ffmpeg per stream and quality, fanned out to viewers over WebSockets.

Rooms (an operating room, a simulator station) hold named streams (``field``, ``endoscope``,
``sim``); each stream runs one ffmpeg per quality (`streaming.sources`), whose fragmented MP4
is cut by `Fmp4Splitter`. A viewer connects to::

    ws://HOST:PORT/rooms/<room>/streams/<stream>/<quality>?token=<streaming.tokens token>

and receives binary messages: the init segment, then whole fragments, the first one always
starting with a keyframe. Text messages are JSON signals: ``{"type": "signal_lost"}`` when the
source stops (ffmpeg exits, or sends nothing for ``stall_timeout_s``), then, once the restarted
ffmpeg delivers, ``{"type": "signal_restored"}`` and a fresh init segment.

A stream may instead be published by a station (config ``"source": {"kind": "publish"}``): the
station encodes its own view and sends the fragmented MP4 to::

    ws://HOST:PORT/publish/rooms/<room>/streams/<stream>/<quality>?token=<publish token>

admitted only with a publish token for exactly that room and stream
(`streaming.tokens.verify_publish_token`; a viewer's token is refused), answered
``{"type": "publish_ok", "token", "ttl_s"}``; its bytes are cut and fanned out like an
ffmpeg's, and its leaving is a lost signal (`Feed.ingest`, `streaming.publisher`). The
``token`` is a fresh publish token for the same station, room and stream, renewed every
PUBLISH_RENEW_S (``{"type": "publish_token", "token", "ttl_s"}``): a publisher that loses the
relay reconnects with it, however long ago the shell's own token was issued.

Fan-out never waits for a viewer: each has a bounded queue of fragments; when it is full the
viewer loses fragments until the next keyframe (so what it gets always decodes), while the
source and the other viewers carry on. Admission is a short-lived token, checked on connect,
naming the user and the live session (`streaming.tokens`).

The shell controls the relay over ``ws://HOST:PORT/control`` (from loopback only): one signed
control message per connection (`streaming.tokens.sign_control`), answered ``{"ok": true}``:

- ``{"kind": "revoke", "room", "session", "user"}``: the user was removed from the session's
  invitation list: their sockets for that session close now (4403 "access revoked") and their
  tokens issued before the message are refused from then on;
- ``{"kind": "session_end", "room", "session"}``: every socket of the session closes (4403
  "session ended"), every token for it is refused, and its recordings are finished;
- ``{"kind": "session_live", "room", "session", "streams"}``: the session is live: record its
  streams (a viewer's token naming a session it has not heard of starts the same recording);
- ``{"kind": "revoke_publish", "room", "stream"}``: the shell stopped the stream: its publisher
  is closed now (4403 "publishing revoked") and publish tokens for it issued before the message
  (the shell's, and those this relay renewed) are refused the same way from then on.

With ``record_dir`` in the config, each live session's streams are written to MP4 at the
stream's highest quality (`streaming.recorder`) under ``<record_dir>/<room>/<session>/``, one
file per encoder run, from the moment the relay hears of the session until it ends.

Run: ``python -m streaming.relay --host 127.0.0.1 --port 8765 --config relay.json``; SIGTERM
or SIGINT closes the viewers, stops every ffmpeg and finishes the recordings before the process
exits.
"""

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import math
import re
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from streaming.fmp4 import Fmp4Error, Fmp4Splitter, Fragment, InitSegment
from streaming.recorder import StreamRecorder
from streaming.sources import LADDER, Quality, SourceSpec, command
from streaming.tokens import (
    CLOSE_FORBIDDEN,
    CLOSE_UNAUTHENTICATED,
    DEFAULT_TTL_S,
    MAX_TTL_S,
    MIN_SECRET_BYTES,
    ControlError,
    Grant,
    PublishGrant,
    TokenError,
    issue_publish_token,
    verify_control,
    verify_publish_token,
    verify_token,
)

log = logging.getLogger("streaming.relay")

# two seconds of 0.2 s fragments: more is lag a viewer would rather skip [fragments]
QUEUE_FRAGMENTS = 10
RESTART_INITIAL_S = 0.5
RESTART_MAX_S = 10.0
# a source that ran this long before failing starts its backoff over [s]
STABLE_RUN_S = 30.0
# a camera that stops sending without exiting (rtsp stall) counts as lost after this [s]
STALL_TIMEOUT_S = 5.0
# ffmpeg gets this long to exit after SIGTERM before SIGKILL [s]
STOP_GRACE_S = 3.0
# kernel send buffer per viewer [bytes]; Linux doubles it. Left to autotuning it grows to
# megabytes, tens of seconds of 360p queued in the kernel before a slow viewer ever skips;
# 128 KiB still carries 1080p (~0.6 MB/s) over a 200 ms round trip.
SEND_BUFFER_BYTES = 128 * 1024
CLOSE_NOT_FOUND = 4404
CONTROL_PATH = "/control"
# the shell sends its one message at once; a silent control connection is dropped [s]
CONTROL_READ_TIMEOUT_S = 5.0
_LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
_SESSION = re.compile(r"[A-Za-z0-9_-]{1,64}")
_USER = re.compile(r"[A-Za-z0-9_.@-]{1,150}")
_READ_BYTES = 64 * 1024
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PATH = re.compile(
    r"/rooms/(?P<room>[A-Za-z0-9_-]+)/streams/(?P<stream>[A-Za-z0-9_-]+)"
    r"/(?P<quality>[A-Za-z0-9_-]+)"
)
# a station publishing its encoded view: /publish/rooms/<room>/streams/<stream>/<quality>
_PUBLISH_PATH = re.compile(r"/publish" + _PATH.pattern)
# one publisher message: a read of ffmpeg's pipe (64 KiB), with room for a larger writer [bytes]
PUBLISH_MAX_MESSAGE_BYTES = 1024 * 1024
# a publisher replaced by a newer one (the station reconnected), and one that went silent
CLOSE_REPLACED = 4409
CLOSE_PUBLISH_STALLED = 4408
SIGNAL_LOST = json.dumps({"type": "signal_lost"})
SIGNAL_RESTORED = json.dumps({"type": "signal_restored"})
# an admitted publisher gets a fresh publish token this often, each valid DEFAULT_TTL_S: one it
# holds when the link drops still has 40 s or more to reconnect with [s]
PUBLISH_RENEW_S = 20.0


class ConfigError(ValueError):
    """The relay config file is not usable; one sentence naming the field."""


@dataclass(frozen=True)
class StreamConfig:
    # None for a published stream: a station sends the encoded picture (`Feed.ingest`)
    source: SourceSpec | None
    qualities: tuple[str, ...]


@dataclass(frozen=True)
class RelayConfig:
    secret: bytes
    rooms: dict[str, dict[str, StreamConfig]]  # room -> stream name -> stream
    queue_fragments: int = QUEUE_FRAGMENTS
    restart_initial_s: float = RESTART_INITIAL_S
    restart_max_s: float = RESTART_MAX_S
    stall_timeout_s: float = STALL_TIMEOUT_S
    send_buffer_bytes: int = SEND_BUFFER_BYTES
    ffmpeg_path: str = "ffmpeg"
    # each live session's streams are recorded under <record_dir>/<room>/<session>/
    record_dir: Path | None = None


def load_config(path: Path) -> RelayConfig:
    """Read the relay's JSON config; ``secret_file`` is relative to the config's folder.

    {"secret_file": "relay.secret", "queue_fragments": 10, "restart_initial_s": 0.5,
     "restart_max_s": 10, "stall_timeout_s": 5, "record_dir": "recordings",
     "rooms": {"or-3": {"field": {"source": {"kind": "url", "url": "rtsp://...",
                                             "input_options": {"rtsp_transport": "tcp"}},
                                  "qualities": ["720p", "360p"]}}}}
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    known = {"secret_file", "rooms", "queue_fragments", "restart_initial_s", "restart_max_s"}
    known |= {"stall_timeout_s", "send_buffer_bytes", "ffmpeg_path", "record_dir"}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{path}: unknown fields {sorted(unknown)}")
    secret_file = Path(path).parent / str(raw.get("secret_file", ""))
    try:
        secret = secret_file.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"secret_file: {exc}") from exc
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(f"secret_file: {len(secret)} bytes, needs at least {MIN_SECRET_BYTES}")
    record_dir: Path | None = None
    if "record_dir" in raw:
        if not isinstance(raw["record_dir"], str) or not raw["record_dir"]:
            raise ConfigError("record_dir: expected a folder name")
        # like secret_file: relative to the config's folder, an absolute path as it is
        record_dir = Path(path).parent / raw["record_dir"]
    rooms: dict[str, dict[str, StreamConfig]] = {}
    if not isinstance(raw.get("rooms"), dict) or not raw["rooms"]:
        raise ConfigError("rooms: expected an object with at least one room")
    for room, streams in raw["rooms"].items():
        if not _NAME.fullmatch(room) or not isinstance(streams, dict) or not streams:
            raise ConfigError(f"rooms.{room}: expected a name [A-Za-z0-9_-] with streams")
        rooms[room] = {
            name: _stream(f"rooms.{room}.{name}", name, s) for name, s in streams.items()
        }
    config = RelayConfig(
        secret=secret,
        rooms=rooms,
        queue_fragments=int(raw.get("queue_fragments", QUEUE_FRAGMENTS)),
        restart_initial_s=float(raw.get("restart_initial_s", RESTART_INITIAL_S)),
        restart_max_s=float(raw.get("restart_max_s", RESTART_MAX_S)),
        stall_timeout_s=float(raw.get("stall_timeout_s", STALL_TIMEOUT_S)),
        send_buffer_bytes=int(raw.get("send_buffer_bytes", SEND_BUFFER_BYTES)),
        ffmpeg_path=str(raw.get("ffmpeg_path", "ffmpeg")),
        record_dir=record_dir,
    )
    if config.queue_fragments < 1:
        raise ConfigError("queue_fragments: expected at least 1")
    if not 0 < config.restart_initial_s <= config.restart_max_s:
        raise ConfigError("restart_initial_s, restart_max_s: expected 0 < initial <= max")
    return config


def _stream(where: str, name: str, raw: Any) -> StreamConfig:
    if not _NAME.fullmatch(name) or not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a name [A-Za-z0-9_-] and an object")
    source = raw.get("source")
    qualities = raw.get("qualities", ["360p"])
    if not isinstance(source, dict):
        raise ConfigError(f"{where}.source: expected an object")
    if not isinstance(qualities, list) or not qualities or set(qualities) - set(LADDER):
        raise ConfigError(f"{where}.qualities: expected a list drawn from {sorted(LADDER)}")
    # raw frames arrive on an encoder's stdin, which the relay does not own
    if source.get("kind") == "raw":
        raise ConfigError(f"{where}.source: the relay runs test and url sources, not raw")
    # a station encodes its own view and publishes the fragments (/publish/...)
    if source.get("kind") == "publish":
        if set(source) != {"kind"}:
            raise ConfigError(f"{where}.source: a publish source has no other fields")
        return StreamConfig(source=None, qualities=tuple(qualities))
    try:
        spec = SourceSpec(
            kind=source.get("kind", ""),
            url=str(source.get("url", "")),
            input_options={str(k): str(v) for k, v in source.get("input_options", {}).items()},
            fps=int(source.get("fps", 25)),
            audio=bool(source.get("audio", True)),
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{where}.source: {exc}") from exc
    return StreamConfig(source=spec, qualities=tuple(qualities))


class Viewer:
    """What one connection still has to be sent; filled by the feed, emptied by `pump`."""

    def __init__(self, max_fragments: int) -> None:
        self.max_fragments = max_fragments
        self.sent_fragments = 0
        self.dropped_fragments = 0
        self._items: collections.deque[Fragment | bytes | str] = collections.deque()
        self._queued_fragments = 0
        self._wants_keyframe = True
        self._ready = asyncio.Event()

    def send_init(self, init: bytes) -> None:
        # a new init (first or after restart) needs a new keyframe before any fragment
        self._push(init)
        self._wants_keyframe = True

    def send_signal(self, text: str) -> None:
        self._push(text)

    def offer(self, fragment: Fragment) -> None:
        """Queue ``fragment`` unless the viewer must wait for a keyframe or its queue is full."""
        if self._wants_keyframe and not fragment.keyframe:
            self.dropped_fragments += 1
            return
        if self._queued_fragments >= self.max_fragments:
            # too far behind: skip ahead to the next keyframe, keep what is queued (it decodes)
            self._wants_keyframe = True
            self.dropped_fragments += 1
            return
        self._wants_keyframe = False
        self._queued_fragments += 1
        self._push(fragment)

    def _push(self, item: Fragment | bytes | str) -> None:
        self._items.append(item)
        self._ready.set()

    async def pump(self, ws: ServerConnection) -> None:
        """Send queued items in order until the connection closes."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._items:
                item = self._items.popleft()
                if isinstance(item, Fragment):
                    self._queued_fragments -= 1
                    self.sent_fragments += 1
                    item = item.data
                await ws.send(item)


FeedKey = tuple[str, str, str]  # room, stream, quality
# called with each fragment and when the relay read its last byte (loop.time(): time.monotonic)
FragmentHook = Callable[[FeedKey, Fragment, float], None]


@dataclass
class Feed:
    """One ffmpeg (restarted when it dies) and the viewers of its output."""

    key: FeedKey
    argv: list[str]  # empty for a published feed: no ffmpeg, a station's socket feeds it
    config: RelayConfig
    on_fragment: FragmentHook | None = None
    # live session id -> its recording of this feed (only the stream's best quality has any)
    recorders: dict[str, StreamRecorder] = field(default_factory=dict)
    init: bytes | None = None
    lost: bool = False
    restarts: int = 0
    viewers: set[Viewer] = field(default_factory=set)
    process: asyncio.subprocess.Process | None = None
    stderr_task: asyncio.Task[None] | None = None
    task: asyncio.Task[None] | None = None
    # the station socket publishing into this feed now (a published feed only)
    publisher: ServerConnection | None = None

    def attach(self, viewer: Viewer) -> None:
        # a late joiner: the current init, and the lost signal if the source is down now
        if self.lost:
            viewer.send_signal(SIGNAL_LOST)
        elif self.init is not None:
            viewer.send_init(self.init)
        self.viewers.add(viewer)

    async def run(self) -> None:
        """Run ffmpeg, restarting it with exponential backoff, until cancelled."""
        loop = asyncio.get_running_loop()
        backoff_s = self.config.restart_initial_s
        while True:
            started = loop.time()
            try:
                await self._run_once()
            except Fmp4Error as exc:
                log.warning("%s: ffmpeg output unreadable: %s", "/".join(self.key), exc)
            except OSError as exc:
                log.warning("%s: ffmpeg did not start: %s", "/".join(self.key), exc)
            except Exception:
                # a bug here must not end the feed: viewers would see a frozen picture
                log.exception("%s: feed failed", "/".join(self.key))
            finally:
                # viewers hear at once, not after ffmpeg's grace period: the picture is not live
                self._mark_lost()
                # the file of this encoder run is complete; a restart begins a new one
                for recorder in self.recorders.values():
                    recorder.end()
                await self._end_process()
            if loop.time() - started > STABLE_RUN_S:
                backoff_s = self.config.restart_initial_s
            log.warning("%s: source lost, restart in %.1f s", "/".join(self.key), backoff_s)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, self.config.restart_max_s)
            self.restarts += 1

    async def _run_once(self) -> None:
        process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.process = process
        assert process.stdout is not None and process.stderr is not None
        self.stderr_task = asyncio.create_task(_log_stderr(process.stderr, "/".join(self.key)))
        splitter = Fmp4Splitter()
        loop = asyncio.get_running_loop()
        while True:
            try:
                async with asyncio.timeout(self.config.stall_timeout_s):
                    chunk = await process.stdout.read(_READ_BYTES)
            except TimeoutError:
                log.warning(
                    "%s: no data for %.1f s", "/".join(self.key), self.config.stall_timeout_s
                )
                return
            if not chunk:
                return
            read_at = loop.time()
            for segment in splitter.feed(chunk):
                if isinstance(segment, InitSegment):
                    self._deliver_init(segment.data)
                else:
                    self._deliver(segment, read_at)

    async def ingest(self, ws: ServerConnection, station_id: str) -> None:
        """Take a publisher's fragmented MP4 (binary messages, any chunking) until it leaves,
        sends something unreadable, or is silent for ``stall_timeout_s``; then signal lost.

        A newer publisher replaces this one (the station reconnected): the old socket is
        closed 4409 and the viewers go on with the new one's init segment."""
        name = "/".join(self.key)
        previous, self.publisher = self.publisher, ws
        if previous is not None:
            log.info("%s: publisher replaced by station %s", name, station_id)
            # a viewer joining before the new init arrives would get the old one, then the new
            self.init = None
            with contextlib.suppress(ConnectionClosed):
                await previous.close(CLOSE_REPLACED, "replaced by a newer publisher")
        splitter = Fmp4Splitter()
        loop = asyncio.get_running_loop()
        log.info("%s: station %s publishing", name, station_id)
        try:
            while True:
                try:
                    async with asyncio.timeout(self.config.stall_timeout_s):
                        chunk = await ws.recv()
                except TimeoutError:
                    log.warning(
                        "%s: publisher silent for %.1f s", name, self.config.stall_timeout_s
                    )
                    await ws.close(CLOSE_PUBLISH_STALLED, "no data")
                    return
                if isinstance(chunk, str):
                    await ws.close(1003, "expected binary fragmented MP4")
                    return
                read_at = loop.time()
                for segment in splitter.feed(chunk):
                    if self.publisher is not ws:
                        return  # replaced meanwhile: the new publisher owns the feed
                    if isinstance(segment, InitSegment):
                        self._deliver_init(segment.data)
                    else:
                        self._deliver(segment, read_at)
        except Fmp4Error as exc:
            log.warning("%s: publisher's bytes unreadable: %s", name, exc)
            await ws.close(1007, "not a fragmented MP4 this relay can follow")
        except ConnectionClosed:
            pass
        finally:
            if self.publisher is ws:
                self.publisher = None
                self._mark_lost()
                for recorder in self.recorders.values():
                    recorder.end()
                log.info("%s: station %s stopped publishing", name, station_id)

    def _mark_lost(self) -> None:
        if not self.lost:
            self.lost = True
            self.init = None
            for viewer in self.viewers:
                viewer.send_signal(SIGNAL_LOST)

    def _deliver_init(self, init: bytes) -> None:
        restored = self.lost
        self.lost = False
        self.init = init
        for recorder in self.recorders.values():
            recorder.begin(init)
        for viewer in self.viewers:
            if restored:
                viewer.send_signal(SIGNAL_RESTORED)
            viewer.send_init(init)

    def _deliver(self, fragment: Fragment, read_at: float) -> None:
        if self.on_fragment is not None:
            self.on_fragment(self.key, fragment, read_at)
        for recorder in self.recorders.values():
            recorder.write(fragment)
        for viewer in self.viewers:
            viewer.offer(fragment)

    async def _end_process(self) -> None:
        # SIGTERM, a grace period, then SIGKILL; always reaped, so no zombie or orphan
        process, self.process = self.process, None
        if process is None:
            return
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                async with asyncio.timeout(STOP_GRACE_S):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        # ffmpeg's last words (why the camera failed) come after its stdout closes
        if self.stderr_task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stderr_task, 1.0)
            self.stderr_task.cancel()
            self.stderr_task = None


async def _log_stderr(stderr: asyncio.StreamReader, name: str) -> None:
    # ffmpeg runs at -loglevel error: what it says is worth a log line, and the pipe must drain
    async for line in stderr:
        log.warning("%s: ffmpeg: %s", name, line.decode("utf-8", "replace").rstrip()[:300])


class Relay:
    """Every feed of a config and the WebSocket server in front of them."""

    def __init__(self, config: RelayConfig, *, on_fragment: FragmentHook | None = None) -> None:
        self.config = config
        self.feeds: dict[FeedKey, Feed] = {}
        # (room, stream) -> the feed of its best picture: the one worth recording
        self.best: dict[tuple[str, str], Feed] = {}
        for room, streams in config.rooms.items():
            for name, stream in streams.items():
                for quality_name in stream.qualities:
                    quality: Quality = LADDER[quality_name]
                    key = (room, name, quality_name)
                    if stream.source is None:
                        # nobody publishes yet: a viewer joining now hears "signal lost"
                        feed = Feed(key, [], config, on_fragment=on_fragment, lost=True)
                    else:
                        argv = command(stream.source, quality, ffmpeg_path=config.ffmpeg_path)
                        feed = Feed(key, argv, config, on_fragment=on_fragment)
                    self.feeds[key] = feed
                best = max(stream.qualities, key=lambda q: LADDER[q].height)
                self.best[(room, name)] = self.feeds[(room, name, best)]
        # (room, session, user) -> the sockets watching with a token naming them
        self.watching: dict[tuple[str, str, str], set[ServerConnection]] = {}
        # (room, session, user or "*") -> (tokens issued at or before this unix ms are
        # refused, monotonic time of the revocation: forgotten once every such token expired)
        self.revoked: dict[tuple[str, str, str], tuple[float, float]] = {}
        # (room, stream) -> (publish tokens issued at or before this unix ms are refused,
        # monotonic time of the revocation), as for viewers
        self.publish_revoked: dict[tuple[str, str], tuple[float, float]] = {}
        # recorders of ended sessions, still remuxing: `stop` waits for them
        self._retired: list[StreamRecorder] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._server: Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen, then start every ffmpeg; return the port (useful with ``port=0``)."""
        # listening first: a port in use fails before any ffmpeg is started
        # video does not compress further; viewers send nothing bigger than a close frame
        self._server = await serve(self._handle, host, port, compression=None, max_size=4096)
        for feed in self.feeds.values():
            if feed.argv:
                feed.task = asyncio.create_task(feed.run(), name="/".join(feed.key))
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close every viewer (1001 going away), then stop and reap every ffmpeg."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        tasks = [feed.task for feed in self.feeds.values() if feed.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # every ffmpeg has stopped: remux the recordings they leave
        recorders = [r for f in self.feeds.values() for r in f.recorders.values()]
        await asyncio.gather(*(r.drain() for r in recorders + self._retired))

    def ffmpeg_pids(self) -> list[int]:
        return [f.process.pid for f in self.feeds.values() if f.process is not None]

    async def _handle(self, ws: ServerConnection) -> None:
        # admission: token for the room first, so the names of streams are not probed
        assert ws.request is not None
        url = urlsplit(ws.request.path)
        if url.path == CONTROL_PATH:
            await self._control(ws)
            return
        publish = _PUBLISH_PATH.fullmatch(url.path)
        if publish is not None:
            token = parse_qs(url.query).get("token", [""])[0]
            await self._publish(ws, publish["room"], publish["stream"], publish["quality"], token)
            return
        match = _PATH.fullmatch(url.path)
        if match is None:
            await ws.close(CLOSE_NOT_FOUND, "no such path")
            return
        room, stream, quality = match["room"], match["stream"], match["quality"]
        token = parse_qs(url.query).get("token", [""])[0]
        try:
            grant = verify_token(secret=self.config.secret, token=token, room=room)
        except TokenError as exc:
            log.info("refused %s: %s", url.path, exc.reason)
            await ws.close(exc.close_code, exc.reason)
            return
        why = self._revocation(grant)
        if why:
            log.info("refused %s for user %s: %s", url.path, grant.user_id, why)
            await ws.close(CLOSE_FORBIDDEN, why)
            return
        feed = self.feeds.get((room, stream, quality))
        if feed is None:
            await ws.close(CLOSE_NOT_FOUND, "no such stream or quality")
            return
        if grant.session:
            # a session the relay had not heard of (it restarted, or missed the message)
            self._record(room, grant.session, [stream])
        watch_key = (room, grant.session, grant.user_id)
        self.watching.setdefault(watch_key, set()).add(ws)
        # lag builds up in our queue, where it is seen and skipped, not in the kernel's
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.send_buffer_bytes)
        # watch until the viewer leaves or the server stops
        viewer = Viewer(self.config.queue_fragments)
        feed.attach(viewer)
        log.info("viewer %s joined %s", grant.user_id, url.path)
        pump = asyncio.create_task(viewer.pump(ws))
        closed = asyncio.create_task(ws.wait_closed())
        try:
            await asyncio.wait({pump, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            feed.viewers.discard(viewer)
            sockets = self.watching.get(watch_key)
            if sockets is not None:
                sockets.discard(ws)
                if not sockets:
                    del self.watching[watch_key]
            for task in (pump, closed):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await pump
            log.info(
                "viewer %s left %s (sent %d, dropped %d fragments)",
                grant.user_id,
                url.path,
                viewer.sent_fragments,
                viewer.dropped_fragments,
            )

    async def _publish(
        self, ws: ServerConnection, room: str, stream: str, quality: str, token: str
    ) -> None:
        """A station publishing its view: only with a publish token for this room and stream
        (a viewer's token is not one), only into a stream the config declares published."""
        where = f"/publish/rooms/{room}/streams/{stream}/{quality}"
        try:
            grant = verify_publish_token(
                secret=self.config.secret, token=token, room=room, stream=stream
            )
        except TokenError as exc:
            log.warning("publisher refused %s: %s", where, exc.reason)
            await ws.close(exc.close_code, exc.reason)
            return
        why = self._publish_revocation(grant)
        if why:
            log.warning("publisher %s refused %s: %s", grant.station_id, where, why)
            await ws.close(CLOSE_FORBIDDEN, why)
            return
        feed = self.feeds.get((room, stream, quality))
        if feed is None or feed.argv:
            log.warning("publisher %s refused %s: not a published stream", grant.station_id, where)
            await ws.close(CLOSE_NOT_FOUND, "no such published stream or quality")
            return
        # fragments are larger than anything a viewer sends
        ws.protocol.max_message_size = PUBLISH_MAX_MESSAGE_BYTES
        try:
            await ws.send(self._renewed_token("publish_ok", grant))
        except ConnectionClosed:
            return
        renewing = asyncio.create_task(self._keep_renewing(ws, grant))
        try:
            await feed.ingest(ws, grant.station_id)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    def _renewed_token(self, kind: str, grant: PublishGrant) -> str:
        """A message ``kind`` with a fresh publish token for the grant's station and stream."""
        token = issue_publish_token(
            secret=self.config.secret,
            station_id=grant.station_id,
            room=grant.room,
            stream=grant.stream,
            ttl_s=DEFAULT_TTL_S,
        )
        return json.dumps({"type": kind, "token": token, "ttl_s": DEFAULT_TTL_S})

    async def _keep_renewing(self, ws: ServerConnection, grant: PublishGrant) -> None:
        while True:
            await asyncio.sleep(PUBLISH_RENEW_S)
            # revoked, it is being closed: nothing it gets may outlive the revocation
            if self._publish_revocation(grant):
                return
            try:
                await ws.send(self._renewed_token("publish_token", grant))
            except ConnectionClosed:
                return

    def _publish_revocation(self, grant: PublishGrant) -> str:
        """Why a revocation refuses the publish ``grant`` ("" when none does)."""
        self._forget_old_revocations()
        revoked = self.publish_revoked.get((grant.room, grant.stream))
        if revoked is not None and grant.issued_at_ms <= revoked[0]:
            return "publishing revoked"
        return ""

    def _revocation(self, grant: Grant) -> str:
        """Why a revocation refuses ``grant`` ("" when none does)."""
        self._forget_old_revocations()
        ended = self.revoked.get((grant.room, grant.session, "*"))
        if ended is not None and grant.issued_at_ms <= ended[0]:
            return "session ended"
        user = self.revoked.get((grant.room, grant.session, grant.user_id))
        if user is not None and grant.issued_at_ms <= user[0]:
            return "access revoked"
        return ""

    def _forget_old_revocations(self) -> None:
        # every token a revocation refuses was issued before it and lives MAX_TTL_S at most
        horizon = time.monotonic() - MAX_TTL_S - 60
        for key in [k for k, (_, at) in self.revoked.items() if at < horizon]:
            del self.revoked[key]
        for stream in [k for k, (_, at) in self.publish_revoked.items() if at < horizon]:
            del self.publish_revoked[stream]

    def _record(self, room: str, session: str, streams: list[str]) -> None:
        """Record ``streams`` of ``room`` for ``session`` (once; not after the session ended)."""
        if self.config.record_dir is None or (room, session, "*") in self.revoked:
            return
        for stream in streams:
            feed = self.best.get((room, stream))
            if feed is None or session in feed.recorders:
                continue
            recorder = StreamRecorder(
                folder=self.config.record_dir / room / session,
                stream=stream,
                ffmpeg_path=self.config.ffmpeg_path,
            )
            if feed.init is not None and not feed.lost:
                # mid-run: the recording starts at the next keyframe
                recorder.begin(feed.init)
            feed.recorders[session] = recorder
            log.info("%s/%s: recording for session %s", room, stream, session)

    def _end_recordings(self, room: str, session: str) -> None:
        for (feed_room, _), feed in self.best.items():
            recorder = feed.recorders.pop(session, None) if feed_room == room else None
            if recorder is not None:
                recorder.end()
                self._retired.append(recorder)

    async def _close_viewers(self, room: str, session: str, user: str | None, why: str) -> int:
        keys = [
            key
            for key in self.watching
            if key[0] == room and key[1] == session and (user is None or key[2] == user)
        ]
        sockets = [ws for key in keys for ws in self.watching.get(key, ())]
        self._close_soon(sockets, why)
        return len(sockets)

    def _close_soon(self, sockets: list[ServerConnection], why: str) -> None:
        # the close frames go out at once; the handshakes run on without holding the reply
        for ws in sockets:
            task = asyncio.create_task(ws.close(CLOSE_FORBIDDEN, why))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _control(self, ws: ServerConnection) -> None:
        """One signed control message from the shell (loopback only), answered and closed."""
        peer = ws.remote_address[0] if ws.remote_address else ""
        if peer not in _LOOPBACK:
            log.warning("control connection from %s refused: not loopback", peer)
            await ws.close(CLOSE_FORBIDDEN, "control from loopback only")
            return
        try:
            async with asyncio.timeout(CONTROL_READ_TIMEOUT_S):
                text = await ws.recv()
            if not isinstance(text, str):
                raise ControlError("expected a text message")
            claims = verify_control(secret=self.config.secret, text=text)
            answer = await self._apply(claims)
        except (TimeoutError, ConnectionClosed):
            return
        except ControlError as exc:
            log.warning("control message refused: %s", exc)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"ok": False, "error": str(exc)}))
            await ws.close(CLOSE_UNAUTHENTICATED, str(exc)[:100])
            return
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"ok": True, **answer}))
        await ws.close()

    async def _apply(self, claims: dict[str, object]) -> dict[str, object]:
        kind, room, session = claims["kind"], claims.get("room"), claims.get("session")
        if not (isinstance(room, str) and _NAME.fullmatch(room)):
            raise ControlError("room: expected a name [A-Za-z0-9_-]")
        at_ms = float(claims["at"])  # type: ignore[arg-type]  # checked int by verify_control
        now = time.monotonic()
        if kind == "revoke_publish":
            return self._revoke_publishing(room, claims.get("stream"), at_ms)
        if not (isinstance(session, str) and _SESSION.fullmatch(session)):
            raise ControlError("session: expected a name [A-Za-z0-9_-]")
        if kind == "revoke":
            user = claims.get("user")
            if not (isinstance(user, str) and _USER.fullmatch(user)):
                raise ControlError("user: expected a user id")
            previous = self.revoked.get((room, session, user), (0.0, now))[0]
            self.revoked[(room, session, user)] = (max(previous, at_ms), now)
            closed = await self._close_viewers(room, session, user, "access revoked")
            log.info("revoked user %s in %s/%s: %d sockets closed", user, room, session, closed)
            return {"closed": closed}
        if kind == "session_end":
            self.revoked[(room, session, "*")] = (math.inf, now)
            self._end_recordings(room, session)
            closed = await self._close_viewers(room, session, None, "session ended")
            log.info("session %s/%s ended: %d sockets closed", room, session, closed)
            return {"closed": closed}
        if kind == "session_live":
            streams = claims.get("streams")
            if not (
                isinstance(streams, list)
                and len(streams) <= 16
                and all(isinstance(n, str) and _NAME.fullmatch(n) for n in streams)
            ):
                raise ControlError("streams: expected a list of stream names")
            self._record(room, session, [str(n) for n in streams])
            return {}
        raise ControlError(f"unknown kind {str(kind)[:40]!r}")

    def _revoke_publishing(self, room: str, stream: object, at_ms: float) -> dict[str, object]:
        if not (isinstance(stream, str) and _NAME.fullmatch(stream)):
            raise ControlError("stream: expected a name [A-Za-z0-9_-]")
        # this relay's clock as well: a token it renewed after the shell signed the message (the
        # same machine's clock) must not outlive the revocation
        revoked_ms = max(at_ms, time.time() * 1000)
        previous = self.publish_revoked.get((room, stream), (0.0, 0.0))[0]
        self.publish_revoked[(room, stream)] = (max(previous, revoked_ms), time.monotonic())
        publishers = [
            feed.publisher
            for (feed_room, feed_stream, _), feed in self.feeds.items()
            if (feed_room, feed_stream) == (room, stream) and feed.publisher is not None
        ]
        self._close_soon(publishers, "publishing revoked")
        log.info("publishing revoked in %s/%s: %d publishers closed", room, stream, len(publishers))
        return {"closed": len(publishers)}


async def serve_until_signal(config: RelayConfig, host: str, port: int) -> None:
    """Run the relay until SIGTERM or SIGINT; print the port it listens on as one JSON line."""
    relay = Relay(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bound = await relay.start(host, port)
    print(json.dumps({"listening": host, "port": bound}), flush=True)
    try:
        await stop.wait()
    finally:
        await relay.stop()
    log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streaming.relay", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)sZ %(name)s %(message)s")
    logging.Formatter.converter = time.gmtime  # log times in UTC, like the rest of Osteon
    try:
        config = load_config(args.config)
    except (ConfigError, ValueError) as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve_until_signal(config, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
