"""The station's outbox: every result is committed here before anyone is told "saved".

One SQLite file in the station directory (WAL, ``synchronous=FULL``: a committed row survives
kill -9 and power loss). A row is the Result body as msgpack, under the message id it is sent
with every time, so the shell can deduplicate resends. A row leaves ``pending`` only on the
shell's answer: ``acked`` (ResultAck; the recording bytes are dropped, the rest kept as history)
or ``refused`` (an Error naming a terminal reason; the whole row is kept for the operator).
"""

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from bridge.messages import Result, new_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    message_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',  -- pending | acked | refused
    body BLOB,                              -- msgpack Result; NULL once acked
    attempts INTEGER NOT NULL DEFAULT 0,
    last_sent REAL NOT NULL DEFAULT 0,
    answer TEXT NOT NULL DEFAULT '',        -- shell status on ack, code: reason on refusal
    session_id TEXT NOT NULL DEFAULT ''
);
"""


@dataclass(frozen=True)
class Pending:
    message_id: str
    result: Result
    attempts: int
    last_sent: float


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # results name people and their scores: owner only (SQLite gives its -wal and -shm
        # files the database file's mode)
        path.touch(mode=0o600, exist_ok=True)
        os.chmod(path, 0o600)
        # one thread at a time; the runner may be built in another thread than its loop
        self.db = sqlite3.connect(
            str(path), isolation_level=None, timeout=30, check_same_thread=False
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def put(self, result: Result, *, message_id: str | None = None) -> str:
        """Commit ``result``; only after this returns may the user be told it is saved."""
        mid = message_id or new_id()
        self.db.execute(
            "INSERT INTO outbox (message_id, created_at, body, session_id) VALUES (?, ?, ?, ?)",
            (mid, time.time(), msgspec.msgpack.encode(result), result.session_id),
        )
        return mid

    def due(self, *, resend_after_s: float, limit: int = 8) -> list[Pending]:
        """Pending rows never sent or sent longer than ``resend_after_s`` ago, oldest first."""
        rows = self.db.execute(
            "SELECT message_id, body, attempts, last_sent FROM outbox"
            " WHERE state = 'pending' AND last_sent < ? ORDER BY created_at LIMIT ?",
            (time.time() - resend_after_s, limit),
        ).fetchall()
        return [Pending(r[0], msgspec.msgpack.decode(r[1], type=Result), r[2], r[3]) for r in rows]

    def mark_sent(self, message_id: str) -> None:
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_sent = ? WHERE message_id = ?",
            (time.time(), message_id),
        )

    def acked(self, message_id: str, status: str) -> bool:
        """Record the shell's ack; False when the row was not pending (a late second ack)."""
        done = self.db.execute(
            "UPDATE outbox SET state = 'acked', body = NULL, answer = ?"
            " WHERE message_id = ? AND state = 'pending'",
            (status, message_id),
        )
        return done.rowcount == 1

    def refused(self, message_id: str, code: str, reason: str) -> None:
        self.db.execute(
            "UPDATE outbox SET state = 'refused', answer = ?"
            " WHERE message_id = ? AND state = 'pending'",
            (f"{code}: {reason}", message_id),
        )

    def has_session(self, session_id: str) -> bool:
        """Whether a result of this session is here (pending, acked or refused)."""
        row = self.db.execute(
            "SELECT 1 FROM outbox WHERE session_id = ? LIMIT 1", (session_id,)
        ).fetchone()
        return row is not None

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        out = {"pending": 0, "acked": 0, "refused": 0}
        out.update({r[0]: r[1] for r in rows})
        return out

    def ids(self, state: str) -> list[str]:
        return [
            r[0]
            for r in self.db.execute(
                "SELECT message_id FROM outbox WHERE state = ? ORDER BY created_at", (state,)
            )
        ]
