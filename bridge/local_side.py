"""A ShellSide on one SQLite file, without Django: for the bridge's tests, bench and chaos run.

It keeps what the endpoint needs (stations, enrolment codes, users, sign-ins, commands, case
archives) and what a test asserts on (accepted results, refused results, every time a result
took effect, presence). It is not the clinical shell's store: the shell's is
``clinical_shell.stations.bridge_side.DjangoShellSide``. Several processes may open the same file
(a test process inspects what a killed endpoint wrote): every write commits at once (WAL).
"""

import hashlib
import json
import sqlite3
import time
import uuid
from pathlib import Path

import msgspec

from bridge.case_archive import archive_in_store
from bridge.messages import (
    Heartbeat,
    Result,
    ResultAck,
    SessionStarted,
    StartSession,
    StartStream,
    StopStream,
    StreamStatus,
    Telemetry,
)
from bridge.shell_side import (
    Command,
    EnrolmentRefusedError,
    ResultRefusedError,
    SignInRefusedError,
    StationRef,
    UserRef,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS stations (
    station_id TEXT PRIMARY KEY, name TEXT, curve_public_key TEXT UNIQUE,
    signing_public_key TEXT, institution TEXT, room TEXT, hostname TEXT,
    revoked INTEGER DEFAULT 0, presence TEXT DEFAULT 'offline', state TEXT DEFAULT '',
    session_id TEXT DEFAULT '', last_contact REAL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY, institution TEXT, room TEXT, expires_at REAL, used INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS users (username TEXT PRIMARY KEY, display_name TEXT, password_sha TEXT);
CREATE TABLE IF NOT EXISTS one_time_codes (code TEXT PRIMARY KEY, username TEXT, used INTEGER);
CREATE TABLE IF NOT EXISTS sign_ins (
    sign_in_id TEXT PRIMARY KEY, station_id TEXT, username TEXT, at REAL
);
CREATE TABLE IF NOT EXISTS commands (
    session_id TEXT PRIMARY KEY, station_id TEXT, body BLOB, started INTEGER DEFAULT 0,
    error TEXT DEFAULT ''
);
CREATE TABLE IF NOT EXISTS results (
    message_id TEXT PRIMARY KEY, station_id TEXT, username TEXT, session_id TEXT,
    scenario TEXT, score REAL, metrics TEXT, final_state_hash TEXT, recording_hash TEXT,
    recording_bytes INTEGER, accepted_at REAL, recording BLOB
);
-- one row each time a result took effect: a duplicate would show as two rows with one id
CREATE TABLE IF NOT EXISTS effects (message_id TEXT, at REAL);
-- one row per accept_result call, duplicates included (what deduplication absorbed)
CREATE TABLE IF NOT EXISTS deliveries (message_id TEXT, at REAL);
CREATE TABLE IF NOT EXISTS refusals (message_id TEXT, station_id TEXT, code TEXT, reason TEXT);
CREATE TABLE IF NOT EXISTS telemetry_counts (station_id TEXT PRIMARY KEY, n INTEGER);
"""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class LocalShellSide:
    """ShellSide over SQLite (``path``; ``":memory:"`` for one process)."""

    def __init__(
        self,
        path: Path | str = ":memory:",
        *,
        case_store: Path | None = None,
        ack_delay_s: float = 0.0,
        durable: bool = True,
    ) -> None:
        self.path = str(path)
        # a slow shell: the time between a result's commit and its ack (the chaos run widens
        # the window in which a kill leaves a stored result unacknowledged)
        self.ack_delay_s = ack_delay_s
        self.case_store = case_store
        # one thread at a time (the endpoint's loop); a test may build it in another thread
        self.db = sqlite3.connect(
            self.path, isolation_level=None, timeout=30, check_same_thread=False
        )
        if self.path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
        # durable=False (the bench's round trips): commits without fsync
        self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        self.db.executescript(SCHEMA)
        # telemetry is counted in memory (a write per sample would slow the endpoint)
        self.telemetry_seen: dict[str, int] = {}
        self.stream_commands: dict[str, list[StartStream | StopStream]] = {}
        self.stream_statuses: list[tuple[str, StreamStatus]] = []
        self.last_telemetry: dict[str, Telemetry] = {}

    # ---- set-up used by tests and the bench --------------------------------------------------

    def add_code(
        self, code: str, *, institution: str = "CX", room: str = "", ttl_s: float = 600
    ) -> None:
        self.db.execute(
            "INSERT INTO codes VALUES (?, ?, ?, ?, 0)",
            (code, institution, room, time.time() + ttl_s),
        )

    def add_user(self, username: str, password: str, display_name: str = "") -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO users VALUES (?, ?, ?)",
            (username, display_name or username, _sha(password)),
        )

    def add_one_time_code(self, username: str, code: str) -> None:
        self.db.execute("INSERT INTO one_time_codes VALUES (?, ?, 0)", (code, username))

    def add_station(
        self, station_id: str, curve_public_key: str, signing_public_key: str
    ) -> StationRef:
        self.db.execute(
            "INSERT INTO stations (station_id, name, curve_public_key, signing_public_key,"
            " institution, room, hostname) VALUES (?, ?, ?, ?, 'CX', '', '')",
            (station_id, station_id, curve_public_key, signing_public_key),
        )
        return StationRef(station_id, station_id, curve_public_key, signing_public_key, "CX", "")

    def revoke(self, station_id: str) -> None:
        self.db.execute("UPDATE stations SET revoked = 1 WHERE station_id = ?", (station_id,))

    def add_command(self, station_id: str, command: StartSession) -> None:
        self.db.execute(
            "INSERT INTO commands (session_id, station_id, body) VALUES (?, ?, ?)",
            (command.session_id, station_id, msgspec.msgpack.encode(command)),
        )

    def add_stream_command(self, station_id: str, command: StartStream | StopStream) -> None:
        # kept in memory: a stream does not outlive the endpoint process anyway
        self.stream_commands.setdefault(station_id, []).append(command)

    def presence(self, station_id: str) -> tuple[str, str, str]:
        """(presence, state, session id) of a station."""
        row = self.db.execute(
            "SELECT presence, state, session_id FROM stations WHERE station_id = ?", (station_id,)
        ).fetchone()
        return (row[0], row[1], row[2]) if row else ("", "", "")

    def accepted_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT message_id FROM results ORDER BY rowid")]

    def result_row(self, message_id: str) -> dict[str, object] | None:
        cur = self.db.execute("SELECT * FROM results WHERE message_id = ?", (message_id,))
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row, strict=True)) if row else None

    def command_state(self, session_id: str) -> tuple[int, str] | None:
        row = self.db.execute(
            "SELECT started, error FROM commands WHERE session_id = ?", (session_id,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def effect_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT message_id, COUNT(*) FROM effects GROUP BY message_id")
        return {r[0]: r[1] for r in rows}

    def delivery_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0])

    def refusals(self) -> list[tuple[str, str, str]]:
        return list(self.db.execute("SELECT message_id, code, reason FROM refusals"))

    # ---- ShellSide -----------------------------------------------------------------------------

    def _ref(self, row: tuple[str, ...]) -> StationRef:
        return StationRef(row[0], row[1], row[2], row[3], row[4], row[5])

    def station_for_key(self, curve_public_key: str) -> StationRef | None:
        row = self.db.execute(
            "SELECT station_id, name, curve_public_key, signing_public_key, institution, room"
            " FROM stations WHERE curve_public_key = ? AND revoked = 0",
            (curve_public_key,),
        ).fetchone()
        return self._ref(row) if row else None

    def enroll(
        self,
        *,
        code: str,
        curve_public_key: str,
        signing_public_key: str,
        hostname: str,
        room: str,
    ) -> StationRef:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute(
                "SELECT institution, room, expires_at, used FROM codes WHERE code = ?", (code,)
            ).fetchone()
            if row is None or row[3] or row[2] < time.time():
                raise EnrolmentRefusedError("unknown, used or expired code")
            if self.db.execute(
                "SELECT 1 FROM stations WHERE curve_public_key = ?", (curve_public_key,)
            ).fetchone():
                raise EnrolmentRefusedError("this CURVE key is already enrolled")
            station_id = "st-" + uuid.uuid4().hex[:10]
            ref = StationRef(
                station_id,
                hostname or station_id,
                curve_public_key,
                signing_public_key,
                row[0],
                row[1] or room,
            )
            self.db.execute(
                "INSERT INTO stations (station_id, name, curve_public_key, signing_public_key,"
                " institution, room, hostname) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    station_id,
                    ref.name,
                    curve_public_key,
                    signing_public_key,
                    ref.institution,
                    ref.room,
                    hostname,
                ),
            )
            self.db.execute("UPDATE codes SET used = 1 WHERE code = ?", (code,))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return ref

    def heartbeat(self, station: StationRef, heartbeat: Heartbeat) -> None:
        self.db.execute(
            "UPDATE stations SET presence = ?, state = ?, session_id = ?, last_contact = ?"
            " WHERE station_id = ?",
            (
                "busy" if heartbeat.state == "busy" else "online",
                heartbeat.state,
                heartbeat.session_id,
                time.time(),
                station.station_id,
            ),
        )

    def station_offline(self, station: StationRef) -> None:
        self.db.execute(
            "UPDATE stations SET presence = 'offline' WHERE station_id = ?", (station.station_id,)
        )

    def sign_in(self, station: StationRef, *, username: str, secret: str, method: str) -> UserRef:
        user = self.db.execute(
            "SELECT display_name, password_sha FROM users WHERE username = ?", (username,)
        ).fetchone()
        if user is None:
            raise SignInRefusedError("unknown user")
        if method == "password":
            if _sha(secret) != user[1]:
                raise SignInRefusedError("wrong password")
        else:
            taken = self.db.execute(
                "UPDATE one_time_codes SET used = 1 WHERE code = ? AND username = ? AND used = 0",
                (secret, username),
            )
            if taken.rowcount != 1:
                raise SignInRefusedError("unknown or used one-time code")
        sign_in_id = uuid.uuid4().hex
        self.db.execute(
            "INSERT INTO sign_ins VALUES (?, ?, ?, ?)",
            (sign_in_id, station.station_id, username, time.time()),
        )
        return UserRef(username, user[0], sign_in_id)

    def pending_commands(self, station: StationRef) -> list[Command]:
        rows = self.db.execute(
            "SELECT body FROM commands WHERE station_id = ? AND started = 0 ORDER BY rowid",
            (station.station_id,),
        )
        sessions: list[Command] = [msgspec.msgpack.decode(r[0], type=StartSession) for r in rows]
        return sessions + self.stream_commands.get(station.station_id, [])

    def stream_status(self, station: StationRef, status: StreamStatus) -> None:
        self.stream_statuses.append((station.station_id, status))
        # answered: a start by publishing or failed, a stop by stopped
        answered = StopStream if status.state == "stopped" else StartStream
        waiting = self.stream_commands.get(station.station_id, [])
        self.stream_commands[station.station_id] = [
            c for c in waiting if not (isinstance(c, answered) and c.stream_id == status.stream_id)
        ]

    def session_started(self, station: StationRef, started: SessionStarted) -> None:
        self.db.execute(
            "UPDATE commands SET started = 1, error = ? WHERE session_id = ? AND station_id = ?",
            (started.error, started.session_id, station.station_id),
        )

    def telemetry(self, station: StationRef, telemetry: Telemetry) -> None:
        sid = station.station_id
        self.telemetry_seen[sid] = self.telemetry_seen.get(sid, 0) + 1
        self.last_telemetry[sid] = telemetry

    def case_path(self, case_hash: str) -> Path | None:
        return archive_in_store(self.case_store, case_hash) if self.case_store else None

    def accept_result(self, station: StationRef, *, message_id: str, result: Result) -> ResultAck:
        # the user must have signed in at this station (the shell's rule, mirrored here)
        if not self.db.execute(
            "SELECT 1 FROM sign_ins WHERE station_id = ? AND username = ?",
            (station.station_id, result.username),
        ).fetchone():
            self.db.execute(
                "INSERT INTO refusals VALUES (?, ?, 'not_signed_in', ?)",
                (message_id, station.station_id, result.username),
            )
            raise ResultRefusedError("not_signed_in", f"{result.username} has not signed in here")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            inserted = self.db.execute(
                "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message_id,
                    station.station_id,
                    result.username,
                    result.session_id,
                    result.scenario,
                    result.score,
                    json.dumps(result.metrics, sort_keys=True),
                    result.final_state_hash,
                    result.recording_hash,
                    len(result.recording),
                    time.time(),
                    result.recording,
                ),
            ).rowcount
            if inserted:
                self.db.execute("INSERT INTO effects VALUES (?, ?)", (message_id, time.time()))
            self.db.execute("INSERT INTO deliveries VALUES (?, ?)", (message_id, time.time()))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        if self.ack_delay_s:
            time.sleep(self.ack_delay_s)
        return ResultAck(result_id=message_id, duplicate=not inserted, status="pending")

    def refuse_result(
        self, station: StationRef, *, message_id: str, result: Result, code: str, reason: str
    ) -> None:
        self.db.execute(
            "INSERT INTO refusals VALUES (?, ?, ?, ?)",
            (message_id, station.station_id, code, reason),
        )
