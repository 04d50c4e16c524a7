"""The shell's end of the bridge: three CURVE sockets, ZAP, checks, and one loop.

Sockets (all CURVE servers with the shell's keypair, on ``host``):

- enrolment, ``port``: ROUTER; ZAP domain ``enrol`` lets any client key in (encryption only);
  accepts nothing but ``Enroll``;
- requests, ``port + 1``: ROUTER; ZAP domain ``station`` admits only keys of enrolled, not
  revoked stations; Hello, Heartbeat, SignIn, CaseRequest, SessionStarted, Result,
  StreamStatus; the shell pushes Heartbeat, StartSession, StartStream and StopStream to the
  station on it;
- telemetry, ``port + 2``: SUB; the stations' PUB sockets connect to it (same ZAP domain).

ZAP runs in this loop (a REP socket on ``inproc://zeromq.zap.01``), so the ShellSide is only
ever called from one thread. Each message's ZAP User-Id (the sender's Z85 key) is checked again
against ``ShellSide.station_for_key`` (cached for ``KEY_CACHE_S``), and every connected station
is re-checked every second: a revoked station's next message is refused with ``revoked`` and it
is told so at once, within about a second of the revocation.

Every frame goes through ``bridge.messages.decode`` and the envelope checks (clock skew,
sequence, replayed id); anything wrong gets an ``Error`` reply with its code, is logged, and
the loop goes on. No exception from a frame's content stops the loop.
"""

import logging
import os
import signal
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final

import zmq
from zmq.utils import z85

from bridge.keys import CurveKeys
from bridge.messages import (
    MAX_CHUNK_BYTES,
    MAX_CLOCK_SKEW_S,
    MAX_FRAME_BYTES,
    Body,
    BridgeProtocolError,
    CaseChunk,
    CaseRequest,
    Enroll,
    EnrollOk,
    Envelope,
    Error,
    Heartbeat,
    Hello,
    Result,
    SessionStarted,
    SignIn,
    SignInOk,
    StartSession,
    StreamStatus,
    Telemetry,
    decode,
    encode,
)
from bridge.shell_side import (
    Command,
    EnrolmentRefusedError,
    ResultRefusedError,
    ShellSide,
    SignInRefusedError,
    StationRef,
)
from bridge.signing import SignatureInvalidError, recording_hash, verify_result

log = logging.getLogger("osteon.bridge")

ZAP_ENDPOINT: Final = "inproc://zeromq.zap.01"
# a station's key is looked up again after this long (revocation takes effect within it)
KEY_CACHE_S: Final = 1.0
# the shell heartbeats each connected station this often; a station silent this long is offline
HEARTBEAT_S: Final = 1.0
OFFLINE_AFTER_S: Final = 2.5
# a StartSession not yet confirmed is pushed again after this long
COMMAND_REPUSH_S: Final = 5.0
# per station, this many recent message ids are remembered to refuse replays
RECENT_IDS: Final = 4096


@dataclass
class _Connection:
    """One station connection on the request socket (a ROUTER routing id)."""

    routing_id: bytes
    key: str
    station: StationRef
    last_seq: int = 0
    out_seq: int = 0
    last_seen: float = 0.0
    pushed: dict[str, float] = field(default_factory=dict)  # command key -> when pushed
    cut: bool = False


@dataclass
class EndpointStats:
    frames: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    telemetry: int = 0
    results_accepted: int = 0
    results_duplicate: int = 0
    zap_refused: int = 0
    case_bytes_served: int = 0

    def count_error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


class Endpoint:
    """The bridge endpoint. ``serve_forever()`` runs the loop; ``stop()`` ends it (any thread)."""

    def __init__(
        self,
        shell: ShellSide,
        keys: CurveKeys,
        *,
        host: str = "127.0.0.1",
        port: int,
        context: zmq.Context[Any] | None = None,
    ) -> None:
        self.shell = shell
        self.keys = keys
        self.host = host
        self.port = port
        # its own context: ZAP is per context, so each endpoint has its own handler
        self._own_context = context is None
        self.ctx = context or zmq.Context()
        self.stats = EndpointStats()
        self._stop = threading.Event()
        self._conns: dict[bytes, _Connection] = {}
        self._latest_conn: dict[str, bytes] = {}  # station id -> its newest routing id
        self._key_cache: dict[str, tuple[float, StationRef | None]] = {}
        self._recent_ids: dict[str, OrderedDict[str, None]] = {}
        self._telemetry_seq: dict[str, int] = {}
        self._cases: OrderedDict[str, BinaryIO] = OrderedDict()
        self._ready = threading.Event()
        self._turn = 0

    # ---- sockets ---------------------------------------------------------------------------

    def _curve_server(self, kind: int, domain: bytes, max_bytes: int) -> zmq.Socket[Any]:
        sock = self.ctx.socket(kind)
        sock.curve_server = True
        sock.curve_secretkey = self.keys.secret.encode()
        sock.curve_publickey = self.keys.public.encode()
        sock.zap_domain = domain
        sock.linger = 0
        # a peer sending a frame over this is disconnected by libzmq before we see it
        sock.maxmsgsize = max_bytes
        return sock

    def _open(self) -> None:
        self.zap = self.ctx.socket(zmq.REP)
        self.zap.linger = 0
        self.zap.bind(ZAP_ENDPOINT)
        self.enrol = self._curve_server(zmq.ROUTER, b"enrol", 64 * 1024)
        self.router = self._curve_server(zmq.ROUTER, b"station", MAX_FRAME_BYTES + 4096)
        self.router.router_mandatory = True
        self.router.sndhwm = 1000
        self.telemetry_sub = self._curve_server(zmq.SUB, b"station", 64 * 1024)
        self.telemetry_sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.enrol.bind(f"tcp://{self.host}:{self.port}")
        self.router.bind(f"tcp://{self.host}:{self.port + 1}")
        self.telemetry_sub.bind(f"tcp://{self.host}:{self.port + 2}")

    def _close(self) -> None:
        for f in self._cases.values():
            f.close()
        for sock in (self.zap, self.enrol, self.router, self.telemetry_sub):
            sock.close(linger=0)
        if self._own_context:
            self.ctx.term()
        # the shell side may hold resources of this thread (the Django shell: its database
        # connection, which a pool lends only so many of): a shell side that has some lets go
        stopped = getattr(self.shell, "endpoint_stopped", None)
        if callable(stopped):
            stopped()

    def wait_ready(self, timeout_s: float = 10.0) -> bool:
        return self._ready.wait(timeout_s)

    def stop(self) -> None:
        self._stop.set()

    # ---- loop --------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Bind, then handle frames until ``stop()``; periodic duties every 250 ms."""
        self._open()
        poller = zmq.Poller()
        for sock in (self.zap, self.enrol, self.router, self.telemetry_sub):
            poller.register(sock, zmq.POLLIN)
        self._ready.set()
        log.info("bridge endpoint on %s:%d (+1 requests, +2 telemetry)", self.host, self.port)
        next_duty = time.monotonic()
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(100))
                # ZAP first: a handshake waits on it
                if self.zap in events:
                    self._guard(self._on_zap)
                if self.enrol in events:
                    self._drain(self.enrol, self._on_enrol)
                if self.router in events:
                    self._drain(self.router, self._on_request)
                if self.telemetry_sub in events:
                    self._drain(self.telemetry_sub, self._on_telemetry)
                if time.monotonic() >= next_duty:
                    self._guard(self._periodic)
                    next_duty = time.monotonic() + 0.25
        finally:
            self._close()

    def _guard(self, fn: Any, *args: Any) -> None:
        # nothing a peer sends, and no ShellSide failure, may end the loop
        try:
            fn(*args)
        except Exception:
            log.exception("bridge endpoint: unexpected failure (continuing)")
            self.stats.count_error("internal")

    def _drain(self, sock: zmq.Socket[Any], handler: Any) -> None:
        # up to 256 frames per socket per turn, so one busy socket cannot starve the others
        for _ in range(256):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self.stats.frames += 1
            try:
                handler(frames)
            except Exception:
                # a ShellSide failure on a valid message: the sender hears it and may retry
                log.exception("bridge endpoint: failed to handle a frame (continuing)")
                self.stats.count_error("internal")
                if sock.socket_type == zmq.ROUTER and frames:
                    error = Error(code="internal", reason="the shell failed; try again")
                    self._send(sock, frames[0].bytes, error, 1)

    # ---- ZAP ---------------------------------------------------------------------------------

    def _on_zap(self) -> None:
        msg = self.zap.recv_multipart()
        version, request_id, domain = msg[0], msg[1], msg[2]
        mechanism = msg[5] if len(msg) > 5 else b""
        status, text, user_id = b"400", b"refused", b""
        if version == b"1.0" and mechanism == b"CURVE" and len(msg) >= 7 and len(msg[6]) == 32:
            key = z85.encode(msg[6]).decode("ascii")
            if domain == b"enrol":
                status, text, user_id = b"200", b"OK", key.encode()
            elif domain == b"station":
                station = self._station(key, fresh=True)
                if station is not None:
                    status, text, user_id = b"200", b"OK", key.encode()
                else:
                    text = b"unknown or revoked station key"
        if status != b"200":
            self.stats.zap_refused += 1
            log.warning("ZAP refused a %s connection (%s)", domain.decode(errors="replace"), text)
        self.zap.send_multipart([b"1.0", request_id, status, text, user_id, b""])

    def _station(self, key: str, *, fresh: bool = False) -> StationRef | None:
        now = time.monotonic()
        cached = self._key_cache.get(key)
        if cached is not None and not fresh and now - cached[0] < KEY_CACHE_S:
            return cached[1]
        station = self.shell.station_for_key(key)
        # strangers' keys (refused handshakes) must not grow the cache without bound
        if len(self._key_cache) > 10_000:
            self._key_cache.clear()
        self._key_cache[key] = (now, station)
        return station

    # ---- replies ----------------------------------------------------------------------------

    def _send(self, sock: zmq.Socket[Any], routing_id: bytes, body: Body, seq: int) -> None:
        try:
            sock.send_multipart([routing_id, encode(body, seq=seq)], zmq.NOBLOCK)
        except (zmq.Again, zmq.ZMQError) as exc:
            # the peer is gone or not reading: it will ask again
            log.info("bridge: could not send %s: %s", body.TYPE, exc)

    def _reply(self, conn: _Connection | None, routing_id: bytes, body: Body) -> None:
        if conn is None:
            self._send(self.router, routing_id, body, 1)
            return
        conn.out_seq += 1
        self._send(self.router, routing_id, body, conn.out_seq)

    def _refuse(
        self,
        conn: _Connection | None,
        routing_id: bytes,
        code: str,
        reason: str,
        in_reply_to: str = "",
        sock: zmq.Socket[Any] | None = None,
    ) -> None:
        self.stats.count_error(code)
        who = conn.station.station_id if conn else "?"
        log.warning("bridge: refused a message from %s: %s (%s)", who, code, reason)
        error = Error(code=code, reason=reason[:500], in_reply_to=in_reply_to)
        if sock is not None:
            self._send(sock, routing_id, error, 1)
        else:
            self._reply(conn, routing_id, error)

    # ---- enrolment -------------------------------------------------------------------------

    def _on_enrol(self, frames: list[zmq.Frame]) -> None:
        if len(frames) != 2:
            return
        routing_id = frames[0].bytes
        try:
            env = decode(frames[1].buffer)
        except BridgeProtocolError as exc:
            self._refuse(None, routing_id, exc.code, exc.reason, sock=self.enrol)
            return
        body = env.body
        if not isinstance(body, Enroll):
            self._refuse(None, routing_id, "unexpected", env.type, env.id, sock=self.enrol)
            return
        # the station must enrol the key it connected with (so it holds the secret half)
        if frames[1].get("User-Id") != body.curve_public_key:
            self._refuse(
                None,
                routing_id,
                "enrolment_refused",
                "the enrolled CURVE key is not the connection's key",
                env.id,
                sock=self.enrol,
            )
            return
        if len(body.signing_public_key) != 64 or not _is_hex(body.signing_public_key):
            self._refuse(
                None, routing_id, "enrolment_refused", "signing key", env.id, sock=self.enrol
            )
            return
        try:
            station = self.shell.enroll(
                code=body.code,
                curve_public_key=body.curve_public_key,
                signing_public_key=body.signing_public_key,
                hostname=body.hostname,
                room=body.room,
            )
        except EnrolmentRefusedError as exc:
            self._refuse(None, routing_id, "enrolment_refused", str(exc), env.id, sock=self.enrol)
            return
        self._key_cache.pop(body.curve_public_key, None)
        log.info("bridge: enrolled station %s (%s)", station.station_id, station.name)
        ok = EnrollOk(
            station_id=station.station_id,
            name=station.name,
            institution=station.institution,
            room=station.room,
            shell_curve_key=self.keys.public,
            router_port=self.port + 1,
            telemetry_port=self.port + 2,
        )
        self._send(self.enrol, routing_id, ok, 1)

    # ---- requests ------------------------------------------------------------------------------

    def _on_request(self, frames: list[zmq.Frame]) -> None:
        routing_id = frames[0].bytes
        if len(frames) != 2:
            self._refuse(None, routing_id, "malformed", f"{len(frames) - 1} frames, expected 1")
            return
        key = str(frames[1].get("User-Id"))
        conn = self._conns.get(routing_id)
        station = self._station(key)
        if station is None or (conn is not None and conn.cut):
            was_known = conn is not None or key in self._key_cache
            self._refuse(
                conn, routing_id, "revoked" if was_known else "unknown_station", "station key"
            )
            return
        if conn is None:
            conn = _Connection(routing_id=routing_id, key=key, station=station)
            self._conns[routing_id] = conn
        conn.station = station
        try:
            env = decode(frames[1].buffer)
        except BridgeProtocolError as exc:
            self._refuse(conn, routing_id, exc.code, exc.reason)
            return
        problem = self._envelope_problem(env, conn.station.station_id, conn.last_seq)
        if problem is not None:
            self._refuse(conn, routing_id, problem[0], problem[1], env.id)
            return
        conn.last_seq = env.seq
        conn.last_seen = time.monotonic()
        self._dispatch(conn, env)

    def _envelope_problem(
        self, env: Envelope, station_id: str, last_seq: int
    ) -> tuple[str, str] | None:
        # a result resent after a lost ack keeps its id: the ShellSide deduplicates it
        recent = self._recent_ids.setdefault(station_id, OrderedDict())
        if env.id in recent and env.type != Result.TYPE:
            return "replayed", f"message id {env.id} already received"
        if env.seq <= last_seq:
            return "out_of_order", f"seq {env.seq} after {last_seq}"
        if abs(time.time() - env.sent_at) > MAX_CLOCK_SKEW_S:
            return "stale", f"sent_at {env.sent_at:.0f} is {time.time() - env.sent_at:.0f} s off"
        recent[env.id] = None
        if len(recent) > RECENT_IDS:
            recent.popitem(last=False)
        return None

    def _dispatch(self, conn: _Connection, env: Envelope) -> None:
        body = env.body
        station = conn.station
        if isinstance(body, Hello | Heartbeat):
            beat = (
                Heartbeat(state=body.state, session_id=body.session_id)
                if isinstance(body, Hello)
                else body
            )
            if isinstance(body, Hello) and body.station_id != station.station_id:
                self._refuse(conn, conn.routing_id, "wrong_station", body.station_id, env.id)
                return
            self.shell.heartbeat(station, beat)
            # the connection that heartbeats is the one commands go to
            self._latest_conn[station.station_id] = conn.routing_id
            self._reply(conn, conn.routing_id, Heartbeat(state="shell"))
            if isinstance(body, Hello):
                # waiting commands go out at once; later ones with the periodic duties
                self._push_commands(conn)
        elif isinstance(body, SignIn):
            try:
                user = self.shell.sign_in(
                    station, username=body.username, secret=body.secret, method=body.method
                )
            except SignInRefusedError as exc:
                self._refuse(conn, conn.routing_id, "sign_in_refused", str(exc), env.id)
                return
            self._reply(
                conn,
                conn.routing_id,
                SignInOk(
                    username=user.username,
                    display_name=user.display_name,
                    sign_in_id=user.sign_in_id,
                ),
            )
        elif isinstance(body, CaseRequest):
            self._on_case_request(conn, env.id, body)
        elif isinstance(body, SessionStarted):
            self.shell.session_started(station, body)
            conn.pushed.pop(body.session_id, None)
        elif isinstance(body, Result):
            self._on_result(conn, env.id, body)
        elif isinstance(body, StreamStatus):
            self.shell.stream_status(station, body)
            # a stop answers the stop; publishing or failed answers the start
            kind = "stop" if body.state == "stopped" else "start"
            conn.pushed.pop(f"{kind}_stream:{body.stream_id}", None)
        else:
            self._refuse(conn, conn.routing_id, "unexpected", f"{env.type} on requests", env.id)

    def _on_case_request(self, conn: _Connection, message_id: str, req: CaseRequest) -> None:
        path = self.shell.case_path(req.case_hash)
        if path is None:
            self._refuse(conn, conn.routing_id, "unknown_case", req.case_hash, message_id)
            return
        f = self._case_file(req.case_hash, path)
        total = os.fstat(f.fileno()).st_size
        if req.offset < 0 or req.length < 1 or req.length > MAX_CHUNK_BYTES or req.offset > total:
            self._refuse(
                conn, conn.routing_id, "bad_range", f"{req.offset}+{req.length}", message_id
            )
            return
        f.seek(req.offset)
        data = f.read(req.length)
        self.stats.case_bytes_served += len(data)
        chunk = CaseChunk(case_hash=req.case_hash, offset=req.offset, total_bytes=total, data=data)
        self._reply(conn, conn.routing_id, chunk)

    def _case_file(self, case_hash: str, path: Path) -> BinaryIO:
        # a handful of open archives, least recently used closed first
        f = self._cases.pop(case_hash, None) or path.open("rb")
        self._cases[case_hash] = f
        while len(self._cases) > 8:
            self._cases.popitem(last=False)[1].close()
        return f

    def _on_result(self, conn: _Connection, message_id: str, result: Result) -> None:
        station = conn.station
        problem: tuple[str, str] | None = None
        if result.station_id != station.station_id:
            problem = (
                "wrong_station",
                f"result names {result.station_id}, sent by {station.station_id}",
            )
        elif recording_hash(result.recording) != result.recording_hash:
            problem = ("bad_recording", "sha256 of the recording is not the signed recording hash")
        else:
            try:
                verify_result(result, station.signing_public_key)
            except SignatureInvalidError as exc:
                problem = (
                    "bad_signature",
                    f"signature does not verify with {station.station_id}'s key ({exc})",
                )
        if problem is not None:
            self.shell.refuse_result(
                station, message_id=message_id, result=result, code=problem[0], reason=problem[1]
            )
            self._refuse(conn, conn.routing_id, problem[0], problem[1], message_id)
            return
        try:
            ack = self.shell.accept_result(station, message_id=message_id, result=result)
        except ResultRefusedError as exc:
            self._refuse(conn, conn.routing_id, exc.code, exc.reason, message_id)
            return
        if ack.duplicate:
            self.stats.results_duplicate += 1
        else:
            self.stats.results_accepted += 1
        self._reply(conn, conn.routing_id, ack)

    # ---- telemetry -----------------------------------------------------------------------------

    def _on_telemetry(self, frames: list[zmq.Frame]) -> None:
        if len(frames) != 1:
            self.stats.count_error("malformed")
            return
        key = str(frames[0].get("User-Id"))
        station = self._station(key)
        if station is None:
            self.stats.count_error("revoked")
            return
        try:
            env = decode(frames[0].buffer)
        except BridgeProtocolError as exc:
            self.stats.count_error(exc.code)
            log.debug("telemetry frame refused: %s", exc)
            return
        body = env.body
        if not isinstance(body, Telemetry) or body.station_id != station.station_id:
            self.stats.count_error("unexpected")
            return
        # a restarted station begins again at 1: only a repeat of the same frame is refused
        last = self._telemetry_seq.get(key, 0)
        if env.seq == last:
            self.stats.count_error("out_of_order")
            return
        self._telemetry_seq[key] = env.seq
        self.stats.telemetry += 1
        self.shell.telemetry(station, body)

    # ---- periodic duties -----------------------------------------------------------------------

    def _periodic(self) -> None:
        # every 250 ms: presence; every second: revocation and waiting commands
        now = time.monotonic()
        self._turn += 1
        every_second = self._turn % 4 == 0
        for routing_id, conn in list(self._conns.items()):
            if conn.cut:
                continue
            # revocation: look the key up again; tell the station and stop serving it
            fresh = self._station(conn.key, fresh=True) if every_second else conn.station
            if fresh is None:
                conn.cut = True
                self._refuse(conn, routing_id, "revoked", "station revoked in the shell")
                self.shell.station_offline(conn.station)
                continue
            if now - conn.last_seen > OFFLINE_AFTER_S:
                # a newer connection of the same station keeps it online
                del self._conns[routing_id]
                if self._latest_conn.get(conn.station.station_id) == routing_id:
                    del self._latest_conn[conn.station.station_id]
                    self.shell.station_offline(conn.station)
                continue
            if every_second and self._latest_conn.get(conn.station.station_id) == routing_id:
                self._push_commands(conn)
        # cut connections are forgotten once silent, so their routing ids do not pile up
        for routing_id, conn in list(self._conns.items()):
            if conn.cut and now - conn.last_seen > 60:
                del self._conns[routing_id]

    def _push_commands(self, conn: _Connection) -> None:
        now = time.monotonic()
        for command in self.shell.pending_commands(conn.station):
            key = _command_key(command)
            pushed_at = conn.pushed.get(key)
            if pushed_at is None or now - pushed_at > COMMAND_REPUSH_S:
                conn.pushed[key] = now
                self._reply(conn, conn.routing_id, command)


def _command_key(command: Command) -> str:
    # a session's command is known by its id (as before streams); a stream's by kind and id
    if isinstance(command, StartSession):
        return command.session_id
    return f"{command.TYPE}:{command.stream_id}"


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def serve(shell: ShellSide, keys: CurveKeys, *, host: str, port: int) -> None:
    """Run an endpoint in this thread until SIGINT or SIGTERM."""
    endpoint = Endpoint(shell, keys, host=host, port=port)

    def _stop(signum: int, frame: object) -> None:
        endpoint.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    endpoint.serve_forever()
