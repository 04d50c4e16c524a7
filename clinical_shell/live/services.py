"""Every write of the live app: sessions, the consent they need, viewers joining, the relay's
recordings attached and read. All audited."""

import json
import logging
import math
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, NotFoundError, PermissionDeniedError
from clinical_shell.live.models import LiveRecording, LiveSession
from clinical_shell.live.relay import relay_secret, room_url
from clinical_shell.records.models import Patient
from streaming.tokens import issue_token

# a token only bridges "the page asked" and "the page connected": the page asks again for
# each connection (quality change, reconnect) [s]
VIEWER_TOKEN_TTL_S = 60
# what the relay's recorder names a finished file (streaming.recorder.recording_name)
RECORDING_NAME = re.compile(r"(?P<stream>[A-Za-z0-9_-]{1,64})-(?P<at>\d{8}T\d{6}\.\d{3}Z)\.mp4")
# ffprobe reads only the index of a faststart MP4: seconds even for hours of video [s]
PROBE_TIMEOUT_S = 30

log = logging.getLogger("clinical_shell.live")


@dataclass(frozen=True)
class LiveSessionIn:
    title: str
    room: str
    streams: list[str]
    invitees: list[User] = field(default_factory=list)
    # the caller read it through records.access.access_patient
    patient: Patient | None = None
    consent_recorded: bool = False
    scheduled_start: datetime | None = None  # None: ad hoc, live at once


@dataclass(frozen=True)
class ViewerPass:
    """What the browser gets to connect: never the secret, only a short-lived token."""

    token: str
    url: str  # the room on the relay; the page adds /streams/<stream>/<quality>?token=
    expires_at: datetime


@transaction.atomic
def create_live_session(*, actor: User, data: LiveSessionIn) -> LiveSession:
    """A session created by `actor`; ad hoc ones are live at once. Consent, when ticked for a
    session with a patient, is recorded as given by `actor` now."""
    with_consent = data.consent_recorded and data.patient is not None
    session = LiveSession(
        title=data.title,
        room=data.room,
        streams=list(data.streams),
        patient=data.patient,
        consent_recorded=with_consent,
        consent_recorded_by=actor if with_consent else None,
        consent_recorded_at=timezone.now() if with_consent else None,
        scheduled_start=data.scheduled_start,
        status=(LiveSession.Status.SCHEDULED if data.scheduled_start else LiveSession.Status.LIVE),
        created_by=actor,
    )
    session.full_clean(exclude=["invitees"])
    session.save()
    invitees = sorted({u.pk for u in data.invitees} - {actor.pk})
    session.invitees.set(invitees)
    audit.record(
        actor=actor,
        action="live.create",
        target=session,
        patient_id=session.patient_id,
        detail={
            "room": session.room,
            "streams": session.streams,
            "invitees": invitees,
            "consent_recorded": with_consent,
        },
    )
    return session


@transaction.atomic
def record_consent(*, actor: User, session: LiveSession) -> LiveSession:
    """The patient's consent to the broadcast, recorded by the session's creator."""
    # the creator is the one who arranged the broadcast with the patient
    if session.created_by_id != actor.pk:
        raise PermissionDeniedError("not_creator", _("只有直播发起人可以记录患者知情同意"))
    if session.patient_id is None:
        raise DomainError("no_patient", _("这场直播不涉及患者，无需记录知情同意"))
    if session.consent_recorded:
        return session
    session.consent_recorded = True
    session.consent_recorded_by = actor
    session.consent_recorded_at = timezone.now()
    session.save(
        update_fields=[
            "consent_recorded",
            "consent_recorded_by",
            "consent_recorded_at",
            "updated_at",
        ]
    )
    audit.record(actor=actor, action="live.consent", target=session, patient_id=session.patient_id)
    return session


@transaction.atomic
def join_live_session(*, actor: User, session: LiveSession) -> ViewerPass:
    """A relay token admitting `actor` to the session's room; the join is audited.

    Precondition: `session` came from `access.access_live_session(actor, ...)`.
    """
    now_s = time.time()
    token = issue_token(
        secret=relay_secret(),
        user_id=str(actor.pk),
        room=session.room,
        ttl_s=VIEWER_TOKEN_TTL_S,
        now_s=now_s,
    )
    audit.record(
        actor=actor,
        action="live.join",
        target=session,
        patient_id=session.patient_id,
        detail={"room": session.room},
    )
    return ViewerPass(
        token=token,
        url=room_url(session.room),
        expires_at=datetime.fromtimestamp(int(now_s) + VIEWER_TOKEN_TTL_S, tz=UTC),
    )


class RecordingRejectedError(ValueError):
    """A file in the recordings folder that is not an H.264 (+ AAC) MP4 with a duration."""


def probe_recording(path: Path) -> float:
    """The duration [s] of ``path`` if ffprobe reads it as an MP4 of H.264 video (at least one
    track) and AAC audio (none or more) and nothing else; else RecordingRejectedError."""
    argv = ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise RecordingRejectedError(f"ffprobe failed: {exc}") from exc
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip()[:200]
        raise RecordingRejectedError(f"ffprobe cannot read it: {why}")
    try:
        info: dict[str, Any] = json.loads(done.stdout)
        formats = str(info["format"]["format_name"]).split(",")
        duration_s = float(info["format"].get("duration", "nan"))
        streams = [(str(s["codec_type"]), str(s["codec_name"])) for s in info["streams"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordingRejectedError(f"unexpected ffprobe output: {exc}") from exc
    if "mp4" not in formats:
        raise RecordingRejectedError(f"not an MP4 ({','.join(formats)})")
    allowed = {("video", "h264"), ("audio", "aac")}
    if not streams or set(streams) - allowed or ("video", "h264") not in streams:
        raise RecordingRejectedError(f"streams {streams}: expected h264 video and aac audio")
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise RecordingRejectedError(f"duration {duration_s}: expected more than 0 s")
    return duration_s


def recordings_root() -> Path:
    return Path(settings.OSTEON_LIVE_RECORDINGS_DIR)


def attach_recordings(*, actor: User, session: LiveSession) -> list[LiveRecording]:
    """Attach the relay's finished recordings of the session's room and streams that are not
    attached yet and were still being written when the session was created; each is checked
    with ffprobe first, and a file that fails is logged and left alone. Audited
    (`live.recordings_attach`) when something was attached.

    Precondition: `session` came from `access.access_live_session(actor, ..., manage=True)`.
    """
    root = recordings_root().resolve()
    folder = (root / session.room).resolve()
    # the room's folder must be inside the root (not a link out of it)
    if not folder.is_relative_to(root) or not folder.is_dir():
        return []
    attached = set(
        LiveRecording.objects.filter(path__startswith=f"{session.room}/").values_list(
            "path", flat=True
        )
    )
    since_s = session.created_at.timestamp()
    found: list[LiveRecording] = []
    with os.scandir(folder) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        match = RECORDING_NAME.fullmatch(entry.name)
        relative = f"{session.room}/{entry.name}"
        # .part and .tmp files are still being written; streams the session does not show
        if match is None or match["stream"] not in session.streams or relative in attached:
            continue
        if not entry.is_file(follow_symlinks=False):
            log.warning("live recording %s: not a regular file, not attached", relative)
            continue
        stat = entry.stat(follow_symlinks=False)
        # finished (last written) before the session existed: an earlier session's
        if stat.st_mtime < since_s:
            continue
        try:
            started_at = _started_at(match["at"])
            duration_s = probe_recording(Path(entry.path))
        except RecordingRejectedError as exc:
            log.warning("live recording %s: not attached: %s", relative, exc)
            continue
        found.append(
            LiveRecording(
                session=session,
                stream=match["stream"],
                path=relative,
                started_at=started_at,
                duration_s=duration_s,
                size_bytes=stat.st_size,
            )
        )
    # ffprobe ran outside any transaction; the rows and their audit entry go in together
    if found:
        _save_recordings(actor=actor, session=session, recordings=found)
    return found


def _started_at(stamp: str) -> datetime:
    # the name's UTC time; a name with digits that are no date is not the relay's
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise RecordingRejectedError(f"no time in its name: {exc}") from exc


@transaction.atomic
def _save_recordings(*, actor: User, session: LiveSession, recordings: list[LiveRecording]) -> None:
    for recording in recordings:
        recording.full_clean()
        recording.save()
    audit.record(
        actor=actor,
        action="live.recordings_attach",
        target=session,
        patient_id=session.patient_id,
        detail={"paths": [r.path for r in recordings]},
    )


@transaction.atomic
def read_recording(*, actor: User, recording: LiveRecording, byte_range: str) -> Path:
    """The recording's file, its read audited (`live.recording_read`, with the range asked for).

    Precondition: `recording` came from `access.access_live_recording(actor, ...)`.
    """
    root = recordings_root().resolve()
    path = (root / recording.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFoundError("live_recording_missing", _("录像文件不存在"))
    audit.record(
        actor=actor,
        action="live.recording_read",
        target=recording,
        patient_id=recording.session.patient_id,
        detail={"session": recording.session_id, "range": byte_range[:100]},
    )
    return path
