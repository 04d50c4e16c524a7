"""The shell's half of the bridge: `DjangoShellSide` implements `bridge.shell_side.ShellSide`
over this app's services, for the endpoint process (`osteon bridge serve`).

The endpoint calls it from one plain thread (no event loop), one call at a time, so the ORM is
used directly; a connection that broke (the database restarted) is dropped before the next
call uses it, since this thread lives for days and no request cycle closes it.
Importing this module sets Django up when the process has not (the endpoint is not a Django
process otherwise).
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

import django
from django.apps import apps

if not apps.ready:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinical_shell.settings")
    django.setup()

from django.db import connection

from bridge.messages import (
    Heartbeat,
    Result,
    ResultAck,
    SessionStarted,
    StartSession,
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
from clinical_shell.planning import rehearsals
from clinical_shell.stations import live, selectors, services, streams
from clinical_shell.stations.models import Station, StationSession

# live samples passed on to browsers per session per second (stations send up to 60)
TELEMETRY_TO_BROWSER_HZ = 15.0
# ... and written to the session row (the pages' refresh reads it where live events cannot
# reach them: the bridge is its own process, and without Redis its events stay in it)
TELEMETRY_STORED_HZ = 1.0
# how often the database connection is checked for being alive
DB_CHECK_S = 5.0


@dataclass
class _LiveSession:
    pk: int
    published_at: float = 0.0
    stored_at: float = 0.0


def station_ref(station: Station) -> StationRef:
    return StationRef(
        station_id=str(station.pk),
        name=station.name,
        curve_public_key=station.curve_public_key,
        signing_public_key=station.signing_public_key,
        institution=station.institution.name,
        room=station.room,
    )


class DjangoShellSide:
    """`bridge.shell_side.ShellSide` backed by the clinical shell's database."""

    def __init__(self) -> None:
        # session uid -> its pk and when a sample was last passed on and stored
        self._telemetry: dict[str, _LiveSession] = {}
        self._db_checked_at = 0.0

    def _db_ready(self) -> None:
        """Drop a broken database connection (a restarted PostgreSQL) before using it; checked
        at most every DB_CHECK_S, so a call costs no extra round trip."""
        now = time.monotonic()
        if now - self._db_checked_at < DB_CHECK_S:
            return
        self._db_checked_at = now
        # no connection yet, or inside a transaction (a test): nothing to check
        if (
            connection.connection is not None
            and not connection.in_atomic_block
            and not connection.is_usable()
        ):
            connection.close()

    def endpoint_stopped(self) -> None:
        """The endpoint's loop ended (called on its thread): give this thread's database
        connection back. A stopped endpoint otherwise keeps its pool slot until the process
        ends, and a process that starts a few endpoints (tests, a restarted bridge) runs out."""
        connection.close()

    def _station(self, ref: StationRef) -> Station:
        return Station.objects.select_related("institution").get(pk=int(ref.station_id))

    def station_for_key(self, curve_public_key: str) -> StationRef | None:
        self._db_ready()
        station = selectors.station_for_key(curve_public_key)
        return station_ref(station) if station is not None else None

    def enroll(
        self,
        *,
        code: str,
        curve_public_key: str,
        signing_public_key: str,
        hostname: str,
        room: str,
    ) -> StationRef:
        self._db_ready()
        try:
            station = services.enroll_station(
                code=code,
                curve_public_key=curve_public_key,
                signing_public_key=signing_public_key,
                hostname=hostname,
            )
        except services.StationError as exc:
            raise EnrolmentRefusedError(exc.message) from None
        return station_ref(Station.objects.select_related("institution").get(pk=station.pk))

    def heartbeat(self, station: StationRef, heartbeat: Heartbeat) -> None:
        self._db_ready()
        services.record_contact(
            station_id=int(station.station_id),
            busy=heartbeat.state == "busy",
            session_uid=heartbeat.session_id,
            username=heartbeat.user,
        )

    def station_offline(self, station: StationRef) -> None:
        self._db_ready()
        services.mark_offline(station_id=int(station.station_id))

    def sign_in(self, station: StationRef, *, username: str, secret: str, method: str) -> UserRef:
        self._db_ready()
        try:
            sign_in = services.sign_in_at_station(
                station=self._station(station), username=username, secret=secret, method=method
            )
        except services.StationError as exc:
            raise SignInRefusedError(exc.message) from None
        return UserRef(
            username=sign_in.user.get_username(),
            display_name=live.display_name(sign_in.user),
            sign_in_id=sign_in.uid,
        )

    def pending_commands(self, station: StationRef) -> list[Command]:
        self._db_ready()
        commands: list[Command] = []
        for session in selectors.queued_sessions(int(station.station_id)):
            archive = selectors.archive_by_hash(session.case_hash)
            commands.append(
                StartSession(
                    session_id=session.uid,
                    case_hash=session.case_hash,
                    case_bytes=archive.size_bytes if archive is not None else 0,
                    scenario=session.scenario,
                    username=session.user.get_username(),
                    device=session.device or "scripted:expert",
                    plan=rehearsals.plan_spec_for_session(session.pk),
                )
            )
        # streams of the station's view asked for or being stopped in the shell
        commands.extend(streams.stream_commands(int(station.station_id)))
        return commands

    def stream_status(self, station: StationRef, status: StreamStatus) -> None:
        self._db_ready()
        streams.record_stream_status(station_id=int(station.station_id), status=status)

    def session_started(self, station: StationRef, started: SessionStarted) -> None:
        self._db_ready()
        services.confirm_session_started(
            station_id=int(station.station_id), session_uid=started.session_id, error=started.error
        )

    def telemetry(self, station: StationRef, telemetry: Telemetry) -> None:
        now = time.monotonic()
        known = self._telemetry.get(telemetry.session_id)
        if known is None:
            self._db_ready()
            pk = (
                StationSession.objects.filter(
                    station_id=int(station.station_id), uid=telemetry.session_id
                )
                .values_list("pk", flat=True)
                .first()
            )
            if pk is None:
                return  # a session the shell does not know yet (the result will create it)
            known = _LiveSession(pk)
            self._telemetry[telemetry.session_id] = known
        sample = {
            "tick": telemetry.tick,
            "state": telemetry.state,
            "tool_position_mm": list(telemetry.tool_position_mm),
            "force_n": list(telemetry.force_n),
            "metrics": dict(telemetry.metrics),
        }
        ended = telemetry.state == "ended"
        # the last sample of a session always goes on (it carries the final metrics)
        if ended or now - known.published_at >= 1.0 / TELEMETRY_TO_BROWSER_HZ:
            known.published_at = now
            live.publish_telemetry(known.pk, sample)
        if ended or now - known.stored_at >= 1.0 / TELEMETRY_STORED_HZ:
            known.stored_at = now
            services.record_live_metrics(session_id=known.pk, sample=sample)
        if ended:
            self._telemetry.pop(telemetry.session_id, None)

    def case_path(self, case_hash: str) -> Path | None:
        self._db_ready()
        archive = selectors.archive_by_hash(case_hash)
        if archive is None or not Path(archive.path).is_file():
            return None
        return Path(archive.path)

    def accept_result(self, station: StationRef, *, message_id: str, result: Result) -> ResultAck:
        self._db_ready()
        try:
            accepted = services.accept_result(
                station=self._station(station), message_id=message_id, result=result
            )
        except services.StationError as exc:
            raise ResultRefusedError(exc.code, exc.message) from None
        return ResultAck(
            result_id=message_id,
            duplicate=accepted.duplicate,
            status=accepted.result.verification,
        )

    def refuse_result(
        self, station: StationRef, *, message_id: str, result: Result, code: str, reason: str
    ) -> None:
        self._db_ready()
        row = Station.objects.filter(pk=int(station.station_id)).first()
        services.refuse_result(
            station=row, message_id=message_id, result=result, code=code, reason=reason
        )
