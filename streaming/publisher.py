"""A station's side of publishing: raw frames -> ffmpeg (`sources.build_pipeline`, kind "raw")
-> fragmented MP4 -> one WebSocket to the relay's publish endpoint.

Like an RTMP or WHIP ingest: the station encodes, the relay only cuts and fans out. The
station connects to ``ws://RELAY/publish/rooms/<room>/streams/<stream>/<quality>?token=...``
with a publish token the shell signed for this station, room and stream
(`streaming.tokens.issue_publish_token`); the relay answers ``{"type": "publish_ok"}`` or
closes with a code (4401 token, 4403 another room or stream, 4404 not a published stream).

Three threads, so that a slow renderer never slows the clock of the video:
- ``grab``: asks the frame source for pictures as fast as it gives them, keeps the latest;
- ``feed``: writes the latest picture to ffmpeg's stdin exactly ``fps`` times a second (a
  picture repeated when the renderer is late), so media time follows wall time;
- ``send``: reads ffmpeg's stdout and sends each read as one binary message.
Any of them failing (the relay gone, ffmpeg dead, the renderer dead) stops the publisher with
one line in ``error``; the relay's viewers then see "signal lost".
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

# (width, height, RGB24 rows bottom to top): what a Panda3D offscreen view gives
Frame = tuple[int, int, bytes]


class PublishRefusedError(Exception):
    """The relay did not admit the publisher: ``close_code`` and its ``reason``."""

    def __init__(self, close_code: int | None, reason: str) -> None:
        super().__init__(f"{close_code}: {reason}")
        self.close_code = close_code
        self.reason = reason


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
        self._stop = threading.Event()
        self._latest: bytes | None = None
        self._have_frame = threading.Event()
        self._ws: ClientConnection | None = None
        self._sockets = contextlib.ExitStack()
        self._process: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Connect, be admitted, then start ffmpeg and the threads."""
        # entered as a context (websockets wants it); `_fail` and `stop` close it
        ws = self._sockets.enter_context(
            connect(self.url, open_timeout=ADMIT_TIMEOUT_S, compression=None, max_size=4096)
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
        if not isinstance(answer, str) or json.loads(answer).get("type") != "publish_ok":
            ws.close()
            raise PublishRefusedError(None, "unexpected answer from the relay")
        self._ws = ws
        self._process = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        for name, target in (("grab", self._grab), ("feed", self._feed), ("send", self._send)):
            thread = threading.Thread(target=target, name=f"publish-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def running(self) -> bool:
        return self._ws is not None and not self._stop.is_set()

    def stop(self) -> None:
        """Stop grabbing, let ffmpeg end, close the socket (the relay then signals lost)."""
        self._fail("")
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=STOP_GRACE_S + 2)
        process = self._process
        if process is not None:
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._sockets.close()

    def _fail(self, why: str) -> None:
        # the first failure is the one worth reporting; any of them stops every thread
        if why and not self.error and not self._stop.is_set():
            self.error = why
            log.warning("publisher %s: %s", self.url.split("?")[0], why)
        self._stop.set()
        self._have_frame.set()
        if self._process is not None and self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
        if self._ws is not None:
            self._ws.close()

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

    def _feed(self) -> None:
        # a fixed cadence: the picture's clock is the wall clock even when rendering is late
        self._have_frame.wait()
        assert self._process is not None and self._process.stdin is not None
        period_s = 1.0 / self.fps
        next_s = time.monotonic()
        while not self._stop.is_set():
            frame = self._latest
            if frame is None:
                return
            try:
                self._process.stdin.write(frame)
                self._process.stdin.flush()
            except (OSError, ValueError):
                self._fail("ffmpeg stopped taking frames")
                return
            self.frames_written += 1
            next_s += period_s
            delay_s = next_s - time.monotonic()
            if delay_s > 0:
                time.sleep(delay_s)
            else:
                next_s = time.monotonic()  # fell behind (a busy machine): do not burst

    def _send(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        assert self._ws is not None
        while True:
            chunk = os.read(self._process.stdout.fileno(), _READ_BYTES)
            if not chunk:
                if not self._stop.is_set():
                    self._fail(f"ffmpeg exited ({self._process.poll()})")
                return
            try:
                self._ws.send(chunk)
            except (ConnectionClosed, WebSocketException, OSError) as exc:
                self._fail(f"the relay closed the stream: {exc}")
                return
            self.bytes_sent += len(chunk)
