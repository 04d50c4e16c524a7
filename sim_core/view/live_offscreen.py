"""A long-lived view in its own process, following a running session: offscreen or windowed.

Panda3D allows one ShowBase per process, and its drawing and remeshing hold the GIL, so a
view that follows a session runs in a child process: the parent (the station, the benchmark)
keeps the engine and its 1 kHz loop; the child keeps the one ShowBase and renders frames at
up to ``fps``. The bone density grid lives in shared memory: `publish` copies the chunks the
engine flagged into it and sends a `ViewSnapshot` naming them over a pipe; the child remeshes
those chunks and draws. One process for the whole session, instead of one per frame.

The same child serves live sessions in a window (``offscreen=False``): the process that
hosts the engine's loop and the device (an OpenHaptics arm's scheduler callback is Python
that needs the GIL every 1 ms) then holds nothing heavy; the window's drawing and remeshing
run here. Escape or closing the window is reported to the parent (`closed`), which ends the
session.

Drawing yields to the session: the child runs at a lower priority (``nice``) and Mesa's
software rasteriser (llvmpipe, used where there is no GPU) gets ``render_threads`` threads
instead of one per core, so on a small machine the engine's process keeps a core.
"""

import multiprocessing as mp
import os
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sim_core.view.chunk_mesher import CHUNK_VOXELS
from sim_core.view.offscreen import ViewError
from sim_core.view.snapshot import Vec3, ViewSnapshot

START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class FrameStats:
    """What the child did: frames drawn and how long each took (its own work, not the wait)."""

    frames: int
    seconds: float
    frame_ms_p50: float
    frame_ms_p95: float
    frame_ms_max: float
    # the fluoroscopy shots taken in the window (``sim_core.fluoro.ShotRecord``)
    fluoro_shots: tuple[Any, ...] = ()

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "frames": self.frames,
            "seconds": self.seconds,
            "fps": self.fps,
            "frame_ms_p50": self.frame_ms_p50,
            "frame_ms_p95": self.frame_ms_p95,
            "frame_ms_max": self.frame_ms_max,
        }


class LiveOffscreenView:
    """Start the child view on a case and a live density grid; `publish`, then `close`."""

    def __init__(
        self,
        case_dir: Path,
        density: npt.NDArray[np.float32],
        *,
        trajectory: tuple[Vec3, Vec3] | None = None,
        size: tuple[int, int] = (1280, 800),
        fps: float = 60.0,
        nice: int = 10,
        render_threads: int = 1,
        offscreen: bool = True,
        fluoro: tuple[Any, Any] | None = None,
    ) -> None:
        """density: float32 g/cm^3, the case grid's shape; copied once into shared memory.

        offscreen: False opens a window (needs a display) instead of an offscreen buffer.
        fluoro: (plan, instrument) of the session: the window's C-arm (``f``, ``c`` keys,
        ``sim_core.view.fluoro_panel``); its shots come back in ``close()``'s stats.
        """
        ctx = mp.get_context("spawn")
        self._shm = SharedMemory(create=True, size=max(density.nbytes, 1))
        self.shared: npt.NDArray[np.float32] = np.ndarray(
            density.shape, dtype=np.float32, buffer=self._shm.buf
        )
        self.shared[...] = density
        self._conn, child = ctx.Pipe()
        # frames asked for by a stream's publisher go over their own pipe: a thread waiting for
        # a picture never holds up the snapshots (nor the window's "closed")
        self._frame_conn, child_frames = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve,
            args=(
                child,
                self._shm.name,
                density.shape,
                Path(case_dir),
                trajectory,
                (size, fps, nice, render_threads, offscreen),
                fluoro,
                child_frames,
            ),
            name="osteon-live-view",
            daemon=True,
        )
        self._process.start()
        child.close()
        child_frames.close()
        # one message (and its answer) at a time on the main pipe: `close` may come from
        # another thread than the one feeding snapshots
        self._lock = threading.Lock()
        self._frame_lock = threading.Lock()
        self._closed = False
        self._user_closed = False
        self.failure: str | None = None
        self.pid = -1
        try:
            self.pid = int(self._expect("ready", START_TIMEOUT_S))
        except BaseException:
            self._kill()
            raise

    def _expect(self, kind: str, timeout_s: float) -> Any:
        if not self._conn.poll(timeout_s):
            raise ViewError(f"the live offscreen view did not answer within {timeout_s:.0f} s")
        try:
            got, value = self._conn.recv()
        except EOFError as exc:
            raise ViewError("the live offscreen view exited") from exc
        if got == "closed":  # the window was closed meanwhile; the answer follows
            self._user_closed = True
            return self._expect(kind, timeout_s)
        if got == "error":
            raise ViewError(f"the live offscreen view failed: {value}")
        if got != kind:
            raise ViewError(f"the live offscreen view answered {got!r}, expected {kind!r}")
        return value

    def closed(self) -> bool:
        """True once the window was closed or escape pressed, or the child failed or exited.

        Never waits. A failure's one-line reason is kept in ``failure``.
        """
        try:
            while not self._user_closed and self._conn.poll():
                got, value = self._conn.recv()
                if got == "closed":
                    self._user_closed = True
                elif got == "error":
                    self.failure = str(value)
                    self._user_closed = True
        except (EOFError, OSError):
            self.failure = self.failure or "the live view exited"
            self._user_closed = True
        if not self._user_closed and not self._process.is_alive():
            self.failure = "the live view exited"
            self._user_closed = True
        return self._user_closed

    def publish(self, snapshot: ViewSnapshot, density: npt.NDArray[np.float32]) -> None:
        """Copy the chunks ``snapshot.removed_chunks`` names from ``density``, then send it."""
        for index in snapshot.removed_chunks:
            box = tuple(slice(c * CHUNK_VOXELS, (c + 1) * CHUNK_VOXELS) for c in index)
            self.shared[box] = density[box]
        with self._lock:
            self._conn.send(("snapshot", snapshot))

    def screenshot(self, png: Path) -> Path:
        """Draw a frame with everything published so far and write it to ``png``."""
        with self._lock:
            self._conn.send(("screenshot", Path(png).resolve()))
            return Path(self._expect("screenshot", 60.0))

    def frame(self) -> tuple[int, int, bytes]:
        """The last frame drawn: (width, height, RGB24 bytes, rows bottom to top as Panda3D
        keeps them). Not drawn again for the asking: the child draws at its own ``fps``."""
        with self._frame_lock:
            try:
                self._frame_conn.send(None)
                if not self._frame_conn.poll(30.0):
                    raise ViewError("the live view gave no frame within 30 s")
                width, height, rgb = self._frame_conn.recv()
            except (EOFError, OSError) as exc:
                raise ViewError("the live view exited") from exc
        return int(width), int(height), bytes(rgb)

    def close(self) -> FrameStats:
        """Stop the child; return its frame statistics."""
        if self._closed:
            raise RuntimeError("this live view is closed")
        try:
            if self.failure is not None:
                raise ViewError(f"the live offscreen view failed: {self.failure}")
            with self._lock:
                try:
                    self._conn.send(("stop", None))
                except OSError as exc:  # a broken pipe: the child is gone
                    raise ViewError("the live offscreen view exited") from exc
                stats: FrameStats = self._expect("stats", 30.0)
            self._process.join(10.0)
            return stats
        finally:
            self._kill()

    def _kill(self) -> None:
        self._closed = True
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5.0)
        self._conn.close()
        with self._frame_lock:
            self._frame_conn.close()
        self._shm.close()
        self._shm.unlink()


def _serve(
    conn: Connection,
    shm_name: str,
    shape: tuple[int, int, int],
    case_dir: Path,
    trajectory: tuple[Vec3, Vec3] | None,
    settings: tuple[tuple[int, int], float, int, int, bool],
    fluoro: tuple[Any, Any] | None = None,
    frames_conn: Connection | None = None,
) -> None:
    # child: Panda3D's chatter goes to stderr, so a parent printing JSON on stdout stays clean
    os.dup2(2, 1)
    size, fps, nice, render_threads, offscreen = settings
    os.nice(nice)
    # read by Mesa when the first GL context opens, i.e. in SceneView() below
    os.environ["LP_NUM_THREADS"] = str(render_threads)
    shm = SharedMemory(name=shm_name)
    view: Any = None
    try:
        from sim_core.case.bundle import load_bundle
        from sim_core.view.scene_view import SceneView
        from sim_core.view.snapshot import SnapshotMailbox

        density: npt.NDArray[np.float32] = np.ndarray(shape, dtype=np.float32, buffer=shm.buf)
        mailbox = SnapshotMailbox()
        view = SceneView(offscreen=offscreen, size=size, mailbox=mailbox)
        bundle = load_bundle(case_dir)
        view.setup_case(bundle, density=density, trajectory=trajectory)
        panel: Any = None
        if fluoro is not None:
            from sim_core.fluoro import Fluoroscope
            from sim_core.view.fluoro_panel import FluoroPanel

            panel = FluoroPanel(view, lambda: Fluoroscope.for_case(bundle, *fluoro))
        view.render_frames(1)
        conn.send(("ready", os.getpid()))
        _frames(conn, view, mailbox, 1.0 / fps, panel, frames_conn)
    except Exception as exc:  # the parent reads one line, not a child's traceback
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        if view is not None:
            view.destroy()
        del density
        shm.close()


def _frames(
    conn: Connection,
    view: Any,
    mailbox: Any,
    period_s: float,
    panel: Any = None,
    frames_conn: Connection | None = None,
) -> None:
    # draw at up to 1/period_s; between frames take what the parent sent
    frame_s: list[float] = []
    started = time.perf_counter()
    next_s = started
    drawing = True
    while True:
        if drawing and view.input.quit:
            # escape or the window's close button (SceneView.finalizeExit): the parent decides
            conn.send(("closed", None))
            drawing = False
        while conn.poll(0.0 if drawing else period_s):
            kind, value = conn.recv()
            if kind == "snapshot":
                mailbox.publish(value)
            elif kind == "screenshot":
                view.render_frames(1)
                conn.send(("screenshot", str(view.save_png(value))))
            elif kind == "stop":
                stats = _stats(frame_s, time.perf_counter() - started)
                if panel is not None:
                    stats = replace(stats, fluoro_shots=tuple(panel.shots))
                conn.send(("stats", stats))
                return
        # a streamed station view (streaming.publisher) asks for the picture already drawn
        while frames_conn is not None and frames_conn.poll(0.0):
            frames_conn.recv()
            shot = view.win.get_screenshot()
            rgb = shot.get_ram_image_as("RGB").get_data()
            frames_conn.send((shot.get_x_size(), shot.get_y_size(), rgb))
        if not drawing:
            continue
        t0 = time.perf_counter()
        view.render_frames(1)
        frame_s.append(time.perf_counter() - t0)
        next_s = max(next_s + period_s, time.perf_counter())
        time.sleep(max(next_s - time.perf_counter(), 0.0))


def _stats(frame_s: list[float], seconds: float) -> FrameStats:
    if not frame_s:
        return FrameStats(0, seconds, 0.0, 0.0, 0.0)
    ms = np.asarray(frame_s) * 1e3
    return FrameStats(
        frames=len(frame_s),
        seconds=seconds,
        frame_ms_p50=float(np.percentile(ms, 50)),
        frame_ms_p95=float(np.percentile(ms, 95)),
        frame_ms_max=float(ms.max()),
    )
