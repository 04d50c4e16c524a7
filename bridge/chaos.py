"""The chaos run: results sent while both sides are killed with SIGKILL at random moments.

``run_chaos`` starts a bridge endpoint (``python -m bridge.chaos endpoint``, a SQLite
LocalShellSide) and a station (``python -m bridge.chaos station``: the real StationRunner, its
sessions replaced by synthetic signed results so hundreds take seconds, each with a recording
of ``recording_bytes`` random bytes). While the station saves ``count`` results, a kill -9 hits
the station or the endpoint at random intervals and the victim is restarted. At the end, with
both sides up, it waits until the outbox is empty and counts:

- ``sent``: results the station committed to its outbox (and reported saved);
- ``accepted``: distinct results stored by the shell;
- ``lost``: saved but never stored by the shell (goal 0);
- ``duplicated``: extra times a result took effect in the shell (goal 0);
- ``acked_not_stored``: acknowledged to the station but not in the shell (must be 0);
- ``resent``: results the station had to send more than once; ``deliveries``: results that
  reached the shell's accept, duplicates included (deliveries - accepted were deduplicated).
"""

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bridge.keys import load_or_create_shell_keys
from bridge.messages import Result
from bridge.signing import recording_hash, sign_result

PYTHON = sys.executable
USER = "chaos"


def _endpoint_main(args: argparse.Namespace) -> None:
    from bridge.endpoint import serve
    from bridge.local_side import LocalShellSide

    keys = load_or_create_shell_keys(Path(args.key_dir))
    side = LocalShellSide(args.side, ack_delay_s=args.ack_delay)
    serve(side, keys, host="127.0.0.1", port=args.port)


def _station_main(args: argparse.Namespace) -> None:
    from bridge.station import StationRunner

    count, size = args.count, args.recording_bytes
    rng = random.Random()
    next_at = [0.0]

    def produce(runner: StationRunner) -> None:
        # one synthetic session result every ``interval`` seconds until ``count`` are saved
        now = time.monotonic()
        if now < next_at[0]:
            return
        next_at[0] = now + args.interval
        total = sum(runner.outbox.counts().values())
        if total >= count:
            return
        recording = rng.randbytes(size)
        result = Result(
            station_id=runner.identity.config.station_id,
            username=USER,
            session_id=f"chaos-{total}",
            case_hash="sha256:" + "0" * 64,
            scenario="chaos",
            recording_hash=recording_hash(recording),
            metrics={"time_s": rng.random() * 60, "peak_force_n": rng.random() * 5},
            score=float(rng.randrange(0, 101)),
            passed=True,
            final_state_hash="sha256:" + "1" * 64,
            ended_at=time.time(),
            signature="",
            recording=recording,
        )
        runner.save_result(sign_result(result, runner.identity.signing_key))

    def echo(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    runner = StationRunner(Path(args.dir), realtime=False, producer=produce, echo=echo)
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    runner.run(sign_in=(USER, USER, "password"))


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        [PYTHON, "-m", "bridge.chaos", *args],
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parent.parent,
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _outbox(station_dir: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {"pending": set(), "acked": set(), "refused": set(), "resent": set()}
    path = station_dir / "outbox.sqlite3"
    if not path.exists():
        return out
    db = sqlite3.connect(str(path), timeout=30)
    try:
        rows = db.execute("SELECT message_id, state, attempts FROM outbox").fetchall()
    except sqlite3.OperationalError:
        rows = []
    finally:
        db.close()
    for mid, state, attempts in rows:
        out[state].add(mid)
        if attempts > 1:
            out["resent"].add(mid)
    return out


def _saved(box: dict[str, set[str]]) -> int:
    return len(box["pending"]) + len(box["acked"]) + len(box["refused"])


def run_chaos(
    workdir: Path,
    *,
    port: int,
    count: int = 200,
    recording_bytes: int = 256 * 1024,
    kill_every_s: tuple[float, float] = (0.3, 1.2),
    interval_s: float = 0.01,
    ack_delay_s: float = 0.0,
    seed: int = 1,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Run the chaos scenario in ``workdir``; return the counts (see the module docstring)."""
    from bridge.local_side import LocalShellSide
    from bridge.station import enroll

    rng = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    side_path, key_dir, station_dir = (
        workdir / "shell.sqlite3",
        workdir / "keys",
        workdir / "station",
    )
    log = workdir / "chaos.log"
    side = LocalShellSide(side_path)
    side.add_code("CHAOS-CODE")
    side.add_user(USER, USER)
    keys = load_or_create_shell_keys(key_dir)
    endpoint_args = [
        "endpoint",
        "--side",
        str(side_path),
        "--port",
        str(port),
        "--key-dir",
        str(key_dir),
        "--ack-delay",
        str(ack_delay_s),
    ]
    station_args = [
        "station",
        "--dir",
        str(station_dir),
        "--count",
        str(count),
        "--recording-bytes",
        str(recording_bytes),
        "--interval",
        str(interval_s),
    ]
    endpoint = _spawn(endpoint_args, log)
    # enrol once (the endpoint may still be binding: retry the short handshake)
    deadline = time.monotonic() + 30
    while True:
        try:
            enroll(
                station_dir,
                shell_url=f"tcp://127.0.0.1:{port}",
                code="CHAOS-CODE",
                shell_key=keys.public,
                timeout_s=2.0,
            )
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
    station = _spawn(station_args, log)
    kills = {"station": 0, "endpoint": 0}
    start = time.monotonic()
    # chaos phase: kill -9 one side at random moments while results are being made and sent
    while time.monotonic() - start < timeout_s:
        time.sleep(rng.uniform(*kill_every_s))
        box = _outbox(station_dir)
        # the chaos ends once every result is saved and each side was killed at least once
        killed_both = min(kills.values()) >= 1
        if _saved(box) >= count and killed_both and rng.random() < 0.5:
            break
        if rng.random() < 0.5:
            _kill(station)
            kills["station"] += 1
            station = _spawn(station_args, log)
        else:
            _kill(endpoint)
            kills["endpoint"] += 1
            endpoint = _spawn(endpoint_args, log)
    # drain phase: both up until every saved result is acked (or refused)
    while time.monotonic() - start < timeout_s:
        box = _outbox(station_dir)
        if _saved(box) >= count and not box["pending"]:
            break
        time.sleep(0.2)
    drained = time.monotonic() - start
    for proc in (station, endpoint):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill(proc)
    box = _outbox(station_dir)
    saved = box["pending"] | box["acked"] | box["refused"]
    box_total = len(saved)
    reader = LocalShellSide(side_path)
    stored = set(reader.accepted_ids())
    effects = reader.effect_counts()
    return {
        "results": count,
        "recording_bytes": recording_bytes,
        "ack_delay_s": ack_delay_s,
        "kills": kills,
        "sent": box_total,
        "resent": len(box["resent"]),
        "accepted": len(stored & saved),
        "acked": len(box["acked"]),
        "pending": len(box["pending"]),
        "refused": len(box["refused"]),
        "lost": len(saved - stored),
        "duplicated": sum(n - 1 for n in effects.values()),
        "deliveries": reader.delivery_count(),
        "acked_not_stored": len(box["acked"] - stored),
        "unknown_in_shell": len(stored - saved),
        "wall_s": round(drained, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bridge.chaos")
    sub = parser.add_subparsers(dest="role", required=True)
    e = sub.add_parser("endpoint")
    e.add_argument("--side", required=True)
    e.add_argument("--port", type=int, required=True)
    e.add_argument("--key-dir", required=True)
    e.add_argument("--ack-delay", type=float, default=0.0)
    s = sub.add_parser("station")
    s.add_argument("--dir", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--recording-bytes", type=int, default=256 * 1024)
    s.add_argument("--interval", type=float, default=0.01)
    args = parser.parse_args()
    if args.role == "endpoint":
        _endpoint_main(args)
    else:
        _station_main(args)


if __name__ == "__main__":
    main()
