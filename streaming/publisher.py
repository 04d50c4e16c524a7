"""A station's side of publishing: raw frames -> ffmpeg (`sources.build_pipeline`, kind "raw")
-> fragmented MP4 -> one WebSocket to the relay's publish endpoint.

Like an RTMP or WHIP ingest: the station encodes, the relay only cuts and fans out. The
station connects to ``ws://RELAY/publish/rooms/<room>/streams/<stream>/<quality>?token=...``
with a publish token the shell signed for this station, room and stream
(`streaming.tokens.issue_publish_token`); the relay answers ``{"type": "publish_ok"}`` or
closes with a code (4401 token, 4403 another room or stream or publishing revoked, 4404 not a
published stream).

Threads, so that a slow renderer never slows the clock of the video:
- ``grab``: asks the frame source for pictures as fast as it gives them, keeps the latest;
- ``feed``: writes the latest picture to ffmpeg's stdin exactly ``fps`` times a second (a
  picture repeated when the renderer is late), so media time follows wall time;
- ``send``: reads ffmpeg's stdout and sends each read as one binary message;
- ``listen``: reads what the relay says: a renewed publish token, or why it closed the link;
- ``link``: watches the link (one connection and the ffmpeg feeding it), and when it drops
  opens the next.

Reconnecting: when the relay goes away (restarted, a network blip, a stall) the link's ffmpeg
is stopped and a new one started on a new connection, because a viewer of a new connection
needs a new init segment and a keyframe, which only a new encoder run begins with; ``grab``
carries on meanwhile. Attempts back off from RECONNECT_INITIAL_S doubling to RECONNECT_MAX_S,
until `stop`, or until the publish token it holds expires: the relay renews it while the
publisher is connected (``publish_ok`` / ``publish_token`` messages, valid 60 s, renewed every
20 s), so that is 40 to 60 s after the drop, and the relay would refuse it after that anyway.
A relay that says "not you" is not tried again (FINAL_CLOSE_CODES: refused, revoked, replaced
by a newer publisher, bytes it could not read): that, the token running out, ffmpeg dying or
the renderer dying stops the publisher with one line in ``error``; the relay's viewers then see
"signal lost". ``reconnects`` counts the links opened after the first.
"""

import contextlib
import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection, connect

from streaming.sources import LADDER, SourceSpec, command

log = logging.getLogger("streaming.publisher")

# ffmpeg's stdout is read in pieces this large; each goes out as one message [bytes]
_READ_BYTES: Final = 64 * 1024
# the relay answers admission at once on a working link [s]
ADMIT_TIMEOUT_S: Final = 10.0
# ffmpeg gets this long to finish after its stdin closes, then it is killed [s]
STOP_GRACE_S: Final = 3.0
# a lost relay is tried again after this, doubling up to RECONNECT_MAX_S [s]
RECONNECT_INITIAL_S: Final = 0.5
RECONNECT_MAX_S: Final = 5.0
# how long to keep trying when the relay never said how long the token lasts (the shell issues
# publish tokens for 60 s) [s]
RECONNECT_WINDOW_S: Final = 60.0
# closes that say "not you": the same token or the same bytes would be refused again
# (1003, 1007 bytes the relay cannot read; 4401 token, 4403 forbidden or publishing revoked,
# 4404 no such published stream, 4409 replaced by a newer publisher)
FINAL_CLOSE_CODES: Final = frozenset({1003, 1007, 4401, 4403, 4404, 4409})

# (width, height, RGB24 rows bottom to top): what a Panda3D offscreen view gives
Frame = tuple[int, int, bytes]


class PublishRefusedError(Exception):
    """The relay did not admit the publisher: ``close_code`` and its ``reason``."""

    def __init__(self, close_code: int | None, reason: str) -> None:
        super().__init__(f"{close_code}: {reason}")
        self.close_code = close_code
        self.reason = reason


class _Link:
    """One connection to the relay and the ffmpeg run whose output it carries; it goes down
    once, and the first cause says whether the publisher opens another."""

    def __init__(self, ws: ClientConnection, process: subprocess.Popen[bytes]) -> None:
        self.ws = ws
        self.process = process
        self.down = threading.Event()
        self.why = ""
        self.retry = False
        self.threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def end(self, why: str, *, retry: bool) -> None:
        # the threads notice one after another; only the first knows the cause
        with self._lock:
            if self.down.is_set():
                return
            self.why, self.retry = why, retry
            self.down.set()

    def closed(self, exc: Exception) -> None:
        """The socket failed with ``exc``: down, retried unless the relay said "not you"."""
        code = exc.rcvd.code if isinstance(exc, ConnectionClosed) and exc.rcvd else None
        self.end(f"the relay closed the stream: {exc}", retry=code not in FINAL_CLOSE_CODES)


class StreamPublisher:
    """Encode frames from ``grab_frame`` at ``fps`` and publish them until `stop`.

    ``size`` is the frames' (width, height); a frame of another size stops the publisher.
    `start` raises PublishRefusedError when the relay refuses, OSError when ffmpeg cannot run.
    """

    def __init__(
        self,
        *,
        url: str,
        grab_frame: Callable[[], Frame],
        size: tuple[int, int],
        fps: int,
        quality: str,
        ffmpeg_path: str = "ffmpeg",
    ) -> None:
        self.url = url
        self._where = url.split("?")[0]  # for the log: the token stays out of it
        self.grab_frame = grab_frame
        self.size = size
        self.fps = fps
        self.argv = command(
            SourceSpec(kind="raw", raw_size=size, fps=fps, audio=False),
            LADDER[quality],
            ffmpeg_path=ffmpeg_path,
        )
        self.error = ""
        self.frames_written = 0
        self.bytes_sent = 0
        self.reconnects = 0
        self._stop = threading.Event()
        self._latest: bytes | None = None
        self._have_frame = threading.Event()
        # the address with the newest publish token the relay gave, and until when it admits
        self._url = url
        self._token_good_until: float | None = None  # time.monotonic()
        self._link: _Link | None = None
        self._sockets = contextlib.ExitStack()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Connect, be admitted, then start ffmpeg and the threads."""
        ws = self._admit()
        try:
            link = self._open_link(ws)
        except OSError:
            ws.close()
            raise
        self._link = link
        for name, target in (("grab", self._grab), ("link", self._keep_linked)):
            thread = threading.Thread(target=target, name=f"publish-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def running(self) -> bool:
        """Publishing, or reconnecting to a relay that went away; False once stopped or failed."""
        return bool(self._threads) and not self._stop.is_set()

    def stop(self) -> None:
        """Stop grabbing, let ffmpeg end, close the socket (the relay then signals lost)."""
        self._fail("")
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2 * STOP_GRACE_S + 2)
        if not self._threads:
            self._sockets.close()  # never started: `link` closes them otherwise

    def _fail(self, why: str) -> None:
        # the first failure is the one worth reporting; any of them ends the publisher
        if why and not self.error and not self._stop.is_set():
            self.error = why
            log.warning("publisher %s: %s", self._where, why)
        self._stop.set()
        self._have_frame.set()
        link = self._link
        if link is not None:
            link.end(why, retry=False)

    def _admit(self) -> ClientConnection:
        """A connection the relay admitted; PublishRefusedError with its reason if it did not."""
        # entered as a context (websockets wants it); the link's end or `stop` closes it
        ws = self._sockets.enter_context(
            connect(self._url, open_timeout=ADMIT_TIMEOUT_S, compression=None, max_size=4096)
        )
        try:
            answer = ws.recv(timeout=ADMIT_TIMEOUT_S)
        except ConnectionClosed as exc:
            ws.close()
            code = exc.rcvd.code if exc.rcvd is not None else None
            reason = exc.rcvd.reason if exc.rcvd is not None else "connection closed"
            raise PublishRefusedError(code, reason) from None
        except TimeoutError:
            ws.close()
            raise PublishRefusedError(None, "the relay did not answer") from None
        if not (isinstance(answer, str) and self._take_token(answer, "publish_ok")):
            ws.close()
            raise PublishRefusedError(None, "unexpected answer from the relay")
        return ws

    def _take_token(self, text: str, kind: str) -> bool:
        """Whether ``text`` is the relay's message ``kind``; keep the publish token it renews."""
        try:
            message = json.loads(text)
        except ValueError:
            return False
        if not isinstance(message, dict) or message.get("type") != kind:
            return False
        token, ttl_s = message.get("token"), message.get("ttl_s")
        if isinstance(token, str) and type(ttl_s) is int:
            self._url = _with_token(self._url, token)
            self._token_good_until = time.monotonic() + ttl_s
        return True

    def _open_link(self, ws: ClientConnection) -> _Link:
        # a new connection needs a new init segment and keyframe: a new encoder run gives both
        process = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        link = _Link(ws, process)
        for name, target in (("feed", self._feed), ("send", self._send), ("listen", self._listen)):
            thread = threading.Thread(
                target=target, args=(link,), name=f"publish-{name}", daemon=True
            )
            thread.start()
            link.threads.append(thread)
        return link

    def _close_link(self, link: _Link) -> None:
        # ffmpeg first (its stdout then ends, so `send` returns), then the socket; nothing waits
        # for ffmpeg's last fragment: nobody may be reading its stdout any more
        process = link.process
        # `feed` may be writing, or ffmpeg already gone: the pipe is closed either way
        if process.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                process.stdin.close()
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        link.ws.close()
        for thread in link.threads:
            thread.join(timeout=STOP_GRACE_S)
        if process.stdout is not None:
            process.stdout.close()

    def _keep_linked(self) -> None:
        try:
            self._follow_links()
        finally:
            self._sockets.close()

    def _follow_links(self) -> None:
        link = self._link
        while link is not None:
            link.down.wait()
            self._close_link(link)
            if self._stop.is_set():
                return
            if not link.retry:
                self._fail(link.why)
                return
            log.warning("publisher %s: %s; reconnecting", self._where, link.why)
            link = self._reconnect(link.why)
            self._link = link
            # `stop` may have come while the link opened: it read the old one
            if link is not None and self._stop.is_set():
                link.end("", retry=False)

    def _reconnect(self, why: str) -> _Link | None:
        """The next link, or None when stopped or given up (``error`` says why)."""
        now = time.monotonic()
        give_up_at = self._token_good_until or now + RECONNECT_WINDOW_S
        backoff_s = RECONNECT_INITIAL_S
        # waiting first: a relay that just closed us is restarting, or the network is down
        while not self._stop.wait(backoff_s):
            if time.monotonic() >= give_up_at:
                self._fail(f"{why}; gave up reconnecting: the publish token expired")
                return None
            try:
                ws = self._admit()
            except PublishRefusedError as exc:
                if exc.close_code in FINAL_CLOSE_CODES:
                    self._fail(f"the relay refused: {exc.close_code} {exc.reason}")
                    return None
                log.info("publisher %s: not admitted yet: %s", self._where, exc)
            except (OSError, TimeoutError, WebSocketException) as exc:
                log.info("publisher %s: relay unreachable: %s", self._where, exc)
            else:
                try:
                    link = self._open_link(ws)
                except OSError as exc:
                    ws.close()
                    self._fail(f"ffmpeg did not start: {exc}")
                    return None
                self.reconnects += 1
                log.info("publisher %s: reconnected", self._where)
                return link
            backoff_s = min(backoff_s * 2, RECONNECT_MAX_S)
        return None

    def _grab(self) -> None:
        expected = self.size[0] * self.size[1] * 3
        while not self._stop.is_set():
            try:
                width, height, rgb = self.grab_frame()
            except Exception as exc:  # the renderer died: say so once, stop publishing
                self._fail(f"frame source failed: {type(exc).__name__}: {exc}")
                return
            if (width, height) != self.size or len(rgb) != expected:
                self._fail(f"frame of {width}x{height} ({len(rgb)} bytes), expected {self.size}")
                return
            self._latest = rgb
            self._have_frame.set()

    def _feed(self, link: _Link) -> None:
        # a fixed cadence: the picture's clock is the wall clock even when rendering is late
        while not self._have_frame.wait(timeout=0.1):
            if link.down.is_set():
                return
        stdin = link.process.stdin
        assert stdin is not None
        period_s = 1.0 / self.fps
        next_s = time.monotonic()
        while not link.down.is_set():
            frame = self._latest
            if frame is None:
                return
            try:
                stdin.write(frame)
                stdin.flush()
            except (OSError, ValueError):
                link.end("ffmpeg stopped taking frames", retry=False)
                return
            self.frames_written += 1
            next_s += period_s
            delay_s = next_s - time.monotonic()
            if delay_s > 0:
                link.down.wait(delay_s)
            else:
                next_s = time.monotonic()  # fell behind (a busy machine): do not burst

    def _send(self, link: _Link) -> None:
        stdout = link.process.stdout
        assert stdout is not None
        while True:
            chunk = os.read(stdout.fileno(), _READ_BYTES)
            if not chunk:
                link.end(f"ffmpeg exited ({link.process.poll()})", retry=False)
                return
            try:
                link.ws.send(chunk)
            except (ConnectionClosed, WebSocketException, OSError) as exc:
                link.closed(exc)
                return
            self.bytes_sent += len(chunk)

    def _listen(self, link: _Link) -> None:
        # the relay closing is seen here at once, even between two fragments
        try:
            while True:
                message = link.ws.recv()
                if isinstance(message, str):
                    self._take_token(message, "publish_token")
        except (ConnectionClosed, WebSocketException, OSError) as exc:
            link.closed(exc)


def _with_token(url: str, token: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "token"] + [("token", token)]
    return urlunsplit(parts._replace(query=urlencode(query)))
