"""Replay video rendering speed against real time.

A scripted pedicle session (expert and novice) on a lumbar phantom case is recorded, then made
into the replay video exactly as the shell's background job makes it
(`streaming.replay_video.render_replay_video`: engine replay, Panda3D offscreen drawing, raw
frames into ffmpeg, H.264 MP4 with faststart). Reported per run: simulated seconds, wall
seconds, speed as a multiple of real time (above 1: faster than the session took), ms per
frame, file size; at the shell's default (25 fps, 960x600) and at a smaller size. Writes
``benchmarks/results/replay_video-<date>.json`` with the machine, its load and the GL renderer.

    .venv/bin/python benchmarks/replay_video.py [--matrix 192] [--slices 80]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = Path(__file__).resolve().parent / "results"


def _machine() -> dict[str, Any]:
    import psutil

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "system": platform.platform(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }


def _gl_renderer() -> str:
    # which OpenGL the offscreen view gets (llvmpipe: Mesa's software rasteriser on the CPU)
    try:
        done = subprocess.run(
            ["eglinfo", "-B"], capture_output=True, text=True, timeout=20, check=False
        )
        for line in done.stdout.splitlines():
            if "OpenGL core profile renderer" in line or "OpenGL renderer" in line:
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "unknown"


def _record(root: Path, matrix: int, slices: int) -> tuple[Path, dict[str, Path]]:
    from sim_core.case.build import build_case
    from sim_core.case.bundle import load_bundle
    from sim_core.ct.phantom import make_phantom, write_phantom
    from sim_core.model import model_from_bundle
    from sim_core.replay import play, write_recording
    from sim_core.trajectories import scripted_rows

    write_phantom(make_phantom("lumbar", seed=1, slices=slices, matrix=matrix), root / "ct")
    build_case(root / "ct", root / "case", spacing_mm=1.0)
    model = model_from_bundle(load_bundle(root / "case"), "pedicle_pilot_hole")
    recordings = {}
    for skill in ("expert", "novice"):
        rows = scripted_rows(model, skill)
        _state, result = play(model, rows)
        path = root / f"{skill}.npz"
        write_recording(
            path,
            model=model,
            rows=rows,
            result=result,
            case_path=root / "case",
            device_name=f"scripted:{skill}",
        )
        recordings[skill] = path
    return root / "case", recordings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matrix", type=int, default=96, help="phantom in-plane voxels")
    parser.add_argument("--slices", type=int, default=40)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from streaming.replay_video import VIDEO_FPS, VIDEO_SIZE, render_replay_video

    machine = _machine()
    runs = []
    with tempfile.TemporaryDirectory(prefix="osteon-replay-bench-") as tmp:
        case_dir, recordings = _record(Path(tmp), args.matrix, args.slices)
        for skill, recording in recordings.items():
            for fps, size in ((VIDEO_FPS, VIDEO_SIZE), (15, (640, 400))):
                out = Path(tmp) / f"{skill}-{fps}-{size[0]}.mp4"
                video = render_replay_video(recording, case_dir, out, fps=fps, size=size)
                run = {
                    "session": skill,
                    "fps": fps,
                    "size": list(size),
                    "frames": video.frames,
                    "sim_s": round(video.sim_s, 3),
                    "render_wall_s": round(video.render_wall_s, 3),
                    "speed_x_real_time": round(video.speed_x_real_time, 3),
                    "ms_per_frame": round(1e3 * video.render_wall_s / video.frames, 1),
                    "mp4_bytes": out.stat().st_size,
                    "events": len(video.events),
                }
                runs.append(run)
                print(json.dumps(run), flush=True)
    report = {
        "benchmark": "replay_video",
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "gl_renderer": _gl_renderer(),
        "case": {"phantom": "lumbar", "matrix": args.matrix, "slices": args.slices},
        "what": "recording -> engine replay -> Panda3D offscreen -> ffmpeg libx264 (veryfast, "
        "crf 23, yuv420p, +faststart); wall time includes starting the child process",
        "runs": runs,
    }
    out = args.out or RESULTS / f"replay_video-{datetime.now(UTC).date().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
