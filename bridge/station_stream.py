"""The station's view streamed live: a `StartStream` command from the shell -> the station's
Panda3D view rendered offscreen in a child process (`sim_core.view.live_offscreen`) -> ffmpeg
-> the relay's publish endpoint (`streaming.publisher`).

One stream at a time. Starting takes seconds (the view process loads the case and compiles its
shaders), so it runs in its own thread; the station's loop only hears `StreamStatus` through
``report`` (publishing, then stopped or failed).

What it shows follows the station. Between sessions: ``case_dir`` as loaded (the case of the
station's last session, else its ``--view-case``). While a session runs (``current_session``
names it): a view of that session, fed from the engine's state exactly as a live session's
window is (`osteon.live_run.engine_snapshot`: the bone with what was cut, the instrument at
its pose, the force bar), built when the session starts and swapped in once it has drawn; when
the session ends the case view comes back, showing the case that session ran on.

The engine never waits for the stream: the session's worker only names its model and state
(`SessionView`); this stream's own thread reads the state, copies the chunks the engine flagged
into the view's shared memory and sends the snapshot, ``fps`` times a second. A bridge session
is headless (a scripted device, no window), so this view is the only picture of it.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bridge.messages import StartStream, StreamStatus, check_stream
from streaming.publisher import PublishRefusedError, StreamPublisher

log = logging.getLogger("osteon.station.stream")

# no session's view has failed to start (None would be the case's)
_NOTHING: Final = object()
# how often a running stream is checked for having failed (the relay gone, ffmpeg dead) [s]
WATCH_S: Final = 0.5


@dataclass(frozen=True, eq=False)
class SessionView:
    """A running session as its stream needs it: the case it runs on, its model and its live
    state (read, never written, by the stream's thread; only the chunks' dirty flags are taken)."""

    session_id: str
    case_dir: Path
    model: Any
    state: Any


class StationStream:
    """One stream of this station's view; `start` returns at once, `stop` waits for the end."""

    def __init__(
        self,
        command: StartStream,
        case_dir: Path,
        report: Callable[[StreamStatus], None],
        current_session: Callable[[], SessionView | None] = lambda: None,
    ) -> None:
        self.command = command
        self.case_dir = case_dir
        self.report = report
        self.current_session = current_session
        self.stream_id = command.stream_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="station-stream", daemon=True)
        # the view the publisher takes its pictures from, and the session it shows (None: the case)
        self.view: Any = None
        self.shown: SessionView | None = None
        # a session whose view did not start: not tried again every frame
        self._unviewable: object = _NOTHING
        # snapshots sent to the shown session's view, and the last one's engine tick
        self.snapshots_sent = 0
        self.last_tick = -1
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
        size = (self.command.width, self.command.height)
        session = self.current_session()
        # the child draws at the stream's rate; the publisher takes its last picture
        self.view = self._open_view(session)
        self.shown = session
        if self._stop.is_set():
            return ""
        self.publisher = StreamPublisher(
            url=f"{self.command.publish_url}?token={self.command.token}",
            grab_frame=self._frame,
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
        period_s = 1.0 / self.command.fps
        next_watch = time.monotonic()
        while not self._stop.wait(period_s):
            if time.monotonic() >= next_watch:
                next_watch = time.monotonic() + WATCH_S
                if not self.publisher.running:
                    return self.publisher.error or "the stream ended"
            self._follow()
        return ""

    def _frame(self) -> tuple[int, int, bytes]:
        # the publisher's grab thread: the shown view's last picture, at most fps a second
        # (asking faster would only make the child copy the same picture again)
        started = time.monotonic()
        view = self.view
        try:
            frame: tuple[int, int, bytes] = view.frame()
        except Exception:
            if view is self.view:
                raise
            frame = self.view.frame()  # swapped (and closed) meanwhile: ask the new one
        time.sleep(max(0.0, 1.0 / self.command.fps - (time.monotonic() - started)))
        return frame

    def _open_view(self, session: SessionView | None) -> Any:
        """A view of ``session`` (its density as it stands, its plan's trajectory), or of the
        case as loaded when there is none. Blocks for the seconds a view takes to start."""
        from sim_core.case.bundle import load_bundle
        from sim_core.view.live_offscreen import LiveOffscreenView
        from sim_core.view.session_screenshot import intact_bone_density

        size = (self.command.width, self.command.height)
        fps = float(self.command.fps)
        if session is None:
            bundle = load_bundle(self.case_dir)
            density = intact_bone_density(bundle.density_g_cm3, bundle.tissue)
            return LiveOffscreenView(self.case_dir, density, size=size, fps=fps)
        plan = session.model.plan
        # the flags are taken before the copy: a cut made after it flags its chunk again
        self._take_changes(session)
        return LiveOffscreenView(
            session.case_dir,
            session.state.density.copy(),
            trajectory=(plan.entry_mm, plan.target_mm),
            size=size,
            fps=fps,
        )

    def _follow(self) -> None:
        """Swap views when a session starts or ends; feed the shown session's view."""
        session = self.current_session()
        if session is not self.shown:
            if session is self._unviewable:
                return
            if session is None and self.shown is not None:
                self.case_dir = self.shown.case_dir  # between sessions: the case it ran on
            try:
                view = self._open_view(session)
            except Exception as exc:  # the stream goes on with the picture it has
                log.warning("station: no view of %s for the stream: %s", _what(session), exc)
                self._unviewable = session
                return
            old, self.view, self.shown = self.view, view, session
            self.snapshots_sent, self.last_tick = 0, -1
            log.info("station: stream %s now shows %s", self.stream_id, _what(session))
            _close_view(old)
            return
        if session is None:
            return
        from osteon.live_run import engine_snapshot, hud_metrics

        # the chunks cut since the last snapshot, then the engine as it stands
        changed = self._take_changes(session)
        snapshot = engine_snapshot(
            session.model,
            session.state,
            removed_chunks=changed,
            metrics=hud_metrics(session.state),
        )
        self.view.publish(snapshot, session.state.density)
        self.snapshots_sent += 1
        self.last_tick = snapshot.tick

    @staticmethod
    def _take_changes(session: SessionView) -> tuple[tuple[int, int, int], ...]:
        from osteon.live_run import take_changed_chunks

        return take_changed_chunks(session.state)

    def _close(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()
        _close_view(self.view)

    def _status(self, state: str, error: str) -> None:
        self.report(StreamStatus(stream_id=self.stream_id, state=state, error=error[:1000]))  # type: ignore[arg-type]


def _what(session: SessionView | None) -> str:
    return "the case as loaded" if session is None else f"session {session.session_id}"


def _close_view(view: Any) -> None:
    if view is None:
        return
    try:
        view.close()
    except Exception as exc:  # the view already gone: nothing left to close
        log.warning("station: the stream's view did not close cleanly: %s", exc)


def newest_case(cases_root: Path) -> Path | None:
    """The case bundle under ``cases_root`` (``<station>/cases/cases/<hex>``) used last."""
    bundles = [p for p in cases_root.glob("*") if p.is_dir()] if cases_root.is_dir() else []
    return max(bundles, key=lambda p: p.stat().st_mtime, default=None)
