"""Bridge test helpers: an endpoint on real loopback sockets over a SQLite LocalShellSide (no
Django), enrolled stations, and raw CURVE clients for speaking the protocol by hand.

A module of its own, not conftest.py: test files import these names, and `from conftest import`
resolves to whichever conftest.py was imported first in the run (another package's)."""

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from bridge.endpoint import Endpoint
from bridge.keys import CurveKeys, new_curve_keys
from bridge.local_side import LocalShellSide
from bridge.messages import Body, Envelope, decode, encode
from bridge.signing import new_signing_key
from bridge.station import StationIdentity, enroll, load_identity


def free_port_block(n: int = 3) -> int:
    """A port p with p .. p + n - 1 free on 127.0.0.1 (checked by binding them)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        socks = []
        try:
            for i in range(n):
                t = socket.socket()
                socks.append(t)
                t.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise RuntimeError("no free port block")


@dataclass
class Bridge:
    endpoint: Endpoint
    side: LocalShellSide  # the test's own connection to the endpoint's SQLite file
    side_path: Path
    keys: CurveKeys
    port: int
    case_store: Path
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"


def start_endpoint(
    tmp_path: Path, keys: CurveKeys | None = None, port: int | None = None
) -> Bridge:
    keys = keys or new_curve_keys()
    port = port or free_port_block()
    side_path = tmp_path / "shell.sqlite3"
    case_store = tmp_path / "case-store"
    endpoint = Endpoint(LocalShellSide(side_path, case_store=case_store), keys, port=port)
    thread = threading.Thread(target=endpoint.serve_forever, daemon=True)
    thread.start()
    assert endpoint.wait_ready()
    return Bridge(
        endpoint,
        LocalShellSide(side_path, case_store=case_store),
        side_path,
        keys,
        port,
        case_store,
        thread,
    )


def stop_endpoint(bridge: Bridge) -> None:
    bridge.endpoint.stop()
    bridge.thread.join(timeout=5)
    assert not bridge.thread.is_alive()


def enrol_station(bridge: Bridge, station_dir: Path, code: str = "CODE-1") -> StationIdentity:
    bridge.side.add_code(code, room="模拟训练室 1")
    enroll(station_dir, shell_url=bridge.url, code=code, shell_key=bridge.keys.public)
    return load_identity(station_dir)


class Client:
    """A hand-driven CURVE DEALER with its own sequence numbers."""

    def __init__(self, url: str, curve: CurveKeys, server_key: str) -> None:
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.curve_publickey = curve.public.encode()
        self.sock.curve_secretkey = curve.secret.encode()
        self.sock.curve_serverkey = server_key.encode()
        self.sock.linger = 0
        self.monitor = self.sock.get_monitor_socket()
        self.sock.connect(url)
        self.seq = 0

    def send(self, body: Body, *, message_id: str | None = None, seq: int | None = None) -> bytes:
        self.seq = seq if seq is not None else self.seq + 1
        frame = encode(body, seq=self.seq, message_id=message_id)
        self.sock.send(frame)
        return frame

    def send_raw(self, *frames: bytes) -> None:
        self.sock.send_multipart(list(frames))

    def recv(self, timeout_s: float = 5.0) -> Envelope | None:
        if not self.sock.poll(int(timeout_s * 1000)):
            return None
        return decode(self.sock.recv())

    def recv_type(self, kind: type[Any], timeout_s: float = 5.0) -> Any:
        """The next message of ``kind`` (others skipped: heartbeats, commands)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            env = self.recv(deadline - time.monotonic())
            if env is not None and isinstance(env.body, kind):
                return env.body
        return None

    def close(self) -> None:
        self.sock.disable_monitor()
        self.monitor.close(linger=0)
        self.sock.close(linger=0)


def station_client(bridge: Bridge, identity: StationIdentity) -> Client:
    return Client(f"tcp://127.0.0.1:{bridge.port + 1}", identity.curve, bridge.keys.public)


def stranger_identity(station_id: str = "st-stranger") -> tuple[CurveKeys, Any]:
    return new_curve_keys(), new_signing_key()
