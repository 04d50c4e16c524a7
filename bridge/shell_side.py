"""What the bridge endpoint asks of the shell: the ``ShellSide`` protocol.

The endpoint (``bridge.endpoint``) owns the sockets, the keys, the message checks and the
signature check; everything that is the shell's business (which stations exist, who may sign
in, where results go, which commands are waiting) goes through one object implementing
``ShellSide``. The clinical shell's implementation is
``clinical_shell.stations.bridge_side.DjangoShellSide`` (Django services underneath); the
bridge's own tests and benchmark use ``bridge.local_side.LocalShellSide`` (SQLite, no Django).

Contract, for every implementation:

- The endpoint calls a ShellSide from ONE thread (its loop), one call at a time; a call should
  return in milliseconds (the endpoint answers nobody while it runs). Long work (replay
  verification of a result) is queued, never done inside a call.
- Keys travel as text: CURVE public keys in Z85 (40 characters), Ed25519 verify keys in hex
  (64 characters).
- Before ``accept_result`` is called, the endpoint has already checked: the sender's CURVE key
  belongs to ``station``, ``result.station_id == station.station_id``, the Ed25519 signature
  verifies with ``station.signing_public_key`` over ``bridge.signing.signed_bytes(result)``,
  and sha256(``result.recording``) equals ``result.recording_hash``. A result failing any of
  these goes to ``refuse_result`` instead, with the code and reason (so it can be recorded).
  Replay verification (re-running the recording, comparing the final-state hash) is the
  shell's, queued by ``accept_result``.
- ``accept_result`` is idempotent by ``message_id``: the station resends a result until it is
  acknowledged, with the same id each time; the second and later calls store nothing and return
  an ack with ``duplicate=True``. It must be durable when it returns (committed): the station
  deletes the result from its outbox on the ack.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

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

# what the shell asks of a station: run a session, start or stop streaming its view
Command = StartSession | StartStream | StopStream


class EnrolmentRefusedError(Exception):
    """The enrolment code is unknown, used or expired, or the presented keys are unusable."""


class SignInRefusedError(Exception):
    """Wrong user name, password or one-time code, or an account that may not sign in."""


class ResultRefusedError(Exception):
    """``accept_result`` refuses a result for a shell reason (e.g. ``not_signed_in``: the user
    has no sign-in at this station). ``code`` is one of ``bridge.messages.ERROR_CODES``; the
    shell has recorded the refusal itself; the station keeps the result but stops resending."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class StationRef:
    """An enrolled, not revoked station as the endpoint needs it."""

    station_id: str
    name: str
    curve_public_key: str  # Z85
    signing_public_key: str  # Ed25519 verify key, hex
    institution: str = ""
    room: str = ""


@dataclass(frozen=True)
class UserRef:
    """A person signed in at a station."""

    username: str
    display_name: str
    sign_in_id: str


class ShellSide(Protocol):
    """The shell's half of the bridge (see the module docstring for the contract)."""

    def station_for_key(self, curve_public_key: str) -> StationRef | None:
        """The station enrolled with this CURVE key; None when unknown or revoked.

        Asked by ZAP at every connection and again (cached for at most a second) for every
        message and every second for each connected station: revocation cuts within seconds."""
        ...

    def enroll(
        self,
        *,
        code: str,
        curve_public_key: str,
        signing_public_key: str,
        hostname: str,
        room: str,
    ) -> StationRef:
        """Use the one-time enrolment ``code``: record the station with its two keys (its
        institution and room come from the code; ``room`` is the station's own suggestion,
        used only when the code names none). Raises EnrolmentRefusedError."""
        ...

    def heartbeat(self, station: StationRef, heartbeat: Heartbeat) -> None:
        """The station is alive (Hello and every Heartbeat): state, session, user, outbox."""
        ...

    def station_offline(self, station: StationRef) -> None:
        """No message from the station for ``OFFLINE_AFTER_S``."""
        ...

    def sign_in(self, station: StationRef, *, username: str, secret: str, method: str) -> UserRef:
        """Check the person's password (``method == "password"``) or one-time code
        (``"one_time_code"``) and record the sign-in at this station. Raises SignInRefusedError."""
        ...

    def pending_commands(self, station: StationRef) -> list[Command]:
        """Sessions started from the shell for this station and not yet confirmed by a
        ``session_started`` call, and stream starts and stops not yet answered by a
        ``stream_status``. The endpoint pushes each to the station and pushes it again after a
        while until confirmed; the station ignores a session or stream id it already has."""
        ...

    def stream_status(self, station: StationRef, status: StreamStatus) -> None:
        """What became of a stream command: publishing, stopped, or failed (``error``)."""
        ...

    def session_started(self, station: StationRef, started: SessionStarted) -> None:
        """The station began the session (or refused it: ``started.error``)."""
        ...

    def telemetry(self, station: StationRef, telemetry: Telemetry) -> None:
        """One live telemetry sample (up to 60 Hz per station): pass it on, do not store it."""
        ...

    def case_path(self, case_hash: str) -> Path | None:
        """The case archive whose sha256 is ``case_hash`` ("sha256:<hex>"), or None.

        Archives are made by ``bridge.case_archive.pack_case`` (a deterministic tar of a
        case bundle directory)."""
        ...

    def accept_result(self, station: StationRef, *, message_id: str, result: Result) -> ResultAck:
        """Store a checked result and its recording durably, once per ``message_id``, and
        queue its replay verification. Returns the ack to send. Raises ResultRefusedError."""
        ...

    def refuse_result(
        self, station: StationRef, *, message_id: str, result: Result, code: str, reason: str
    ) -> None:
        """Record a result the endpoint refused (bad signature, wrong station, bad recording
        hash, user not signed in) so the refusal can be seen in the shell."""
        ...
