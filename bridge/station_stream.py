"""The station's view streamed live: a `StartStream` command from the shell -> the station's
Panda3D view rendered offscreen in a child process (`sim_core.view.live_offscreen`) -> ffmpeg
-> the relay's publish endpoint (`streaming.publisher`).

One stream at a time. Starting takes seconds (the view process loads the case and compiles its
shaders), so it runs in its own thread; the station's loop only hears `StreamStatus` through
``report`` (publishing, then stopped or failed). The view shows ``case_dir``: the case of the
station's running session, else the one it ran last, else the station's ``--view-case``.
"""

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bridge.messages import StartStream, StreamStatus, check_stream
from streaming.publisher import PublishRefusedError, StreamPublisher

log = logging.getLogger("osteon.station.stream")

# how often a running stream is checked for having failed (the relay gone, ffmpeg dead) [s]
WATCH_S: Final = 0.5


class StationStream:
    """One stream of this station's view; `start` returns at once, `stop` waits for the end."""

    def __init__(
        self,
        command: StartStream,
        case_dir: Path,
        report: Callable[[StreamStatus], None],
    ) -> None:
        self.command = command
        self.case_dir = case_dir
        self.report = report
        self.stream_id = command.stream_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="station-stream", daemon=True)
        self.view: Any = None
        self.publisher: StreamPublisher | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop publishing and close the view; the thread reports ``stopped``."""
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        # refused before anything starts: a bad command costs no view process
        problem = check_stream(self.command)
        if problem:
            self._status("failed", f"stream refused: {problem}")
            return
        error = ""
        try:
            error = self._publish()
        except Exception as exc:  # the view or ffmpeg failing ends the stream, not the station
            log.exception("station: stream %s failed", self.stream_id)
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._close()
        if error:
            self._status("failed", error)
        else:
            self._status("stopped", "")

    def _publish(self) -> str:
        """Publish until stopped; the reason it failed, or "" when stopped."""
        from sim_core.case.bundle import load_bundle
        from sim_core.view.live_offscreen import LiveOffscreenView
        from sim_core.view.session_screenshot import intact_bone_density

        bundle = load_bundle(self.case_dir)
        density = intact_bone_density(bundle.density_g_cm3, bundle.tissue)
        size = (self.command.width, self.command.height)
        # the child draws at the stream's rate; the publisher takes its last picture
        self.view = LiveOffscreenView(
            self.case_dir, density, size=size, fps=float(self.command.fps)
        )
        if self._stop.is_set():
            return ""
        self.publisher = StreamPublisher(
            url=f"{self.command.publish_url}?token={self.command.token}",
            grab_frame=self.view.frame,
            size=size,
            fps=self.command.fps,
            quality=self.command.publish_url.rsplit("/", 1)[1],
        )
        try:
            self.publisher.start()
        except PublishRefusedError as exc:
            return f"the relay refused: {exc.close_code} {exc.reason}"
        except OSError as exc:
            return f"cannot publish: {exc}"
        self._status("publishing", "")
        while not self._stop.wait(WATCH_S):
            if not self.publisher.running:
                return self.publisher.error or "the stream ended"
        return ""

    def _close(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()
        if self.view is not None:
            try:
                self.view.close()
            except Exception as exc:  # the view already gone: nothing left to close
                log.warning("station: the stream's view did not close cleanly: %s", exc)

    def _status(self, state: str, error: str) -> None:
        self.report(StreamStatus(stream_id=self.stream_id, state=state, error=error[:1000]))  # type: ignore[arg-type]


def newest_case(cases_root: Path) -> Path | None:
    """The case bundle under ``cases_root`` (``<station>/cases/cases/<hex>``) used last."""
    bundles = [p for p in cases_root.glob("*") if p.is_dir()] if cases_root.is_dir() else []
    return max(bundles, key=lambda p: p.stat().st_mtime, default=None)
