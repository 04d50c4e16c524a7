"""Live relay fan-out: relay CPU and per-viewer lag at 1, 10 and 50 viewers (360p, loopback).

The relay (`streaming.relay.Relay`) runs in its own process with one stand-in camera (ffmpeg
``testsrc2`` + sine, 360p, 25 fps, a fragment every 0.2 s); it notes when each fragment has
been read from ffmpeg's pipe (``time.monotonic``, the same clock in every process on Linux).
The viewers run in this process, WebSocket clients on loopback, and note when each fragment
arrived. Lag = arrival - read, for every viewer and fragment: what the relay and the network
add, not the encoder's own delay and not glass-to-glass through a browser. Relay CPU is the
relay process alone (ffmpeg reported apart). The viewers share the machine's cores with the
relay and ffmpeg, so on a small box their scheduling is part of the lag. Writes
``benchmarks/results/relay-<date>.json`` with the machine.

    .venv/bin/python benchmarks/relay_fanout.py [--viewers 1 10 50] [--seconds 10]
        [--quality 360p] [--fps 25]

Another rung or rate than the default 360p/25 writes ``relay-<quality><fps>-<date>.json``.
"""

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = Path(__file__).resolve().parent / "results"
FPS = 25
WARMUP_S = 2.0


def _machine() -> dict[str, Any]:
    import psutil

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "gpu": "none",
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "system": platform.platform(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }


def _serve(conn: Connection, secret: bytes, quality: str, fps: int) -> None:
    # child: the relay, noting each fragment's read time, until the parent says stop
    from streaming.relay import Relay, RelayConfig, StreamConfig
    from streaming.sources import SourceSpec

    read_at: dict[int, float] = {}
    config = RelayConfig(
        secret=secret,
        rooms={"bench": {"cam": StreamConfig(SourceSpec("test", fps=fps), (quality,))}},
    )

    async def main() -> None:
        relay = Relay(
            config, on_fragment=lambda key, frag, t: read_at.__setitem__(frag.sequence, t)
        )
        port = await relay.start("127.0.0.1", 0)
        while not relay.ffmpeg_pids():
            await asyncio.sleep(0.05)
        conn.send(("port", port, relay.ffmpeg_pids()))
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await relay.stop()

    asyncio.run(main())
    conn.send(("read_at", read_at))


async def _viewer(url: str, seconds: float, arrived: dict[int, float]) -> None:
    from websockets.asyncio.client import connect

    from streaming.fmp4 import Fmp4Splitter, Fragment

    splitter = Fmp4Splitter()
    deadline = time.monotonic() + seconds
    async with connect(url, max_size=None) as ws:
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = await asyncio.wait_for(ws.recv(), left)
            except TimeoutError:
                break
            now = time.monotonic()
            if isinstance(message, bytes):
                for segment in splitter.feed(message):
                    if isinstance(segment, Fragment):
                        arrived[segment.sequence] = now


def _run(viewers: int, seconds: float, quality: str, fps: int) -> dict[str, Any]:
    import psutil

    from streaming.tokens import issue_token

    secret = secrets.token_bytes(32)
    ctx = mp.get_context("spawn")
    conn, child_conn = ctx.Pipe()
    child = ctx.Process(target=_serve, args=(child_conn, secret, quality, fps), daemon=True)
    child.start()
    _, port, ffmpeg_pids = conn.recv()
    relay_proc = psutil.Process(child.pid)
    ffmpeg_proc = psutil.Process(ffmpeg_pids[0])
    token = issue_token(secret=secret, user_id="bench", room="bench", ttl_s=600)
    url = f"ws://127.0.0.1:{port}/rooms/bench/streams/cam/{quality}?token={token}"
    arrivals: list[dict[int, float]] = [{} for _ in range(viewers)]

    async def watch() -> tuple[float, float, float, float]:
        # everyone joins, a warm-up, then the measured window
        tasks = [asyncio.create_task(_viewer(url, WARMUP_S + seconds, a)) for a in arrivals]
        await asyncio.sleep(WARMUP_S)
        relay_cpu = sum(relay_proc.cpu_times()[:2])
        ffmpeg_cpu = sum(ffmpeg_proc.cpu_times()[:2])
        started = time.monotonic()
        await asyncio.gather(*tasks)
        wall = time.monotonic() - started
        relay_used = sum(relay_proc.cpu_times()[:2]) - relay_cpu
        ffmpeg_used = sum(ffmpeg_proc.cpu_times()[:2]) - ffmpeg_cpu
        return relay_used / wall, ffmpeg_used / wall, started, started + wall

    relay_cpu_share, ffmpeg_cpu_share, window_start, window_end = asyncio.run(watch())
    conn.send("stop")
    _, read_at = conn.recv()
    child.join(10)
    # lag per viewer and fragment inside the measured window
    lags_ms: list[float] = []
    worst_per_viewer_ms: list[float] = []
    missing = 0
    # a fragment read in the last half second may still be on its way when viewers hang up
    in_window = [s for s, t in read_at.items() if window_start <= t <= window_end - 0.5]
    for arrived in arrivals:
        mine = [(arrived[s] - read_at[s]) * 1000 for s in in_window if s in arrived]
        missing += sum(1 for s in in_window if s not in arrived)
        lags_ms.extend(mine)
        worst_per_viewer_ms.append(max(mine) if mine else float("nan"))
    lags_ms.sort()

    def pct(p: float) -> float:
        return round(lags_ms[min(len(lags_ms) - 1, int(p * len(lags_ms)))], 2)

    return {
        "viewers": viewers,
        "window_s": seconds,
        "fragments_in_window": len(in_window),
        "fragments_not_received": missing,
        "relay_cpu_percent_of_one_core": round(100 * relay_cpu_share, 1),
        "ffmpeg_cpu_percent_of_one_core": round(100 * ffmpeg_cpu_share, 1),
        "lag_ms_p50": pct(0.50),
        "lag_ms_p95": pct(0.95),
        "lag_ms_p99": pct(0.99),
        "lag_ms_max": round(lags_ms[-1], 2),
        "lag_ms_mean": round(statistics.fmean(lags_ms), 2),
        "worst_viewer_max_lag_ms": round(max(worst_per_viewer_ms), 2),
    }


def main() -> None:
    from streaming.sources import LADDER

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--quality", default="360p")
    parser.add_argument("--fps", type=int, default=FPS)
    args = parser.parse_args()
    machine = _machine()
    runs = []
    for viewers in args.viewers:
        result = _run(viewers, args.seconds, args.quality, args.fps)
        print(json.dumps(result), flush=True)
        runs.append(result)
    now = datetime.now(UTC)
    rung = LADDER[args.quality]
    out = {
        "benchmark": "relay_fanout",
        "date_utc": now.isoformat(timespec="seconds"),
        "machine": machine,
        "what": (
            f"streaming.relay on loopback: one ffmpeg testsrc2+sine at {args.quality}/"
            f"{args.fps} fps (libx264 {rung.preset} zerolatency, {rung.video_kbps} kbit/s, AAC "
            f"{rung.audio_kbps} kbit/s, fragment 0.2 s), N WebSocket "
            "viewers in another process on the same machine; lag = fragment received by a "
            "viewer - fragment read from ffmpeg's pipe by the relay"
        ),
        "runs": runs,
    }
    RESULTS.mkdir(exist_ok=True)
    variant = "" if (args.quality, args.fps) == ("360p", FPS) else f"{args.quality}{args.fps}-"
    path = RESULTS / f"relay-{variant}{now.date().isoformat()}.json"
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(path)


if __name__ == "__main__":
    main()
