"""Every write about stations: enrolment, revocation, presence, sign-in, sessions and results.

Enrolment and sign-in codes are stored as hashes and shown once. A result is stored once per
message id (the station's outbox resends it until acknowledged), with its recording on disk by
sha256 before the row commits; its score counts only after `verify_result_by_replay` re-ran the
recording through the engine and reproduced the signed final-state hash bit for bit.
Refusals (bad signature, unknown user, ...) are recorded in their own transaction, so they
survive the refusal they describe.
"""

import hashlib
import hmac
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey
from zmq.utils import z85

from bridge.messages import Result
from bridge.signing import SignatureInvalidError, verify_result
from clinical_shell.accounts.services import check_sign_in
from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError
from clinical_shell.jobs import services as jobs
from clinical_shell.network.models import Institution
from clinical_shell.stations import case_archives, live, selectors
from clinical_shell.stations.models import (
    CaseArchive,
    EnrolmentCode,
    RefusedMessage,
    SessionResult,
    Station,
    StationSession,
    StationSignIn,
    StationSignInCode,
)
from clinical_shell.stations.reasons import Reason
from sim_core.atomic_write import write_bytes_atomic
from sim_core.scenarios import list_scenarios

ENROLMENT_TTL_DEFAULT = timedelta(hours=1)
ENROLMENT_TTL_MAX = timedelta(days=7)
SIGN_IN_CODE_TTL = timedelta(minutes=5)
# enrolment codes: 4 groups of 4 from an alphabet without look-alikes (80 bits)
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class StationError(DomainError):
    """A station rule said no; `code` is one of bridge.messages.ERROR_CODES when it reaches a
    station over the bridge; `reason`, when set, is the finer reason stored with a refusal."""

    def __init__(
        self, code: str, message: str, *, status: int | None = None, reason: Reason | None = None
    ) -> None:
        super().__init__(code, message, status=status)
        self.reason = reason


def _refused(bridge_code: str, reason_code: str, **params: Any) -> StationError:
    """A refusal of a station's message: the station hears the bilingual text (it has no
    Django); the shell stores the reason code and parameters beside it."""
    reason = Reason(reason_code, params)
    return StationError(bridge_code, reason.text, reason=reason)


def _digest(code: str) -> str:
    # keyed: a leaked table of short sign-in codes cannot be reversed without the secret key
    normalized = code.strip().upper().replace("-", "").replace(" ", "")
    return hmac.new(settings.SECRET_KEY.encode(), normalized.encode(), "sha256").hexdigest()


def _new_code(groups: int) -> str:
    return "-".join(
        "".join(secrets.choice(_CODE_ALPHABET) for _ in range(4)) for _ in range(groups)
    )


# ---- enrolment ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedCode:
    code: str  # the only time the code exists outside the caller's copy
    expires_at: datetime
    row_id: int


@transaction.atomic
def create_enrolment_code(
    *,
    actor: User | None,
    institution: Institution,
    room: str,
    ttl: timedelta = ENROLMENT_TTL_DEFAULT,
) -> IssuedCode:
    """A one-time code a new station at `institution`/`room` presents to enrol (the caller
    checked that `actor` administers the institution; None: the server console)."""
    room = room.strip()
    if not room:
        raise StationError("room_required", _("请填写房间"), status=422)
    if ttl <= timedelta(0) or ttl > ENROLMENT_TTL_MAX:
        raise StationError("bad_ttl", _("有效期须在 1 分钟到 7 天之间"), status=422)
    code = _new_code(4)
    row = EnrolmentCode.objects.create(
        code_sha256=_digest(code),
        institution=institution,
        room=room[:64],
        created_by=actor,
        expires_at=timezone.now() + ttl,
    )
    audit.record(
        actor=actor,
        action="station.enrolment_code",
        target=row,
        detail={
            "institution": institution.code,
            "room": row.room,
            "ttl_s": ttl.total_seconds(),
            "via": "console" if actor is None else "shell",
        },
    )
    return IssuedCode(code=code, expires_at=row.expires_at, row_id=row.pk)


def enroll_station(
    *, code: str, curve_public_key: str, signing_public_key: str, hostname: str
) -> Station:
    """Use an enrolment code once: record the station and its two public keys. Raises
    StationError("enrolment_refused") for an unknown, used or expired code or unusable keys;
    the refusal is audited either way."""
    outcome = _enroll(
        code=code,
        curve_public_key=curve_public_key,
        signing_public_key=signing_public_key,
        hostname=hostname,
    )
    if isinstance(outcome, StationError):
        raise outcome  # after the commit: the audited refusal stays
    return outcome


def _check_keys(curve_public_key: str, signing_public_key: str) -> str:
    """Why the keys are unusable ("" when fine)."""
    if len(curve_public_key) != 40:
        return "CURVE key must be 40 Z85 characters"
    try:
        if len(z85.decode(curve_public_key)) != 32:
            return "CURVE key is not 32 bytes"
    except (ValueError, KeyError, TypeError):
        return "CURVE key is not Z85"
    try:
        VerifyKey(bytes.fromhex(signing_public_key))
    except (ValueError, TypeError, CryptoError):
        return "signing key is not a hex Ed25519 verify key"
    return ""


@transaction.atomic
def _enroll(
    *, code: str, curve_public_key: str, signing_public_key: str, hostname: str
) -> Station | StationError:
    row = EnrolmentCode.objects.select_for_update().filter(code_sha256=_digest(code)).first()
    now = timezone.now()
    why = ""
    if row is None:
        why = "unknown_code"
    elif row.used_at is not None:
        why = "code_used"
    elif row.expires_at <= now:
        why = "code_expired"
    else:
        why = _check_keys(curve_public_key, signing_public_key) and "bad_keys"
        if not why and (
            Station.objects.filter(curve_public_key=curve_public_key).exists()
            or Station.objects.filter(signing_public_key=signing_public_key).exists()
        ):
            why = "keys_in_use"
    if why or row is None:
        audit.record(
            actor=None,
            action="station.enroll",
            success=False,
            target=row,
            detail={"why": why, "hostname": hostname[:100]},
        )
        messages = {
            "unknown_code": "注册码无效 / unknown enrolment code",
            "code_used": "注册码已使用 / the enrolment code was already used",
            "code_expired": "注册码已过期 / the enrolment code has expired",
            "bad_keys": "工作站密钥无效 / the station's keys are unusable",
            "keys_in_use": "该密钥已属于另一工作站 / these keys belong to another station",
        }
        return StationError("enrolment_refused", messages[why], status=403)
    station = Station.objects.create(
        name=(hostname.strip() or f"station-{row.room}")[:100],
        hostname=hostname[:255],
        institution_id=row.institution_id,
        room=row.room,
        curve_public_key=curve_public_key,
        signing_public_key=signing_public_key.lower(),
    )
    row.used_at = now
    row.used_by_station = station
    row.save(update_fields=["used_at", "used_by_station"])
    audit.record(
        actor=None,
        action="station.enroll",
        target=station,
        detail={"code_id": row.pk, "hostname": hostname[:100], "room": row.room},
    )
    transaction.on_commit(lambda: live.publish_station(station.pk))
    return station


@transaction.atomic
def revoke_station(*, actor: User, station: Station, reason: str) -> Station:
    """Revoke a station: ZAP and every message check ask `selectors.station_for_key`, which no
    longer finds it, so the bridge cuts it off within a second."""
    reason = reason.strip()
    if not reason:
        raise StationError("reason_required", _("请填写吊销原因"), status=422)
    station = Station.objects.select_for_update().get(pk=station.pk)
    if station.is_revoked:
        raise StationError("already_revoked", _("该工作站已被吊销"))
    station.status = Station.Status.REVOKED
    station.revoked_at = timezone.now()
    station.revoked_by = actor
    station.revoke_reason = reason[:500]
    station.presence = Station.Presence.OFFLINE
    station.save(update_fields=["status", "revoked_at", "revoked_by", "revoke_reason", "presence"])
    audit.record(actor=actor, action="station.revoke", target=station, reason=reason)
    transaction.on_commit(lambda: live.publish_station(station.pk))
    # its streams end now, and the relay stops taking its pictures: cut off from the bridge, it
    # could still reach the relay until its publish token ran out
    from clinical_shell.stations.streams import fail_streams_of_offline_stations

    fail_streams_of_offline_stations(station_id=station.pk)
    return station


# ---- presence ----------------------------------------------------------------------------------


def record_contact(
    *, station_id: int, busy: bool, session_uid: str = "", username: str = ""
) -> str:
    """A heartbeat (or hello) from the station: note the contact and its state; publish the
    presence when it changed. Returns the presence. Not audited (once a second per station)."""
    now = timezone.now()
    with transaction.atomic():
        station = Station.objects.select_for_update().filter(pk=station_id).first()
        if station is None or station.is_revoked:
            return Station.Presence.OFFLINE
        fields = ["last_contact_at"]
        station.last_contact_at = now
        session = None
        if busy and session_uid:
            session = StationSession.objects.filter(station=station, uid=session_uid).first()
        if busy and session is not None and session.state == StationSession.State.QUEUED:
            # the station runs it; a lost session_started must not leave it queued forever
            session.state = StationSession.State.RUNNING
            session.started_at = session.started_at or now
            session.save(update_fields=["state", "started_at"])
        current_id = session.pk if session is not None else None
        if station.current_session_id != current_id:
            station.current_session_id = current_id
            fields.append("current_session")
        user_id = _user_id(username) if username else None
        if station.signed_in_user_id != user_id:
            station.signed_in_user_id = user_id
            fields.append("signed_in_user")
        presence = Station.Presence.BUSY if busy else Station.Presence.ONLINE
        changed = station.presence != presence or len(fields) > 1
        if station.presence != presence:
            station.presence = presence
            fields.append("presence")
        station.save(update_fields=fields)
    if changed:
        live.publish_station(station.pk)
    return presence


def _user_id(username: str) -> int | None:
    return (
        get_user_model()
        .objects.filter(username=username, is_active=True)
        .values_list("pk", flat=True)
        .first()
    )


def mark_offline(*, station_id: int) -> None:
    """The bridge has heard nothing from the station for OSTEON_STATION_OFFLINE_AFTER_S."""
    updated = Station.objects.filter(pk=station_id).exclude(presence=Station.Presence.OFFLINE)
    if updated.update(presence=Station.Presence.OFFLINE):
        live.publish_station(station_id)
    # nothing publishes its view any more
    from clinical_shell.stations.streams import fail_streams_of_offline_stations

    fail_streams_of_offline_stations(station_id=station_id)


def session_grace_s() -> float:
    return float(settings.OSTEON_STATION_SESSION_GRACE_S)


def abort_lost_sessions(*, now: datetime | None = None) -> list[int]:
    """Abort every running session whose station has had no contact for longer than the grace
    period (OSTEON_STATION_SESSION_GRACE_S): the station died, or lost its network, mid-run.
    Each is marked aborted with the reason `station_lost`, audited and published. Returns the
    aborted session ids. Runs every minute from the jobs worker (`tasks.abort_lost_sessions`).

    A result that still comes later (the station's outbox resends it once it is back) is stored
    and verified all the same and marked late (`_session_for_result`)."""
    now = now or timezone.now()
    grace_s = session_grace_s()
    silent_since = now - timedelta(seconds=grace_s)
    # a station never heard from counts from when the session started (or was queued)
    candidates = list(
        StationSession.objects.filter(state=StationSession.State.RUNNING)
        .filter(
            Q(station__last_contact_at__lt=silent_since)
            | Q(station__last_contact_at__isnull=True, created_at__lt=silent_since)
        )
        .values_list("pk", flat=True)
    )
    return [pk for pk in candidates if _abort_lost(pk, silent_since, grace_s, now)]


@transaction.atomic
def _abort_lost(session_id: int, silent_since: datetime, grace_s: float, now: datetime) -> bool:
    session = (
        StationSession.objects.select_for_update().select_related("station").get(pk=session_id)
    )
    station = session.station
    last_contact = station.last_contact_at
    # checked again under the lock: a heartbeat or the result may have come meanwhile
    if session.state != StationSession.State.RUNNING or (
        last_contact is not None and last_contact >= silent_since
    ):
        return False
    reason = Reason(
        "station_lost",
        {
            "grace_s": round(grace_s),
            "last_contact_at": last_contact.isoformat() if last_contact else None,
        },
    )
    session.state = StationSession.State.ABORTED
    session.abort_reason = reason.text[:500]
    session.abort_code = reason.code
    session.abort_params = reason.params
    session.ended_at = now
    session.save(update_fields=["state", "abort_reason", "abort_code", "abort_params", "ended_at"])
    Station.objects.filter(pk=station.pk, current_session=session).update(current_session=None)
    audit.record(
        actor=None,
        action="station_session.aborted",
        success=False,
        target=session,
        reason=session.abort_reason,
        detail={"code": reason.code, "station": station.pk, **reason.params},
    )
    transaction.on_commit(lambda: live.publish_session(session_id))
    transaction.on_commit(lambda: live.publish_station(station.pk))
    return True


# ---- people at a station -----------------------------------------------------------------------


@transaction.atomic
def issue_sign_in_code(*, actor: User) -> IssuedCode:
    """A short-lived single-use code `actor` types at a station instead of a password."""
    code = "".join(secrets.choice("0123456789") for _ in range(8))
    row = StationSignInCode.objects.create(
        user=actor, code_sha256=_digest(code), expires_at=timezone.now() + SIGN_IN_CODE_TTL
    )
    audit.record(actor=actor, action="station.sign_in_code", target=row)
    return IssuedCode(code=f"{code[:4]}-{code[4:]}", expires_at=row.expires_at, row_id=row.pk)


def sign_in_at_station(
    *, station: Station, username: str, secret: str, method: str
) -> StationSignIn:
    """Check a password (the shell's own sign-in rule: lockout, audit) or a one-time code and
    record the sign-in. Raises StationError("sign_in_refused")."""
    if method == StationSignIn.Method.PASSWORD:
        try:
            user = check_sign_in(
                username=username,
                password=secret,
                client=f"station:{station.pk}",
                channel="station",
            )
        except DomainError as exc:
            raise StationError("sign_in_refused", exc.message, status=401) from None
    elif method == StationSignIn.Method.ONE_TIME_CODE:
        outcome = _use_sign_in_code(station=station, username=username, code=secret)
        if isinstance(outcome, StationError):
            raise outcome
        user = outcome
    else:
        raise StationError("sign_in_refused", f"未知的登录方式 / unknown method {method!r}")
    return _record_sign_in(station=station, user=user, method=method)


@transaction.atomic
def _use_sign_in_code(*, station: Station, username: str, code: str) -> User | StationError:
    row = (
        StationSignInCode.objects.select_for_update()
        .select_related("user")
        .filter(code_sha256=_digest(code), user__username=username)
        .first()
    )
    now = timezone.now()
    why = ""
    if row is None:
        why = "unknown_code"
    elif row.used_at is not None:
        why = "code_used"
    elif row.expires_at <= now:
        why = "code_expired"
    elif not row.user.is_active:
        why = "inactive_user"
    if why or row is None:
        audit.record(
            actor=None,
            action="station.sign_in",
            success=False,
            target=station,
            username=username,
            detail={"why": why, "method": "one_time_code"},
        )
        return StationError(
            "sign_in_refused",
            "一次性验证码无效、已使用或已过期 / the one-time code is wrong, used or expired",
            status=401,
        )
    row.used_at = now
    row.used_at_station = station
    row.save(update_fields=["used_at", "used_at_station"])
    return row.user


@transaction.atomic
def _record_sign_in(*, station: Station, user: User, method: str) -> StationSignIn:
    sign_in = StationSignIn.objects.create(
        uid=uuid.uuid4().hex, station=station, user=user, method=method
    )
    Station.objects.filter(pk=station.pk).update(signed_in_user=user)
    audit.record(actor=user, action="station.sign_in", target=station, detail={"method": method})
    transaction.on_commit(lambda: live.publish_station(station.pk))
    return sign_in


# ---- sessions ----------------------------------------------------------------------------------


@transaction.atomic
def start_session_from_shell(
    *,
    actor: User,
    station: Station,
    case_content_hash: str,
    scenario: str,
    user: User,
    device: str = "scripted:expert",
    rehearsal: bool = False,
) -> StationSession:
    """Queue "run `scenario` on the case at `station` for `user`": the bridge hands the station a
    StartSession until it confirms (the caller checked that `actor` may do this). A scenario
    only a plan's rehearsal runs is accepted only with ``rehearsal`` (`planning.rehearsals`)."""
    station = Station.objects.select_for_update().get(pk=station.pk)
    if station.is_revoked:
        raise StationError("revoked", _("该工作站已被吊销"))
    if scenario not in list_scenarios(rehearsal=rehearsal):
        raise StationError(
            "unknown_scenario", _("未知场景：%(name)s") % {"name": scenario}, status=422
        )
    # busy: a session waits for it, or it says it runs one (a session left "running" by a
    # station that died mid-run does not block it once it reports idle again)
    waiting = StationSession.objects.filter(station=station, state=StationSession.State.QUEUED)
    if waiting.exists() or selectors.presence_of(station) == Station.Presence.BUSY:
        raise StationError("station_busy", _("该工作站正在训练中，请稍后再试"))
    archive = case_archive_for(case_content_hash)
    session = StationSession.objects.create(
        station=station,
        user=user,
        case_hash=archive.archive_hash,
        case_content_hash=archive.content_hash,
        scenario=scenario,
        device=device[:64],
        origin=StationSession.Origin.SHELL,
        started_by=actor,
        uid=uuid.uuid4().hex,
    )
    audit.record(
        actor=actor,
        action="station_session.start",
        target=session,
        detail={
            "station": station.pk,
            "user": user.get_username(),
            "scenario": scenario,
            "case": archive.content_hash,
        },
    )
    transaction.on_commit(lambda: live.publish_session(session.pk))
    return session


def case_archive_for(case_content_hash: str) -> CaseArchive:
    """The packed archive of the case bundle with this content hash (packed on first use)."""
    try:
        return case_archives.archive_for_content_hash(case_content_hash)
    except case_archives.CaseNotFoundError:
        raise StationError(
            "unknown_case",
            _("未找到哈希为 %(hash)s 的已构建病例") % {"hash": case_content_hash},
            status=404,
        ) from None


@transaction.atomic
def confirm_session_started(*, station_id: int, session_uid: str, error: str = "") -> None:
    """The station began the shell-started session (or could not: `error`)."""
    session = (
        StationSession.objects.select_for_update()
        .filter(station_id=station_id, uid=session_uid)
        .first()
    )
    if session is None or session.state not in (
        StationSession.State.QUEUED,
        StationSession.State.RUNNING,
    ):
        return  # a repeated confirmation, or one for a session already over
    now = timezone.now()
    if error:
        # the station's own words (bilingual, from the station) are the parameter
        session.state = StationSession.State.ABORTED
        session.abort_reason = error[:500]
        session.abort_code = "station_refused"
        session.abort_params = {"error": error[:500]}
        session.ended_at = now
        session.save(
            update_fields=["state", "abort_reason", "abort_code", "abort_params", "ended_at"]
        )
        Station.objects.filter(pk=station_id, current_session=session).update(current_session=None)
    else:
        session.state = StationSession.State.RUNNING
        session.started_at = session.started_at or now
        session.save(update_fields=["state", "started_at"])
        Station.objects.filter(pk=station_id).update(
            current_session=session, presence=Station.Presence.BUSY
        )
    audit.record(
        actor=None,
        action="station_session.started" if not error else "station_session.aborted",
        target=session,
        detail={"error": error[:500]} if error else {},
    )
    transaction.on_commit(lambda: live.publish_session(session.pk))
    transaction.on_commit(lambda: live.publish_station(station_id))


def record_live_metrics(*, session_id: int, sample: dict[str, Any]) -> None:
    """Keep the latest live sample of a running session (about once a second) for its page."""
    StationSession.objects.filter(
        pk=session_id, state__in=[StationSession.State.QUEUED, StationSession.State.RUNNING]
    ).update(last_metrics=sample)


# ---- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    result: SessionResult
    duplicate: bool


def accept_result(*, station: Station, message_id: str, result: Result) -> Accepted:
    """Store a signed session result once per `message_id` and queue its verification by replay.

    Checks again what the endpoint checks (the station is enrolled, the result names it, the
    Ed25519 signature verifies with its registered key, the recording matches its hash), then
    that the user is a real shell user and, for a shell-started session, the session's user.
    Raises StationError with a bridge error code; the refusal is recorded (RefusedMessage and
    audit) before it is raised.
    """
    try:
        return _store_result(station=station, message_id=message_id, result=result)
    except StationError as exc:
        refuse_result(
            station=station,
            message_id=message_id,
            result=result,
            code=exc.code,
            reason=exc.message,
            reason_code=exc.reason.code if exc.reason is not None else exc.code,
            reason_params=exc.reason.params if exc.reason is not None else None,
        )
        raise


def _check_result(station: Station, result: Result) -> None:
    if station.is_revoked:
        raise _refused("revoked", "revoked")
    if result.station_id != str(station.pk):
        raise _refused(
            "wrong_station", "wrong_station", claimed=result.station_id[:40], sender=station.pk
        )
    try:
        verify_result(result, station.signing_public_key)
    except SignatureInvalidError:
        raise _refused("bad_signature", "bad_signature") from None
    digest = "sha256:" + hashlib.sha256(result.recording).hexdigest()
    if digest != result.recording_hash:
        raise _refused("bad_recording", "bad_recording")


def _store_result(*, station: Station, message_id: str, result: Result) -> Accepted:
    # a resend of a stored result: acknowledge again, change nothing
    existing = SessionResult.objects.filter(message_id=message_id).first()
    if existing is not None and existing.station_id == station.pk:
        return Accepted(existing, duplicate=True)
    _check_result(station, result)
    if existing is not None:
        raise _refused("replayed", "message_id_used")
    user = get_user_model().objects.filter(username=result.username, is_active=True).first()
    if user is None:
        raise _refused("not_signed_in", "unknown_user", username=result.username[:150])
    # the recording goes to disk first: a committed row always has its file
    path = store_recording(result.recording, result.recording_hash)
    try:
        with transaction.atomic():
            session, late = _session_for_result(station, user, result)
            row = SessionResult.objects.create(
                message_id=message_id,
                session=session,
                station=station,
                user=user,
                case_hash=result.case_hash,
                scenario=result.scenario,
                recording_sha256=result.recording_hash.removeprefix("sha256:"),
                recording_path=str(path),
                metrics=dict(result.metrics),
                score=result.score,
                passed=result.passed,
                final_state_hash=result.final_state_hash,
                plan_digest=result.plan_digest,
                signature=result.signature,
                ended_at=_utc(result.ended_at),
                arrived_late=late,
            )
            audit.record(
                actor=user,
                action="session_result.accept",
                target=row,
                detail={
                    "station": station.pk,
                    "message_id": message_id,
                    "scenario": result.scenario,
                    "score": result.score,
                    "arrived_late": late,
                },
            )
            queue_verification(row)
            transaction.on_commit(lambda: live.publish_session(session.pk))
            transaction.on_commit(lambda: live.publish_station(station.pk))
    except IntegrityError:
        # the same message id committed by another process between our check and insert
        raced = SessionResult.objects.filter(message_id=message_id, station=station).first()
        if raced is None:
            # not that: the station's session id is already another station's
            raise _refused("replayed", "session_id_used") from None
        return Accepted(raced, duplicate=True)
    return Accepted(row, duplicate=False)


def _utc(seconds: float) -> datetime | None:
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def _session_for_result(
    station: Station, user: User, result: Result
) -> tuple[StationSession, bool]:
    """The session the result ends: the shell-started one (same user required), or a session
    the station started under a sign-in of this user there (recorded now); and whether the
    result came late (its session had been aborted, see `abort_lost_sessions`).

    A late result is stored, acknowledged and verified like any other (the station signed it
    and the replay proves it: nothing acknowledged is lost): its session becomes finished, keeps
    its abort code and reason, and the result is marked `arrived_late` for the pages."""
    session = (
        StationSession.objects.select_for_update()
        .filter(station=station, uid=result.session_id)
        .first()
    )
    if session is not None and session.user_id != user.pk:
        raise _refused("not_signed_in", "session_user_mismatch")
    # a session the shell started names its case and scenario: a result for another (easier)
    # case or scenario must not end it, whatever its signature says
    if session is not None and (
        session.scenario != result.scenario
        or (session.case_hash and session.case_hash != result.case_hash)
    ):
        raise _refused(
            "session_mismatch",
            "session_mismatch",
            scenario=result.scenario[:80],
            expected=session.scenario,
        )
    # a rehearsal's result names the plan it ran (signed): it must be the session's plan, and
    # a session without a plan takes no result that claims one
    expected_plan = _plan_digest_of(session.pk if session is not None else None)
    if result.plan_digest != expected_plan:
        raise _refused(
            "session_mismatch",
            "plan_mismatch",
            signed=result.plan_digest[:80] or "-",
            expected=expected_plan or "-",
        )
    if session is not None and hasattr(session, "result"):
        raise _refused("replayed", "session_has_result")
    now = timezone.now()
    if session is None:
        sign_in = (
            StationSignIn.objects.filter(station=station, user=user)
            .order_by("-signed_in_at")
            .first()
        )
        if sign_in is None:
            raise _refused("not_signed_in", "never_signed_in")
        archive = selectors.archive_by_hash(result.case_hash)
        session = StationSession.objects.create(
            station=station,
            user=user,
            case_hash=result.case_hash,
            case_content_hash=archive.content_hash if archive is not None else "",
            scenario=result.scenario,
            origin=StationSession.Origin.STATION,
            uid=result.session_id[:64],
            sign_in=sign_in,
            state=StationSession.State.FINISHED,
            ended_at=now,
        )
        late = False
    else:
        late = session.state == StationSession.State.ABORTED
        session.state = StationSession.State.FINISHED
        session.ended_at = now
        session.save(update_fields=["state", "ended_at"])
    Station.objects.filter(pk=station.pk, current_session=session).update(current_session=None)
    return session, late


def _plan_digest_of(session_id: int | None) -> str:
    # the planning app keeps the plans sent with rehearsals (it imports this module)
    from clinical_shell.planning import rehearsals

    return rehearsals.plan_digest_for_session(session_id)


def store_recording(data: bytes, recording_hash: str) -> Path:
    """Write the recording under the recording root by its sha256 (temporary file, fsync,
    rename): the same recording is stored once."""
    digest = recording_hash.removeprefix("sha256:")
    root = Path(settings.OSTEON_STATION_RECORDING_ROOT)
    path = root / digest[:2] / f"{digest}.npz"
    if path.is_file() and path.stat().st_size == len(data):
        return path
    write_bytes_atomic(path, data)
    return path


@transaction.atomic
def refuse_result(
    *,
    station: Station | None,
    message_id: str,
    result: Result,
    code: str,
    reason: str,
    reason_code: str = "",
    reason_params: dict[str, Any] | None = None,
) -> RefusedMessage:
    """Record a result that was refused (by the endpoint or by `accept_result`): `code` is
    what the station was told, `reason_code` (default: `code`) and `reason_params` what the
    pages render in the reader's language (`reasons.describe`), `reason` the audit text."""
    row = RefusedMessage.objects.create(
        station=station,
        curve_public_key=station.curve_public_key if station is not None else "",
        kind="result",
        message_id=message_id[:64],
        code=code[:64],
        reason=reason,
        reason_code=(reason_code or code)[:32],
        reason_params=reason_params or {},
        claimed={
            "station_id": result.station_id[:40],
            "username": result.username[:150],
            "session_id": result.session_id[:64],
            "scenario": result.scenario[:64],
            "score": result.score if math.isfinite(result.score) else None,
            "case_hash": result.case_hash[:80],
        },
    )
    audit.record(
        actor=None,
        action="session_result.refuse",
        success=False,
        target=station,
        reason=reason,
        detail={"code": code, "reason_code": row.reason_code, "message_id": message_id[:64]},
    )
    return row


def queue_verification(result: SessionResult) -> None:
    """Queue the replay of `result` as a background job (once per result; the worker is woken
    after the caller's transaction commits)."""
    from clinical_shell.stations.tasks import VERIFY_RESULT

    jobs.enqueue(
        actor=None,
        kind=VERIFY_RESULT,
        subject=f"session_result.{result.pk}",
        payload={"result_id": result.pk},
        idempotency_key=f"{VERIFY_RESULT}.{result.pk}",
    )


# ---- verification by replay --------------------------------------------------------------------


def flat_metrics(result_dict: dict[str, Any]) -> dict[str, float]:
    """{metric name: value} of a sim_core result dict, as a station signs them (a metric with
    no finite value, e.g. a distance never measured, is left out)."""
    return {
        name: float(m["value"])
        for name, m in result_dict["metrics"].items()
        if m["value"] is not None and math.isfinite(float(m["value"]))
    }


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _scenario_instrument(scenario: str) -> str | None:
    from sim_core.scenarios import ScenarioError, load_scenario

    try:
        return load_scenario(scenario).instrument
    except ScenarioError:
        return None


def verify_result_by_replay(*, result_id: int) -> SessionResult:
    """Re-run the stored recording through the engine on the case it names; the score counts
    (verified) only when the replay reproduces the signed final-state hash bit for bit and the
    signed metrics and score; otherwise it is rejected with why. Runs in a background job."""
    from clinical_shell.planning import rehearsals
    from sim_core.rehearsal import model_for_rehearsal_recording
    from sim_core.replay import RecordingError, model_for_recording, play, read_recording

    result = SessionResult.objects.get(pk=result_id)
    if result.verification != SessionResult.Verification.PENDING:
        return result
    # a rehearsal ran on its plan's path: the replay rebuilds the model on the same one
    trajectory = rehearsals.trajectory_for_session(result.session_id)
    replayed_dict: dict[str, Any] | None = None
    replay: dict[str, Any] = {}
    why: Reason | None = None
    archive = selectors.archive_by_hash(result.case_hash)
    case_path = Path(archive.bundle_path) if archive is not None else None
    if case_path is None or not (case_path / "case.json").is_file():
        why = Reason("case_missing", {"case": result.case_hash})
    else:
        try:
            rec = read_recording(Path(result.recording_path))
            scenario_instrument = _scenario_instrument(rec.meta["scenario"])
            if rec.meta["scenario"] != result.scenario:
                why = Reason(
                    "recording_scenario",
                    {"recorded": str(rec.meta["scenario"])[:80], "expected": result.scenario},
                )
            elif rec.meta.get("instrument") != scenario_instrument:
                # the engine lets a recording name any instrument; a score counts only for the
                # instrument its scenario prescribes (a thinner drill makes a pedicle easier)
                why = Reason(
                    "wrong_instrument",
                    {
                        "used": str(rec.meta.get("instrument"))[:80],
                        "prescribed": str(scenario_instrument),
                    },
                )
            else:
                if trajectory is None:
                    model = model_for_recording(rec, case_path=case_path)
                else:
                    model = model_for_rehearsal_recording(rec, case_path=case_path, **trajectory)
                _, replayed = play(model, rec.inputs, rec.shots)
                replayed_dict = replayed.as_dict()
                replay = {
                    "state_hash": replayed.state_hash,
                    "ticks": replayed.ticks,
                    "wall_s": round(replayed.wall_s, 3),
                    "score": replayed.sheet.score,
                }
                why = _replay_mismatch(result, replayed_dict, replayed.state_hash)
        except RecordingError as exc:
            # the message names the file; where the shell keeps recordings is not for the page
            detail = str(exc).replace(f"{result.recording_path}: ", "")
            why = Reason("unreplayable", {"detail": detail[:300]})
    recorded = _record_verification(result_id=result.pk, why=why, replay=replay)
    if why is None and replayed_dict is not None and trajectory is not None:
        # the verified rehearsal's deviation from its plan, for the plan page
        rehearsals.record_deviation(session_id=result.session_id, replayed=replayed_dict)
    return recorded


def _replay_mismatch(
    result: SessionResult, replayed: dict[str, Any], state_hash: str
) -> Reason | None:
    if state_hash != result.final_state_hash:
        return Reason("state_mismatch", {"replayed": state_hash, "signed": result.final_state_hash})
    metrics = flat_metrics(replayed)
    signed = {k: float(v) for k, v in result.metrics.items()}
    if metrics.keys() != signed.keys() or not all(_same(metrics[k], signed[k]) for k in metrics):
        differ = sorted(
            k
            for k in metrics.keys() | signed.keys()
            if k not in metrics or k not in signed or not _same(metrics[k], signed[k])
        )
        return Reason("metrics_mismatch", {"metrics": differ})
    if (
        not _same(float(replayed["score"]), result.score)
        or bool(replayed["passed"]) != result.passed
    ):
        return Reason(
            "score_mismatch", {"replayed": float(replayed["score"]), "signed": result.score}
        )
    return None


@transaction.atomic
def _record_verification(
    *, result_id: int, why: Reason | None, replay: dict[str, Any]
) -> SessionResult:
    result = SessionResult.objects.select_for_update().get(pk=result_id)
    if result.verification != SessionResult.Verification.PENDING:
        return result  # verified twice (a retried job): the first outcome stands
    result.verification = (
        SessionResult.Verification.REJECTED if why else SessionResult.Verification.VERIFIED
    )
    result.rejection_reason = why.text if why is not None else ""
    result.rejection_code = why.code if why is not None else ""
    result.rejection_params = why.params if why is not None else {}
    result.verified_at = timezone.now()
    result.replay = replay
    result.save(
        update_fields=[
            "verification",
            "rejection_reason",
            "rejection_code",
            "rejection_params",
            "verified_at",
            "replay",
        ]
    )
    audit.record(
        actor=None,
        action="session_result.verify",
        success=why is None,
        target=result,
        reason=result.rejection_reason,
        detail={
            "verification": result.verification,
            "rejection_code": result.rejection_code,
            **replay,
        },
    )
    session_id = result.session_id
    if session_id is not None:
        transaction.on_commit(lambda: live.publish_session(session_id))
    return result
