"""A recorded session as a video: replayed through the engine, drawn offscreen, encoded to MP4.

The recording's inputs are re-run tick by tick (the same `sim_core.step.run` that verified
it), and after every ``1 / fps`` seconds of simulated time the Panda3D session view
(`SceneView`, offscreen) draws the bone as cut so far, the tool and the force bar. Its raw RGB
frames go down a pipe into ffmpeg (ffmpeg-python), which writes H.264 in an MP4 with the index
in front (``+faststart``), so a browser can start playing and seek before it has the whole file.

While replaying, the engine's event counters (breaches, plunges, nerve or protected-zone
touches, ticks over the force limit) are read after each frame: the video comes with its
metrics timeline (events with their time in the video, and the force per frame), for the page
that plays it.

Panda3D allows one ShowBase per process and keeps its graphics context until the process ends,
so the replay and the drawing run in a child process (spawned); the caller gets progress
through a pipe and may stop it at any time (its exception kills the child, nothing is left).
The MP4 is written to a temporary sibling and renamed once complete.
"""

import math
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

VIDEO_FPS = 25
VIDEO_SIZE = (960, 600)
# the slowest render allowed for a whole video [s]; a 30-minute session at ~1x fits
RENDER_TIMEOUT_S = 3 * 3600.0
_FFMPEG_PRESET = "veryfast"
_FFMPEG_CRF = 23


class ReplayVideoError(Exception):
    """The video could not be made (recording, case, renderer or encoder); one sentence."""


@dataclass(frozen=True)
class TimelineEvent:
    """Something the committee looks for, at its time in the video [s] (frame resolution)."""

    t_s: float
    # "breach", "plunge", "nerve", "protected", "force" (force above the scenario's limit)
    kind: str
    # for "force": the force at that frame [N]; otherwise how many such events so far
    value: float


@dataclass(frozen=True)
class ReplayVideo:
    path: Path
    frames: int
    fps: int
    width: int
    height: int
    sim_s: float  # simulated time the video shows
    render_wall_s: float  # replay + drawing + encoding, wall time
    events: list[TimelineEvent] = field(default_factory=list)
    force_n: list[float] = field(default_factory=list)  # |F| at each frame [N]
    force_limit_n: float = 0.0

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps

    @property
    def speed_x_real_time(self) -> float:
        """Simulated seconds rendered per wall second (above 1: faster than real time)."""
        return self.sim_s / self.render_wall_s if self.render_wall_s > 0 else 0.0

    def timeline(self) -> dict[str, Any]:
        """The metrics timeline as the replay page reads it (JSON)."""
        return {
            "fps": self.fps,
            "duration_s": self.duration_s,
            "force_limit_n": self.force_limit_n,
            "force_n": [round(f, 3) for f in self.force_n],
            "events": [asdict(e) for e in self.events],
        }


Progress = Callable[[float], None]


def render_replay_video(
    recording: Path,
    case_dir: Path,
    out_mp4: Path,
    *,
    fps: int = VIDEO_FPS,
    size: tuple[int, int] = VIDEO_SIZE,
    progress: Progress | None = None,
    timeout_s: float = RENDER_TIMEOUT_S,
) -> ReplayVideo:
    """Replay ``recording`` on the case bundle at ``case_dir`` and write the MP4 ``out_mp4``.

    size: (width, height) in pixels, both even (H.264 in 4:2:0). ``progress`` is called with
    0..1 as frames are done; an exception it raises stops the render (child killed, no file).
    Raises ReplayVideoError when the recording does not load or the renderer or encoder fail.
    """
    width, height = size
    if width % 2 or height % 2 or width <= 0 or height <= 0:
        raise ValueError(f"video size {size}: width and height must be positive and even")
    if not 1 <= fps <= 60:
        raise ValueError(f"fps {fps}: expected 1..60")
    out_mp4 = Path(out_mp4).resolve()
    partial = out_mp4.with_name(f".{out_mp4.stem}.{os.getpid()}.partial.mp4")
    out_mp4.parent.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    conn, child_conn = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=_serve,
        args=(child_conn, Path(recording).resolve(), Path(case_dir).resolve(), partial, fps, size),
        name="osteon-replay-video",
        daemon=True,
    )
    started = time.perf_counter()
    child.start()
    child_conn.close()
    try:
        done = _follow(conn, child, progress, started + timeout_s)
        child.join(30.0)
        if not partial.is_file() or partial.stat().st_size == 0:
            raise ReplayVideoError("the encoder finished without writing a video")
        os.replace(partial, out_mp4)
    finally:
        if child.is_alive():
            child.kill()
            child.join(5.0)
        conn.close()
        partial.unlink(missing_ok=True)
    return ReplayVideo(
        path=out_mp4,
        frames=int(done["frames"]),
        fps=fps,
        width=width,
        height=height,
        sim_s=float(done["sim_s"]),
        render_wall_s=time.perf_counter() - started,
        events=[TimelineEvent(**e) for e in done["events"]],
        force_n=[float(f) for f in done["force_n"]],
        force_limit_n=float(done["force_limit_n"]),
    )


def _follow(
    conn: Connection, child: Any, progress: Progress | None, deadline: float
) -> dict[str, Any]:
    # relay the child's progress until it reports done or fails
    while True:
        if time.perf_counter() > deadline:
            raise ReplayVideoError("the replay video took longer than allowed")
        if not conn.poll(1.0):
            if not child.is_alive():
                raise ReplayVideoError(f"the replay renderer exited ({child.exitcode})")
            continue
        try:
            kind, value = conn.recv()
        except EOFError as exc:
            raise ReplayVideoError("the replay renderer exited") from exc
        if kind == "progress" and progress is not None:
            progress(float(value))
        elif kind == "error":
            raise ReplayVideoError(str(value))
        elif kind == "done":
            return dict(value)


def _serve(
    conn: Connection,
    recording: Path,
    case_dir: Path,
    partial: Path,
    fps: int,
    size: tuple[int, int],
) -> None:
    # child: the one ShowBase of this process; one line back on failure, not a traceback
    try:
        conn.send(("done", _render(conn, recording, case_dir, partial, fps, size)))
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"[:500]))
    finally:
        conn.close()


def _render(
    conn: Connection,
    recording: Path,
    case_dir: Path,
    partial: Path,
    fps: int,
    size: tuple[int, int],
) -> dict[str, Any]:
    import ffmpeg

    from sim_core import slots
    from sim_core.case.bundle import load_bundle
    from sim_core.replay import RecordingError, model_for_recording, read_recording
    from sim_core.state import make_state
    from sim_core.step import input_rows, run
    from sim_core.view.scene_view import SceneView

    try:
        rec = read_recording(recording)
        model = model_for_recording(rec, case_path=case_dir)
    except RecordingError as exc:
        raise ReplayVideoError(str(exc).replace(f"{recording}: ", "")) from exc
    rows = input_rows(rec.inputs)
    state = make_state(model)
    run(model, state, rows[:0])  # compile (or load) the kernels before the clock matters
    width, height = size
    view = SceneView(offscreen=True, size=size)
    encoder = (
        ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", r=fps)
        .output(
            str(partial),
            vf="vflip",  # Panda3D's frame rows run bottom to top
            vcodec="libx264",
            pix_fmt="yuv420p",
            preset=_FFMPEG_PRESET,
            crf=_FFMPEG_CRF,
            movflags="+faststart",
            f="mp4",
        )
        .global_args("-hide_banner", "-loglevel", "error", "-nostdin")
        .overwrite_output()
        .run_async(pipe_stdin=True, quiet=True)
    )
    try:
        view.setup_case(
            load_bundle(case_dir),
            density=state.density,
            trajectory=(model.plan.entry_mm, model.plan.target_mm),
        )
        ticks_per_frame = max(1, round(1.0 / (fps * slots.DT_S)))
        total = int(rows.shape[0])
        frames = 1 + math.ceil(total / ticks_per_frame)
        counters = {
            "breach": slots.S_BREACH_EVENTS,
            "plunge": slots.S_PLUNGES,
            "nerve": slots.S_NERVE_EVENTS,
            "protected": slots.S_PROTECTED_EVENTS,
            # ticks over the scenario's force limit
            "force": slots.S_ABOVE_LIMIT_TICKS,
        }
        seen = {kind: 0.0 for kind in counters}
        rising = {kind: False for kind in seen}
        events: list[dict[str, Any]] = []
        force_n: list[float] = []
        limit_n = float(model.scenario.force_limit_n)
        for frame in range(frames):
            if frame > 0:
                start = (frame - 1) * ticks_per_frame
                run(model, state, rows[start : start + ticks_per_frame])
            t_s = frame / fps
            st = state.st
            force = float(np.linalg.norm(st[slots.S_FORCE : slots.S_FORCE + 3]))
            for kind, slot in counters.items():
                now = float(st[slot])
                # frames in a row where a counter rises are one event, at the first of them (a
                # tip scraping along a cortex counts hundreds of exits in a second)
                if now > seen[kind] and not rising[kind]:
                    value = force if kind == "force" else now
                    events.append({"t_s": t_s, "kind": kind, "value": value})
                rising[kind] = now > seen[kind]
                seen[kind] = now
            force_n.append(force)
            view.show_snapshot(_snapshot(model, state))
            view.render_frames(1)
            encoder.stdin.write(_frame_rgb(view, width, height))
            if frame % 10 == 0 or frame == frames - 1:
                conn.send(("progress", (frame + 1) / frames))
        encoder.stdin.close()
        if encoder.wait() != 0:
            message = encoder.stderr.read().decode("utf-8", "replace").strip()[-300:]
            raise ReplayVideoError(f"ffmpeg failed: {message}")
    finally:
        if encoder.poll() is None:
            encoder.kill()
        view.destroy()
    return {
        "frames": frames,
        "sim_s": total * slots.DT_S,
        "events": events,
        "force_n": force_n,
        "force_limit_n": limit_n,
    }


def _frame_rgb(view: Any, width: int, height: int) -> bytes:
    texture = view.win.get_screenshot()
    if texture is None:
        raise ReplayVideoError("the offscreen view returned no frame")
    if (texture.get_x_size(), texture.get_y_size()) != (width, height):
        raise ReplayVideoError(
            f"the offscreen view drew {texture.get_x_size()}x{texture.get_y_size()}, "
            f"not {width}x{height}"
        )
    return bytes(texture.get_ram_image_as("RGB"))


def _snapshot(model: Any, state: Any) -> Any:
    # the engine as it stands (tool, force, time) and the 32-voxel chunks cut since last frame
    from sim_core import slots
    from sim_core.view.snapshot import ViewSnapshot

    flagged = tuple((int(i), int(j), int(k)) for i, j, k in np.argwhere(state.dirty > 0))
    state.dirty[...] = 0
    st = state.st
    return ViewSnapshot(
        tick=int(st[slots.S_TICK]),
        tool_tip_mm=(
            float(st[slots.S_TOOL]),
            float(st[slots.S_TOOL + 1]),
            float(st[slots.S_TOOL + 2]),
        ),
        tool_axis=(float(st[slots.S_DIR]), float(st[slots.S_DIR + 1]), float(st[slots.S_DIR + 2])),
        tool_radius_mm=max(float(model.instrument.radius_mm), 0.1),
        tool_kind=model.instrument.kind,
        force_n=(
            float(st[slots.S_FORCE]),
            float(st[slots.S_FORCE + 1]),
            float(st[slots.S_FORCE + 2]),
        ),
        force_limit_n=float(model.scenario.force_limit_n),
        elapsed_s=float(st[slots.S_TICK]) * slots.DT_S,
        metrics={"peak_force_n": float(st[slots.S_PEAK_FORCE_N])},
        removed_chunks=flagged,
    )
