"""The station's end of the bridge: enrolment, the long-running loop, sessions, telemetry.

A station directory (``var/station/`` in the demo) holds::

    station.json   who it is and where the shell is (written at enrolment)
    curve.key      its CURVE keypair, Z85 (mode 0600)
    signing.key    its Ed25519 seed, hex (mode 0600)
    outbox.sqlite3 results not yet acknowledged (bridge.outbox)
    cases/         verified case archives, unpacked (bridge.case_cache)
    streaming.json the stream this station publishes now (reported failed after a restart)

``StationRunner.run`` is one loop owning the request socket (DEALER) and the telemetry socket
(PUB): it heartbeats, takes StartSession commands, fetches the case by hash in chunks, hands the
session to a worker thread (the engine), publishes its telemetry at most 60 times a second,
commits the signed result to the outbox, and resends the outbox until each result is acked.
"""

import contextlib
import json
import logging
import os
import queue
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import msgspec
import nacl.signing
import zmq

from bridge.case_archive import CaseArchiveError
from bridge.case_cache import CaseCache, CaseHashMismatchError
from bridge.keys import CurveKeys, new_curve_keys, write_private
from bridge.messages import (
    MAX_CHUNK_BYTES,
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
    PlanElementSpec,
    Result,
    ResultAck,
    SessionStarted,
    SignIn,
    SignInOk,
    StartSession,
    StartStream,
    StopStream,
    StreamStatus,
    Telemetry,
    check_plan,
    decode,
    encode,
)
from bridge.outbox import Outbox
from bridge.plan_rehearsal import rehearsal_arguments
from bridge.signing import new_signing_key, recording_hash, sign_result, signing_key_from_hex
from bridge.station_stream import SessionView, StationStream, newest_case

log = logging.getLogger("osteon.station")

HEARTBEAT_S: Final = 1.0
# the shell is taken as unreachable after this long without a message from it
SHELL_SILENT_S: Final = 3.0
# a result not acked after this long is sent again (same message id)
RESEND_AFTER_S: Final = 3.0
# a case chunk not answered after this long is asked for again (from the bytes already here)
CHUNK_TIMEOUT_S: Final = 3.0
TELEMETRY_MAX_HZ: Final = 60.0
# refusals after which resending a result cannot help: the row is kept, marked refused
TERMINAL_RESULT_CODES: Final = frozenset(
    {
        "bad_signature",
        "bad_recording",
        "wrong_station",
        "not_signed_in",
        "session_mismatch",
        "malformed",
        "oversized",
        "unknown_type",
        "unknown_version",
    }
)


class StationError(Exception):
    """A station command that cannot go on (not enrolled, enrolment refused, revoked, ...)."""


@dataclass(frozen=True)
class StationConfig:
    station_id: str
    name: str
    institution: str
    room: str
    shell_host: str
    enrol_port: int
    router_port: int
    telemetry_port: int
    shell_curve_key: str


@dataclass(frozen=True)
class StationIdentity:
    config: StationConfig
    curve: CurveKeys
    signing_key: nacl.signing.SigningKey


def parse_shell_url(url: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` -> (HOST, PORT)."""
    rest = url.removeprefix("tcp://")
    host, _, port = rest.rpartition(":")
    if not url.startswith("tcp://") or not host or not port.isdigit():
        raise StationError(f"地址应为 / expected tcp://HOST:PORT, got {url!r}")
    return host, int(port)


def load_identity(station_dir: Path) -> StationIdentity:
    """The enrolled station in ``station_dir``; StationError when it is not enrolled."""
    try:
        config = StationConfig(**json.loads((station_dir / "station.json").read_text()))
        public, secret = (station_dir / "curve.key").read_text(encoding="ascii").split()
        seed = (station_dir / "signing.key").read_text(encoding="ascii").strip()
    except (OSError, ValueError, TypeError) as exc:
        raise StationError(
            f"{station_dir}: 工作站尚未注册 / this station is not enrolled ({exc})"
        ) from exc
    return StationIdentity(config, CurveKeys(public, secret), signing_key_from_hex(seed))


def _client_socket(
    ctx: zmq.Context[Any], kind: int, curve: CurveKeys, server_key: str
) -> zmq.Socket[Any]:
    sock: zmq.Socket[Any] = ctx.socket(kind)
    sock.curve_publickey = curve.public.encode()
    sock.curve_secretkey = curve.secret.encode()
    sock.curve_serverkey = server_key.encode()
    sock.linger = 0
    return sock


def enroll(
    station_dir: Path,
    *,
    shell_url: str,
    code: str,
    shell_key: str,
    room: str = "",
    hostname: str | None = None,
    timeout_s: float = 10.0,
) -> StationConfig:
    """Present the one-time ``code`` to the shell's enrolment socket with fresh keys; on
    success write the station directory (keys 0600). Raises StationError."""
    if (station_dir / "station.json").exists():
        raise StationError(f"{station_dir}: 已注册 / already enrolled (remove it to re-enrol)")
    host, port = parse_shell_url(shell_url)
    curve = new_curve_keys()
    signing = new_signing_key()
    # a context of its own for this one exchange, closed with it (see StationRunner)
    ctx: zmq.Context[Any] = zmq.Context()
    sock = _client_socket(ctx, zmq.DEALER, curve, shell_key)
    try:
        sock.connect(f"tcp://{host}:{port}")
        sock.send(
            encode(
                Enroll(
                    code=code,
                    curve_public_key=curve.public,
                    signing_public_key=signing.verify_key.encode().hex(),
                    hostname=hostname or socket.gethostname(),
                    room=room,
                ),
                seq=1,
            )
        )
        if not sock.poll(int(timeout_s * 1000)):
            raise StationError(
                f"注册无应答 / no answer from {shell_url} in {timeout_s:g} s "
                "(wrong address or wrong shell key?)"
            )
        env = decode(sock.recv())
    except BridgeProtocolError as exc:
        raise StationError(f"注册应答无效 / bad enrolment answer: {exc}") from exc
    finally:
        sock.close(linger=0)
        ctx.term()
    if isinstance(env.body, Error):
        raise StationError(f"注册被拒绝 / enrolment refused: {env.body.code}: {env.body.reason}")
    if not isinstance(env.body, EnrollOk):
        raise StationError(f"注册应答无效 / unexpected answer {env.type}")
    ok = env.body
    config = StationConfig(
        station_id=ok.station_id,
        name=ok.name,
        institution=ok.institution,
        room=ok.room,
        shell_host=host,
        enrol_port=port,
        router_port=ok.router_port,
        telemetry_port=ok.telemetry_port,
        shell_curve_key=ok.shell_curve_key,
    )
    # keys first, the config last: a station.json means a complete station directory
    write_private(station_dir / "curve.key", f"{curve.public}\n{curve.secret}\n")
    write_private(station_dir / "signing.key", bytes(signing).hex() + "\n")
    write_private(station_dir / "station.json", json.dumps(asdict(config), indent=2) + "\n")
    return config


class Link:
    """The request connection: a CURVE DEALER with this connection's sequence numbers."""

    def __init__(self, ctx: zmq.Context[Any], identity: StationIdentity) -> None:
        cfg = identity.config
        self.sock = _client_socket(ctx, zmq.DEALER, identity.curve, cfg.shell_curve_key)
        # queue nothing for a shell that is not connected: the outbox is the queue
        self.sock.immediate = True
        self.sock.sndhwm = 64
        self.sock.connect(f"tcp://{cfg.shell_host}:{cfg.router_port}")
        self.seq = 0

    def send(self, body: Body, *, message_id: str | None = None) -> bool:
        """Send without blocking; False when the shell is not connected (try again later)."""
        try:
            self.seq += 1
            self.sock.send(encode(body, seq=self.seq, message_id=message_id), zmq.NOBLOCK)
            return True
        except zmq.Again:
            self.seq -= 1
            return False

    def recv(self, timeout_s: float) -> Envelope | None:
        if not self.sock.poll(int(timeout_s * 1000)):
            return None
        return decode(self.sock.recv())

    def close(self) -> None:
        self.sock.close(linger=0)


def sign_in_once(
    identity: StationIdentity,
    *,
    username: str,
    secret: str,
    method: str = "password",
    timeout_s: float = 10.0,
) -> SignInOk:
    """Sign a person in at this station (its own short connection). Raises StationError."""
    ctx: zmq.Context[Any] = zmq.Context()
    link = Link(ctx, identity)
    try:
        deadline = time.monotonic() + timeout_s
        while not link.send(SignIn(username=username, secret=secret, method=method)):  # type: ignore[arg-type]
            if time.monotonic() > deadline:
                raise StationError("无法连接临床平台 / cannot reach the shell")
            time.sleep(0.05)
        while time.monotonic() < deadline:
            env = link.recv(deadline - time.monotonic())
            if env is None:
                break
            if isinstance(env.body, SignInOk):
                return env.body
            if isinstance(env.body, Error):
                raise StationError(f"登录被拒绝 / sign-in refused: {env.body.reason}")
        raise StationError("登录无应答 / no answer to the sign-in")
    except BridgeProtocolError as exc:
        raise StationError(f"应答无效 / bad answer: {exc}") from exc
    finally:
        link.close()
        ctx.destroy(linger=0)


# ---- sessions ----------------------------------------------------------------------------------


# what drives the tool of a session: (model, skill) -> the engine's input rows. The default,
# ``sim_core.trajectories.scripted_rows``, goes where the model's plan says; a test may drive
# another path (a plan run with a known offset) through the same station
DeviceRows = Callable[[Any, str], Any]


def plan_element(command: StartSession) -> PlanElementSpec | None:
    """The element a rehearsal drills (None without a plan); ``StationError`` for a plan the
    station refuses: digest not matching (changed, or for another case), unknown kind, ..."""
    if command.plan is None:
        return None
    try:
        return check_plan(command.case_hash, command.plan)
    except ValueError as exc:
        raise StationError(str(exc)) from None


@dataclass(frozen=True)
class SessionOutcome:
    command: StartSession
    result: Result | None
    error: str = ""


def run_session(
    identity: StationIdentity,
    command: StartSession,
    case_dir: Path,
    *,
    realtime: bool,
    publish: Callable[[Telemetry], None],
    work_dir: Path,
    device_rows: DeviceRows | None = None,
    follow: Callable[[SessionView | None], None] | None = None,
) -> Result:
    """Run ``command`` on the verified case in ``case_dir`` with its scripted device; return
    the signed result (recording inside). ``realtime`` paces the ticks to the wall clock.

    With a plan (a rehearsal), the scenario runs on the chosen element's entry → target and
    the result signs the plan's digest (``sim_core.rehearsal``).

    ``follow`` is told the running session (`SessionView`) once its state exists and None when
    the engine stops: the station's stream shows it (`bridge.station_stream`)."""
    import numpy as np

    from sim_core.case.bundle import load_bundle
    from sim_core.model import model_from_bundle
    from sim_core.rehearsal import rehearsal_model
    from sim_core.replay import SessionResult, write_recording
    from sim_core.scoring import score
    from sim_core.slots import I_QUAT, S_FORCE, S_PEAK_FORCE_N, S_REMOVED, S_TICK, S_TOOL
    from sim_core.state import make_state, state_hash
    from sim_core.step import input_rows, run
    from sim_core.trajectories import scripted_rows

    kind, _, skill = command.device.partition(":")
    if kind != "scripted" or skill not in ("expert", "novice"):
        raise StationError(f"unsupported device at a bridge station: {command.device!r}")
    element = plan_element(command)
    if element is None:
        model = model_from_bundle(
            load_bundle(case_dir), command.scenario, instrument=command.instrument or None
        )
    else:
        assert command.plan is not None  # plan_element found the element in it
        model = rehearsal_model(
            load_bundle(case_dir),
            command.scenario,
            **rehearsal_arguments(command.plan, element),
            instrument=command.instrument or None,
        )
    rows = input_rows((device_rows or scripted_rows)(model, skill))
    state = make_state(model)
    run(model, state, rows[:0])  # compile the kernels before the clock starts
    station_id = identity.config.station_id
    if follow is not None:
        follow(SessionView(command.session_id, case_dir, model, state))
    try:
        # one telemetry sample per 1/60 s of simulated time: 16 or 17 ticks
        chunk = max(1, int(1000 / TELEMETRY_MAX_HZ))
        start = time.perf_counter()
        last_pub = 0.0
        st = state.st
        for first in range(0, rows.shape[0], chunk):
            run(model, state, rows[first : first + chunk])
            now = time.perf_counter()
            if realtime:
                ahead = (first + chunk) / 1000.0 - (now - start)
                if ahead > 0:
                    time.sleep(ahead)
                    now = time.perf_counter()
            if now - last_pub >= 1.0 / TELEMETRY_MAX_HZ:
                last_pub = now
                q = rows[min(first + chunk, rows.shape[0]) - 1, I_QUAT : I_QUAT + 4]
                publish(
                    Telemetry(
                        station_id=station_id,
                        session_id=command.session_id,
                        tick=int(st[S_TICK]),
                        state="running",
                        tool_position_mm=(
                            float(st[S_TOOL]),
                            float(st[S_TOOL + 1]),
                            float(st[S_TOOL + 2]),
                        ),
                        tool_quaternion=(float(q[0]), float(q[1]), float(q[2]), float(q[3])),
                        force_n=(
                            float(st[S_FORCE]),
                            float(st[S_FORCE + 1]),
                            float(st[S_FORCE + 2]),
                        ),
                        metrics={
                            "elapsed_s": float(st[S_TICK]) / 1000.0,
                            "peak_force_n": float(st[S_PEAK_FORCE_N]),
                            "removed_mm3": float(st[S_REMOVED]),
                        },
                    )
                )
    finally:
        if follow is not None:
            follow(None)
    sheet = score(model, state)
    session = SessionResult(
        sheet, state_hash(state), int(rows.shape[0]), time.perf_counter() - start
    )
    # the recording as the engine writes it, read back as bytes for the outbox
    fd, tmp = tempfile.mkstemp(dir=work_dir, prefix=".rec-", suffix=".npz")
    os.close(fd)
    try:
        write_recording(
            Path(tmp),
            model=model,
            rows=rows,
            result=session,
            case_path=case_dir,
            device_name=command.device,
        )
        recording = Path(tmp).read_bytes()
    finally:
        Path(tmp).unlink(missing_ok=True)
    metrics = {m.name: float(m.value) for m in sheet.metrics if np.isfinite(m.value)}
    result = Result(
        station_id=station_id,
        username=command.username,
        session_id=command.session_id,
        case_hash=command.case_hash,
        scenario=command.scenario,
        recording_hash=recording_hash(recording),
        metrics=metrics,
        score=float(sheet.score),
        passed=bool(sheet.passed),
        final_state_hash=session.state_hash,
        ended_at=time.time(),
        signature="",
        recording=recording,
        plan_digest=command.plan.digest if command.plan is not None else "",
    )
    return sign_result(result, identity.signing_key)


# ---- the loop ---------------------------------------------------------------------------------


@dataclass
class _Fetch:
    command: StartSession
    offset: int
    asked_at: float


class StationRunner:
    """``osteon station run``: one loop until ``stop()``, a revocation, or ``max_sessions``."""

    def __init__(
        self,
        station_dir: Path,
        *,
        realtime: bool = True,
        chunk_bytes: int = MAX_CHUNK_BYTES,
        producer: Callable[["StationRunner"], None] | None = None,
        echo: Callable[[str], None] = print,
        device_rows: DeviceRows | None = None,
        view_case: Path | None = None,
    ) -> None:
        self.dir = station_dir
        # the case a streamed view shows when this station has run none yet
        self.view_case = view_case
        self.stream: StationStream | None = None
        # the last status of each stream, said again when the shell pushes its command again
        self.stream_states: dict[str, StreamStatus] = {}
        self.session_case: Path | None = None
        # the session running now, as a stream shows it (set and cleared by the worker)
        self.session_view: SessionView | None = None
        self.identity = load_identity(station_dir)
        self.realtime = realtime
        self.chunk_bytes = min(chunk_bytes, MAX_CHUNK_BYTES)
        self.producer = producer
        self.echo = echo
        self.device_rows = device_rows
        self.outbox = Outbox(station_dir / "outbox.sqlite3")
        self.cache = CaseCache(station_dir / "cases")
        # the station's own context, not the process's shared one: its sockets live and die
        # with its run (a process running stations one after another, as the tests do, had
        # later stations' links go unanswered on the shared context)
        self.ctx: zmq.Context[Any] = zmq.Context()
        self._stop = threading.Event()
        self._events: queue.Queue[Telemetry | SessionOutcome | StreamStatus] = queue.Queue()
        self.seen_sessions: set[str] = set()
        # what this station last told the shell of each session ("" started, else the error),
        # and session_started messages not yet handed to a connected shell
        self.session_status: dict[str, str] = {}
        self._unsent: list[SessionStarted | StreamStatus] = []
        self.session_id = ""
        self.user = ""
        self.fetch: _Fetch | None = None
        self.worker: threading.Thread | None = None
        self.last_shell_contact = 0.0
        self.shell_online = False
        self.revoked = False
        self.telemetry_seq = 0
        self.sessions_done = 0

    def stop(self) -> None:
        self._stop.set()

    def save_result(self, result: Result) -> str:
        """Commit ``result`` to the outbox, then tell the user it is saved."""
        message_id = self.outbox.put(result)
        self.echo(f"已保存 / saved {message_id} score {result.score:.0f}")
        return message_id

    def run(
        self, *, max_sessions: int | None = None, sign_in: tuple[str, str, str] | None = None
    ) -> int:
        """The loop; returns 0 when stopped, 3 when the shell revoked the station."""
        cfg = self.identity.config
        if self.ctx.closed:
            self.ctx = zmq.Context()
        self.link = Link(self.ctx, self.identity)
        self.pub = _client_socket(self.ctx, zmq.PUB, self.identity.curve, cfg.shell_curve_key)
        self.pub.sndhwm = 120  # two seconds of telemetry; older samples are dropped, not queued
        self.pub.connect(f"tcp://{cfg.shell_host}:{cfg.telemetry_port}")
        self._pending_sign_in = sign_in
        from sim_core.replay import ENGINE_VERSION

        # the engine version this station's results replay with (the shell shows it)
        self.link.send(Hello(station_id=cfg.station_id, state="idle", software=ENGINE_VERSION))
        self._send_sign_in()
        self._abort_interrupted_session()
        self._fail_interrupted_stream()
        next_beat = time.monotonic()
        next_outbox = time.monotonic()
        shell_at = f"{cfg.shell_host}:{cfg.router_port}"
        self.echo(f"工作站运行中 / station {cfg.station_id} running, shell {shell_at}")
        try:
            while not self._stop.is_set():
                busy = self.worker is not None
                # wait for the first message, then take what else is already here
                env = self._recv(0.005 if busy else 0.05)
                for _ in range(64):
                    if env is None:
                        break
                    self._on_message(env)
                    env = self._recv(0.0)
                self._drain_events()
                now = time.monotonic()
                if now >= next_beat:
                    next_beat = now + HEARTBEAT_S
                    self._heartbeat()
                if now >= next_outbox:
                    next_outbox = now + 0.2
                    self._send_outbox()
                self._check_fetch()
                self._flush_unsent()
                if self.producer is not None:
                    self.producer(self)
                if self.revoked:
                    return 3
                if self._all_done(max_sessions):
                    return 0
        finally:
            if self.stream is not None:
                self.stream.stop()
            if self.worker is not None:
                self.worker.join(timeout=30)
            self.link.close()
            self.pub.close(linger=0)
            self.outbox.close()
            self.ctx.destroy(linger=0)
        return 0

    @property
    def _running_file(self) -> Path:
        return self.dir / "running-session.json"

    def _abort_interrupted_session(self) -> None:
        # a session this station was running when it died (kill -9, power): tell the shell it
        # was aborted, so it does not wait for it; its result was never saved, so none is lost
        if not self._running_file.exists():
            return
        try:
            session_id = json.loads(self._running_file.read_text())["session_id"]
        except (OSError, ValueError, KeyError):
            session_id = ""
        if session_id and not self.outbox.has_session(session_id):
            self.seen_sessions.add(session_id)
            self._confirm(session_id, "aborted: the station stopped during the session")
            self.echo(f"中断的训练已报告 / interrupted session {session_id} reported as aborted")
        self._running_file.unlink(missing_ok=True)

    @property
    def _stream_file(self) -> Path:
        return self.dir / "streaming.json"

    def _fail_interrupted_stream(self) -> None:
        # a stream this station was publishing when it stopped (a restart, kill -9, power): no
        # one publishes it now, so tell the shell it failed rather than leave it "publishing"
        if not self._stream_file.exists():
            return
        try:
            stream_id = str(json.loads(self._stream_file.read_text())["stream_id"])
        except (OSError, ValueError, KeyError):
            stream_id = ""
        if stream_id:
            error = "the station restarted during the stream"
            self._send_stream_status(StreamStatus(stream_id=stream_id, state="failed", error=error))
            self.echo(f"中断的直播画面已报告 / interrupted stream {stream_id} reported as failed")
        self._stream_file.unlink(missing_ok=True)

    def _all_done(self, max_sessions: int | None) -> bool:
        # --max-sessions: that many sessions ended and every result answered by the shell
        return (
            max_sessions is not None
            and self.sessions_done >= max_sessions
            and self.worker is None
            and self.outbox.counts()["pending"] == 0
        )

    # ---- incoming ---------------------------------------------------------------------------

    def _recv(self, timeout_s: float) -> Envelope | None:
        try:
            env = self.link.recv(timeout_s)
        except BridgeProtocolError as exc:
            log.warning("station: bad frame from the shell: %s", exc)
            return None
        if env is not None:
            self.last_shell_contact = time.monotonic()
            if not self.shell_online:
                self.shell_online = True
                self.echo("已连接临床平台 / shell reachable")
        return env

    def _on_message(self, env: Envelope) -> None:
        body = env.body
        if isinstance(body, ResultAck):
            if self.outbox.acked(body.result_id, body.status):
                self.echo(f"已确认 / acknowledged {body.result_id} ({body.status})")
        elif isinstance(body, StartSession):
            self._on_start(body)
        elif isinstance(body, CaseChunk):
            self._on_chunk(body)
        elif isinstance(body, StartStream):
            self._on_start_stream(body)
        elif isinstance(body, StopStream):
            self._on_stop_stream(body)
        elif isinstance(body, SignInOk):
            self.user = body.username
            self.echo(f"已登录 / signed in: {body.display_name} ({body.username})")
        elif isinstance(body, Error):
            self._on_error(body)

    def _on_error(self, error: Error) -> None:
        log.warning(
            "station: the shell refused %s: %s %s", error.in_reply_to, error.code, error.reason
        )
        if error.code == "revoked":
            self.echo("工作站已被吊销 / this station has been revoked in the shell; stopping")
            self.revoked = True
        elif error.code in TERMINAL_RESULT_CODES and error.in_reply_to:
            self.outbox.refused(error.in_reply_to, error.code, error.reason)
        elif error.code in ("unknown_case", "bad_range") and self.fetch is not None:
            self._finish_session_start(self.fetch.command, f"{error.code}: {error.reason}")
            self.fetch = None
        elif error.code == "sign_in_refused":
            self.echo(f"登录被拒绝 / sign-in refused: {error.reason}")

    def _on_start(self, command: StartSession) -> None:
        if command.session_id in self.seen_sessions:
            # pushed again: the shell has not heard how it went, so say it again
            if command.session_id in self.session_status:
                self._confirm(command.session_id, self.session_status[command.session_id])
            return
        if self.worker is not None or self.fetch is not None:
            # one session at a time: the shell pushes the command again later
            return
        self.seen_sessions.add(command.session_id)
        self.session_id = command.session_id
        self.echo(
            f"开始训练 / session {command.session_id}: {command.scenario} for {command.username}"
        )
        try:
            # a plan the station cannot rehearse is refused before the case is fetched
            plan_element(command)
        except StationError as exc:
            self.echo(f"规划被拒绝 / plan refused: {exc}")
            self._finish_session_start(command, f"plan refused: {exc}")
            return
        try:
            bundle = self.cache.bundle(command.case_hash)
        except ValueError as exc:
            self._finish_session_start(command, str(exc))
            return
        if bundle is not None:
            self._start_worker(command, bundle)
            return
        offset = self.cache.resume_offset(command.case_hash)
        self.fetch = _Fetch(command, offset, 0.0)
        self._ask_chunk()

    def _on_start_stream(self, command: StartStream) -> None:
        known = self.stream_states.get(command.stream_id)
        current = self.stream
        if current is not None and current.stream_id == command.stream_id:
            if known is not None:
                self._send_stream_status(known)  # pushed again: say again how it went
            return
        if known is not None:
            self._send_stream_status(known)  # ended before this push: never started twice
            return
        case_dir = self.session_case or newest_case(self.dir / "cases" / "cases")
        case_dir = case_dir or self.view_case
        if case_dir is None:
            status = StreamStatus(
                stream_id=command.stream_id,
                state="failed",
                error="no case on this station to show (run a session, or --view-case)",
            )
            self._events.put(status)
            return
        if current is not None:
            # one stream at a time: the newer command replaces the older stream
            threading.Thread(target=current.stop, name="stream-stop", daemon=True).start()
        self.echo(f"开始直播画面 / streaming this station's view ({command.stream_id})")
        self.stream = StationStream(
            command, case_dir, self._events.put, current_session=lambda: self.session_view
        )
        write_private(self._stream_file, json.dumps({"stream_id": command.stream_id}))
        self.stream.start()

    def _on_stop_stream(self, command: StopStream) -> None:
        current = self.stream
        if current is not None and current.stream_id == command.stream_id and current.running:
            # the stream's thread reports "stopped" once the view and ffmpeg are closed
            threading.Thread(target=current.stop, name="stream-stop", daemon=True).start()
            return
        # unknown, or already ended: a stop is answered all the same
        self._events.put(StreamStatus(stream_id=command.stream_id, state="stopped"))

    def _send_stream_status(self, status: StreamStatus) -> None:
        self.stream_states[status.stream_id] = status
        self._unsent.append(status)
        self._flush_unsent()

    def _ask_chunk(self) -> None:
        assert self.fetch is not None
        length = self.chunk_bytes
        if self.fetch.command.case_bytes:
            length = max(1, min(length, self.fetch.command.case_bytes - self.fetch.offset))
        req = CaseRequest(
            case_hash=self.fetch.command.case_hash, offset=self.fetch.offset, length=length
        )
        self.link.send(req)
        self.fetch.asked_at = time.monotonic()

    def _check_fetch(self) -> None:
        # an unanswered chunk is asked for again: the transfer resumes where it stopped
        if self.fetch is not None and time.monotonic() - self.fetch.asked_at > CHUNK_TIMEOUT_S:
            self.fetch.offset = self.cache.resume_offset(self.fetch.command.case_hash)
            self._ask_chunk()

    def _on_chunk(self, chunk: CaseChunk) -> None:
        fetch = self.fetch
        if (
            fetch is None
            or chunk.case_hash != fetch.command.case_hash
            or chunk.offset != fetch.offset
        ):
            return
        fetch.offset = self.cache.append(chunk.case_hash, chunk.offset, chunk.data)
        if fetch.offset < chunk.total_bytes and chunk.data:
            self._ask_chunk()
            return
        self.fetch = None
        try:
            bundle = self.cache.finish(chunk.case_hash)
        except (CaseHashMismatchError, CaseArchiveError) as exc:
            self.echo(f"病例校验失败 / case refused: {exc}")
            self._finish_session_start(fetch.command, f"case hash mismatch: {exc}")
            return
        self._start_worker(fetch.command, bundle)

    def _confirm(self, session_id: str, error: str) -> None:
        self.session_status[session_id] = error
        self._unsent.append(SessionStarted(session_id=session_id, error=error))
        self._flush_unsent()

    def _flush_unsent(self) -> None:
        while self._unsent and self.link.send(self._unsent[0]):
            self._unsent.pop(0)

    def _finish_session_start(self, command: StartSession, error: str) -> None:
        self._confirm(command.session_id, error)
        if error:
            self.session_id = ""
            self.sessions_done += 1

    def _start_worker(self, command: StartSession, bundle: Path) -> None:
        self._finish_session_start(command, "")
        self.session_case = bundle
        write_private(self._running_file, json.dumps({"session_id": command.session_id}))

        def work() -> None:
            try:
                result = run_session(
                    self.identity,
                    command,
                    bundle,
                    realtime=self.realtime,
                    publish=self._events.put,
                    work_dir=self.dir,
                    device_rows=self.device_rows,
                    follow=self._follow_session,
                )
                self._events.put(SessionOutcome(command, result))
            except Exception as exc:  # the engine's failure ends the session, not the station
                log.exception("station: session %s failed", command.session_id)
                self._events.put(SessionOutcome(command, None, str(exc)))

        self.worker = threading.Thread(
            target=work, name=f"session-{command.session_id}", daemon=True
        )
        self.worker.start()

    def _follow_session(self, session: SessionView | None) -> None:
        # the worker names its session (None when it ends); a stream picks it up on its own
        # thread, so the engine never waits for the view
        self.session_view = session

    def _drain_events(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            if isinstance(event, Telemetry):
                self.publish(event)
                continue
            if isinstance(event, StreamStatus):
                if event.state != "publishing":
                    self.echo(
                        f"直播画面结束 / stream {event.stream_id} {event.state} {event.error}"
                    )
                    if self.stream is not None and self.stream.stream_id == event.stream_id:
                        self._stream_file.unlink(missing_ok=True)
                self._send_stream_status(event)
                continue
            if self.worker is not None:
                self.worker.join()
                self.worker = None
            self.session_id = ""
            self.sessions_done += 1
            if event.result is not None:
                # saved before the running marker goes: a crash between leaves both, and the
                # restart finds the result in the outbox and reports no abort
                self.save_result(event.result)
            self._running_file.unlink(missing_ok=True)
            if event.result is None:
                self.echo(f"训练失败 / session {event.command.session_id} failed: {event.error}")
                # a second session_started, with the error, tells the shell it was aborted
                self._confirm(event.command.session_id, f"aborted: {event.error}"[:1000])
                continue
            self._send_outbox()

    def publish(self, telemetry: Telemetry) -> None:
        self.telemetry_seq += 1
        # a full queue drops the sample: telemetry never waits
        with contextlib.suppress(zmq.Again):
            self.pub.send(encode(telemetry, seq=self.telemetry_seq), zmq.NOBLOCK)

    # ---- outgoing -----------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        if self.shell_online and time.monotonic() - self.last_shell_contact > SHELL_SILENT_S:
            self.shell_online = False
            self.echo(
                "临床平台无应答，继续工作 / shell unreachable; working on, results queue here"
            )
        self._send_sign_in()
        self.link.send(
            Heartbeat(
                state="busy" if self.session_id else "idle",
                session_id=self.session_id,
                user=self.user,
                outbox_pending=self.outbox.counts()["pending"],
            )
        )

    def _send_sign_in(self) -> None:
        # before any result of this person's: the shell accepts results of signed-in users only
        if self._pending_sign_in is not None:
            username, secret, method = self._pending_sign_in
            sign_in = SignIn(username=username, secret=secret, method=method)  # type: ignore[arg-type]
            if self.link.send(sign_in):
                self._pending_sign_in = None

    def _send_outbox(self) -> None:
        # a sign-in not yet sent goes first: the shell takes results of signed-in people only
        self._send_sign_in()
        if self._pending_sign_in is not None:
            return
        for pending in self.outbox.due(resend_after_s=RESEND_AFTER_S):
            if not self.link.send(pending.result, message_id=pending.message_id):
                return
            self.outbox.mark_sent(pending.message_id)


def decode_result(blob: bytes) -> Result:
    return msgspec.msgpack.decode(blob, type=Result)
