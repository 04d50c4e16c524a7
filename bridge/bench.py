"""``osteon bridge bench``: what the bridge costs, measured on loopback in one run.

- ``round_trip``: a Heartbeat request and its answer through the real endpoint (CURVE, ZAP
  admitted, envelope and schema checks both ways, the ShellSide's heartbeat: an SQLite update
  without fsync), beside a bare pyzmq CURVE DEALER/ROUTER echo of a same-size frame; each
  server in its own process, the client here;
- ``telemetry``: Telemetry frames published as fast as one PUB socket goes for a few seconds,
  counted where the endpoint accepted them (decoded, checked, handed to the ShellSide);
- ``case_transfer``: a 64 MiB case archive fetched in 1 MiB chunks by hash into the station's
  case cache, then checked (sha256) and unpacked;
- ``servo``: the 1 kHz EngineServoLoop (scripted burr on the synthetic block) with a 60 Hz
  telemetry publisher reading the engine state and sending to the endpoint, and without it;
- ``chaos``: ``bridge.chaos.run_chaos`` with ``chaos_results`` results.
"""

import multiprocessing as mp
import os
import platform
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from bridge.keys import REPO_ROOT, CurveKeys, new_curve_keys
from bridge.messages import CaseChunk, CaseRequest, Heartbeat, Telemetry, decode, encode
from bridge.signing import new_signing_key
from sim_core.atomic_write import write_text_atomic

RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"


def _free_port_block(n: int = 3) -> int:
    import socket

    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        try:
            held = []
            for i in range(n):
                t = socket.socket()
                held.append(t)
                t.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for t in held:
                t.close()
    raise RuntimeError("no free port block")


def _percentiles_us(samples_ns: list[int]) -> dict[str, float]:
    a = np.asarray(samples_ns, dtype=np.float64) / 1e3
    return {
        "n": int(a.size),
        "p50_us": round(float(np.percentile(a, 50)), 1),
        "p99_us": round(float(np.percentile(a, 99)), 1),
        "max_us": round(float(a.max()), 1),
    }


# ---- servers in their own processes -----------------------------------------------------------


def _endpoint_process(
    side_path: str, case_store: str, keys: CurveKeys, port: int, conn: Any
) -> None:
    from bridge.endpoint import Endpoint
    from bridge.local_side import LocalShellSide

    side = LocalShellSide(side_path, case_store=Path(case_store), durable=False)
    endpoint = Endpoint(side, keys, port=port)
    thread = threading.Thread(target=endpoint.serve_forever, daemon=True)
    thread.start()
    endpoint.wait_ready()
    conn.send("ready")
    conn.recv()  # "stop"
    endpoint.stop()
    thread.join(timeout=5)
    conn.send({"telemetry": endpoint.stats.telemetry, "errors": endpoint.stats.errors})


def _echo_process(keys: CurveKeys, port: int, conn: Any) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.curve_server = True
    sock.curve_secretkey = keys.secret.encode()
    sock.curve_publickey = keys.public.encode()
    sock.linger = 0
    sock.bind(f"tcp://127.0.0.1:{port}")
    conn.send("ready")
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while not conn.poll():
        if poller.poll(50):
            sock.send_multipart(sock.recv_multipart())
    sock.close()
    ctx.term()
    conn.send(None)


class _Server:
    def __init__(self, target: Any, *args: Any) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(*args, child), daemon=True)
        self.proc.start()
        if not self.conn.poll(60) or self.conn.recv() != "ready":
            raise RuntimeError("bench server did not start")

    def stop(self) -> Any:
        self.conn.send("stop")
        out = self.conn.recv() if self.conn.poll(10) else None
        self.proc.join(timeout=10)
        return out


# ---- the parts ----------------------------------------------------------------------------------


def _client(port: int, curve: CurveKeys, server_key: str, kind: int = zmq.DEALER) -> Any:
    sock: Any = zmq.Context.instance().socket(kind)
    sock.curve_publickey = curve.public.encode()
    sock.curve_secretkey = curve.secret.encode()
    sock.curve_serverkey = server_key.encode()
    sock.linger = 0
    sock.connect(f"tcp://127.0.0.1:{port}")
    return sock


def _round_trip(port: int, station: CurveKeys, shell: CurveKeys, n: int) -> dict[str, Any]:
    sock = _client(port + 1, station, shell.public)
    # warm up: handshake and first messages
    for i in range(1, 200):
        sock.send(encode(Heartbeat(state="idle"), seq=i))
        sock.recv()
    samples = []
    for i in range(200, 200 + n):
        t0 = time.perf_counter_ns()
        sock.send(encode(Heartbeat(state="idle"), seq=i))
        reply = decode(sock.recv())
        samples.append(time.perf_counter_ns() - t0)
    assert isinstance(reply.body, Heartbeat), reply
    sock.close()
    size = len(encode(Heartbeat(state="idle"), seq=1))
    # the bare echo: same frame size, CURVE, no ZAP, no checks
    echo_keys = new_curve_keys()
    echo_port = _free_port_block(1)
    echo = _Server(_echo_process, echo_keys, echo_port)
    bare = _client(echo_port, new_curve_keys(), echo_keys.public)
    payload = b"x" * size
    for _ in range(200):
        bare.send(payload)
        bare.recv()
    bare_samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        bare.send(payload)
        bare.recv()
        bare_samples.append(time.perf_counter_ns() - t0)
    bare.close()
    echo.stop()
    ours, ref = _percentiles_us(samples), _percentiles_us(bare_samples)
    return {
        "request": "heartbeat -> heartbeat",
        "frame_bytes": size,
        "bridge": ours,
        "bare_curve_echo": ref,
        "ratio_p50": round(ours["p50_us"] / ref["p50_us"], 2),
        "ratio_p99": round(ours["p99_us"] / ref["p99_us"], 2),
    }


def _telemetry_sample(station_id: str, tick: int) -> Telemetry:
    return Telemetry(
        station_id=station_id,
        session_id="bench",
        tick=tick,
        state="running",
        tool_position_mm=(10.0, 20.0, 30.0),
        tool_quaternion=(1.0, 0.0, 0.0, 0.0),
        force_n=(0.1, 0.2, 0.3),
        metrics={"elapsed_s": tick / 1000.0, "peak_force_n": 2.5, "removed_mm3": 12.0},
    )


def _telemetry_flood(
    port: int, station_id: str, station: CurveKeys, shell: CurveKeys, seconds: float
) -> int:
    pub = _client(port + 2, station, shell.public, zmq.PUB)
    pub.sndhwm = 10000
    time.sleep(0.5)  # the PUB connects and the handshake completes before counting
    sent = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(100):
            sent += 1
            try:
                pub.send(encode(_telemetry_sample(station_id, sent), seq=sent), zmq.NOBLOCK)
            except zmq.Again:
                sent -= 1
    time.sleep(0.5)
    pub.close()
    return sent


def _case_transfer(
    port: int, station: CurveKeys, shell: CurveKeys, store: Path, work: Path
) -> dict[str, Any]:
    from bridge.case_archive import pack_case
    from bridge.case_cache import CaseCache

    src = work / "bench-case"
    src.mkdir()
    (src / "case.json").write_text("{}")
    (src / "volume.npz").write_bytes(np.random.default_rng(1).bytes(64 * 2**20))
    case_hash, archive = pack_case(src, store)
    total = archive.stat().st_size
    cache = CaseCache(work / "station-cache")
    sock = _client(port + 1, station, shell.public)
    seq = 0
    offset = 0
    t0 = time.perf_counter()
    while offset < total:
        seq += 1
        sock.send(encode(CaseRequest(case_hash=case_hash, offset=offset, length=2**20), seq=seq))
        chunk = decode(sock.recv()).body
        assert isinstance(chunk, CaseChunk), chunk
        offset = cache.append(case_hash, chunk.offset, chunk.data)
    transfer_s = time.perf_counter() - t0
    cache.finish(case_hash)
    total_s = time.perf_counter() - t0
    sock.close()
    return {
        "bytes": total,
        "chunk_bytes": 2**20,
        "transfer_mb_s": round(total / 2**20 / transfer_s, 1),
        "with_hash_check_and_unpack_mb_s": round(total / 2**20 / total_s, 1),
    }


def _publish_telemetry(
    pub: Any,
    station_id: str,
    state: Any,
    stop: threading.Event,
    published: list[int],
) -> None:
    # what a station does during a session: read the engine state, send it at 60 Hz
    from sim_core.slots import S_FORCE, S_PEAK_FORCE_N, S_REMOVED, S_TICK, S_TOOL

    seq = 0
    st = state.st
    while not stop.wait(1.0 / 60.0):
        seq += 1
        sample = Telemetry(
            station_id=station_id,
            session_id="bench-servo",
            tick=int(st[S_TICK]),
            state="running",
            tool_position_mm=(float(st[S_TOOL]), float(st[S_TOOL + 1]), float(st[S_TOOL + 2])),
            tool_quaternion=(1.0, 0.0, 0.0, 0.0),
            force_n=(float(st[S_FORCE]), float(st[S_FORCE + 1]), float(st[S_FORCE + 2])),
            metrics={
                "peak_force_n": float(st[S_PEAK_FORCE_N]),
                "removed_mm3": float(st[S_REMOVED]),
            },
        )
        try:
            pub.send(encode(sample, seq=seq), zmq.NOBLOCK)
            published[0] += 1
        except zmq.Again:
            pass
    pub.close()


def _servo(
    port: int, station_id: str, station: CurveKeys, shell: CurveKeys, seconds: float
) -> dict[str, Any]:
    from haptics.scripted import ScriptedDevice
    from haptics.servo import EngineServoLoop
    from sim_core.bench_cases import bench_model, contact_rows
    from sim_core.state import make_state

    model = bench_model("burr_sphere_4mm")
    rows = contact_rows(model, int(seconds * 1000))
    out: dict[str, Any] = {}
    for mode in ("telemetry_off", "telemetry_on", "telemetry_off_again"):
        state = make_state(model)
        device = ScriptedDevice(rows, max_force_n=model.device.max_force_n)
        device.open()
        loop = EngineServoLoop(device, model, state, capacity_ticks=len(rows) + 10)
        stop = threading.Event()
        published = [0]
        # the socket is made and connected before the loop starts (a station holds one for
        # its whole run): the loop is measured against sending, not against setting up
        pub = _client(port + 2, station, shell.public, zmq.PUB)
        time.sleep(0.3)
        publisher = threading.Thread(
            target=_publish_telemetry, args=(pub, station_id, state, stop, published), daemon=True
        )
        loop.start()
        if mode == "telemetry_on":
            publisher.start()
        while loop.running:
            time.sleep(0.05)
        stats = loop.stop().as_dict()
        stop.set()
        if mode == "telemetry_on":
            publisher.join(timeout=5)
        pub.close()
        device.close()
        out[mode] = {
            "rate_hz": round(stats["rate_hz"], 2),
            "period_p50_ms": round(stats["period_p50_ms"], 4),
            "period_p99_ms": round(stats["period_p99_ms"], 4),
            "period_max_ms": round(stats["period_max_ms"], 3),
            "late_ticks": stats["late_ticks"],
            "ticks": stats["ticks"],
            "realtime": stats["realtime"],
            "page_faults": stats["page_faults"],
            "involuntary_switches": stats["involuntary_switches"],
            "telemetry_sent": published[0],
        }
    return out


def _machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "arch": platform.machine(),
        "cpu": model,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "pyzmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "kernel": platform.release(),
        "load_avg_1min_at_start": round(os.getloadavg()[0], 2),
    }


def bench(
    *, chaos_results: int = 200, round_trips: int = 5000, servo_s: float = 8.0
) -> dict[str, Any]:
    """Every measurement above, in one run; returns the result document."""
    from bridge.chaos import run_chaos
    from bridge.local_side import LocalShellSide

    machine = _machine()
    work = Path(tempfile.mkdtemp(prefix="osteon-bridge-bench-"))
    try:
        shell_keys, station_keys = new_curve_keys(), new_curve_keys()
        side_path, store = work / "shell.sqlite3", work / "store"
        setup = LocalShellSide(side_path)
        station_id = "st-bench"
        setup.add_station(
            station_id, station_keys.public, new_signing_key().verify_key.encode().hex()
        )
        setup.db.close()
        port = _free_port_block()
        server = _Server(_endpoint_process, str(side_path), str(store), shell_keys, port)
        round_trip = _round_trip(port, station_keys, shell_keys, round_trips)
        flood_s = 3.0
        sent = _telemetry_flood(port, station_id, station_keys, shell_keys, flood_s)
        transfer = _case_transfer(port, station_keys, shell_keys, store, work)
        servo = _servo(port, station_id, station_keys, shell_keys, servo_s)
        stats = server.stop() or {"telemetry": 0}
        telemetry = {
            "seconds": flood_s,
            "published": sent,
            "accepted_by_endpoint": stats["telemetry"] - servo["telemetry_on"]["telemetry_sent"],
        }
        telemetry["accepted_per_s"] = round(telemetry["accepted_by_endpoint"] / flood_s)
        telemetry["stations_at_60_hz"] = telemetry["accepted_per_s"] // 60
        chaos = run_chaos(
            work / "chaos",
            port=_free_port_block(),
            count=chaos_results,
            recording_bytes=256 * 1024,
            kill_every_s=(0.8, 2.0),
            interval_s=0.05,
            ack_delay_s=0.05,
            seed=int(time.time()),
            timeout_s=600,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    off, on = servo["telemetry_off"], servo["telemetry_on"]
    return {
        "bench": "bridge",
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "round_trip": round_trip,
        "telemetry": telemetry,
        "case_transfer": transfer,
        "servo": servo,
        "chaos": chaos,
        "goals": {
            "round_trip_p99_le_1ms": round_trip["bridge"]["p99_us"] <= 1000.0,
            "telemetry_ge_60_hz": telemetry["accepted_per_s"] >= 60,
            "servo_p99_with_telemetry_le_1_5ms": on["period_p99_ms"] <= 1.5,
            "servo_rate_with_telemetry_ge_995hz": on["rate_hz"] >= 995.0,
            "servo_p99_telemetry_on_vs_off_ratio": round(
                on["period_p99_ms"] / max(off["period_p99_ms"], 1e-9), 3
            ),
            "chaos_0_lost": chaos["lost"] == 0,
            "chaos_0_duplicated": chaos["duplicated"] == 0,
        },
    }


def write_result(result: dict[str, Any], out: Path | None = None) -> Path:
    path = out or RESULTS_DIR / f"bridge-bench-{datetime.now(UTC):%Y-%m-%d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    import json

    write_text_atomic(path, json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path
