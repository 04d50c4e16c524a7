"""Every write of the live app: sessions, the consent they need, viewers joining, invitees
removed and sessions ended (the relay told at once), the relay's recordings attached and read,
drawings made and cleared. All audited."""

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
from clinical_shell.live.invitations import announce_live, notify_invited
from clinical_shell.live.models import LiveAnnotation, LiveRecording, LiveSession
from clinical_shell.live.relay import relay_secret, room_url, send_control
from clinical_shell.realtime.events import deliver_to_group
from clinical_shell.records.models import Patient
from streaming.tokens import issue_token

# a token only bridges "the page asked" and "the page connected": the page asks again for
# each connection (quality change, reconnect) [s]
VIEWER_TOKEN_TTL_S = 60
# what the relay's recorder names a finished file (streaming.recorder.recording_name)
RECORDING_NAME = re.compile(
    r"(?P<stream>[A-Za-z0-9_-]{1,64})-(?P<at>\d{8}T\d{6}\.\d{3}Z)-m(?P<media_ms>\d{1,12})\.mp4"
)
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
    notify_invited(session, [u for u in data.invitees if u.pk != actor.pk])
    if session.status == LiveSession.Status.LIVE:
        # the relay records the session's streams from now (a scheduled one: from its first
        # viewer, whose token names it, or when its creator starts it)
        announce_live(session)
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
    if session.status == LiveSession.Status.LIVE:
        # held back at creation until now (announce_live)
        announce_live(session)
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
        session=str(session.pk),
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


def drawing_group(session_id: int) -> str:
    """The Channels group of a session's drawing sockets (`consumers.TelestrationConsumer`)."""
    return f"live-draw-{session_id}"


def voice_group(session_id: int) -> str:
    """The Channels group of a session's voice sockets (`voice.VoiceSignallingConsumer`)."""
    return f"live-voice-{session_id}"


def _cut_off(session: LiveSession, user_id: int | None) -> None:
    # after commit: the relay closes the video sockets, the shell the drawing and voice sockets
    message: dict[str, Any] = {"room": session.room, "session": str(session.pk)}
    if user_id is None:
        message["kind"] = "session_end"
    else:
        message.update(kind="revoke", user=str(user_id))
    send_control(message)
    deliver_to_group(drawing_group(session.pk), {"type": "draw.revoke", "user": user_id})
    deliver_to_group(voice_group(session.pk), {"type": "voice.revoke", "user": user_id})


@transaction.atomic
def remove_invitee(*, actor: User, session: LiveSession, user_id: int) -> LiveSession:
    """Take `user_id` off the invitation list; their pictures and drawing stop now (the relay
    closes their sockets and refuses the tokens they hold), not when a token runs out.

    Precondition: `session` came from `access.access_live_session(actor, ..., manage=True)`.
    """
    if not session.invitees.filter(pk=user_id).exists():
        raise NotFoundError("not_invited", _("此人不在这场直播的邀请名单中"))
    session.invitees.remove(user_id)
    audit.record(
        actor=actor,
        action="live.uninvite",
        target=session,
        patient_id=session.patient_id,
        detail={"user": user_id},
    )
    transaction.on_commit(lambda: _cut_off(session, user_id))
    return session


@transaction.atomic
def end_live_session(*, actor: User, session: LiveSession) -> LiveSession:
    """End the session: nobody watches or draws any more, every socket closes now and the
    relay finishes its recordings (attach them afterwards).

    Precondition: `session` came from `access.access_live_session(actor, ..., manage=True)`.
    """
    if session.status == LiveSession.Status.ENDED:
        return session
    session.status = LiveSession.Status.ENDED
    session.save(update_fields=["status", "updated_at"])
    audit.record(actor=actor, action="live.end", target=session, patient_id=session.patient_id)
    # a station publishing its view into this session stops (the bridge pushes the stop)
    from clinical_shell.stations.streams import live_session_ended

    live_session_ended(actor=actor, session=session)
    transaction.on_commit(lambda: _cut_off(session, None))
    return session


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
    """Attach the relay's finished recordings of this session that are not attached yet: the
    files in the session's own folder ``<room>/<session id>/``, which the relay writes only
    while the session is live and only for its streams (so two sessions that overlap in one
    room never get each other's). Each is checked with ffprobe first; a file that fails is
    logged and left alone. Audited (`live.recordings_attach`) when something was attached.

    Precondition: `session` came from `access.access_live_session(actor, ..., manage=True)`.
    """
    root = recordings_root().resolve()
    prefix = f"{session.room}/{session.pk}"
    folder = (root / prefix).resolve()
    # the session's folder must be inside the root (not a link out of it)
    if not folder.is_relative_to(root) or not folder.is_dir():
        return []
    attached = set(
        LiveRecording.objects.filter(path__startswith=f"{prefix}/").values_list("path", flat=True)
    )
    found: list[LiveRecording] = []
    with os.scandir(folder) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        match = RECORDING_NAME.fullmatch(entry.name)
        relative = f"{prefix}/{entry.name}"
        # .part and .tmp files are still being written; streams the session does not show
        if match is None or match["stream"] not in session.streams or relative in attached:
            continue
        if not entry.is_file(follow_symlinks=False):
            log.warning("live recording %s: not a regular file, not attached", relative)
            continue
        stat = entry.stat(follow_symlinks=False)
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
                media_start_s=int(match["media_ms"]) / 1000,
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


# --- telestration ------------------------------------------------------------------------

# colours offered by the watch page's palette; anything else is refused
ANNOTATION_COLORS = ("#ff3b30", "#ffcc00", "#34c759", "#0a84ff", "#ffffff")
# a freehand stroke of a few seconds at pointer rate, thinned by the page [points]
MAX_STROKE_POINTS = 512
# a session long enough for hours of teaching, small enough that a page loads them at once
MAX_SESSION_ANNOTATIONS = 5000
# no stream runs for four months; a larger media time is not one the page read [s]
MAX_MEDIA_TIME_S = 1e7
_DRAW_KEYS = frozenset({"type", "stream", "shape", "points", "color", "media_time"})


@dataclass(frozen=True)
class AnnotationIn:
    stream: str
    shape: str
    points: list[list[float]]
    color: str
    media_time_s: float


class AnnotationRejectedError(DomainError):
    """A drawing message that is not one the watch page makes; the message says which part."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_annotation", message, status=422)


def parse_annotation(session: LiveSession, payload: Any) -> AnnotationIn:
    """A drawing message from a browser, checked field by field (hostile input): a known
    stream of the session, a known shape with the number of points it takes, each point two
    finite numbers in 0..1, a palette colour and a finite media time >= 0.
    Raises AnnotationRejectedError."""
    if not isinstance(payload, dict) or set(payload) != _DRAW_KEYS:
        raise AnnotationRejectedError(_("标注消息的字段不正确"))
    stream, shape, points = payload["stream"], payload["shape"], payload["points"]
    color, media_time = payload["color"], payload["media_time"]
    if not isinstance(stream, str) or stream not in session.streams:
        raise AnnotationRejectedError(_("这场直播没有这个画面"))
    if shape not in LiveAnnotation.Shape.values:
        raise AnnotationRejectedError(_("不支持的标注形状"))
    if not isinstance(color, str) or color not in ANNOTATION_COLORS:
        raise AnnotationRejectedError(_("不支持的标注颜色"))
    if not _is_number(media_time) or not 0 <= media_time <= MAX_MEDIA_TIME_S:
        raise AnnotationRejectedError(_("画面时间无效"))
    wanted = (2, MAX_STROKE_POINTS) if shape == LiveAnnotation.Shape.FREEHAND else (2, 2)
    if not isinstance(points, list) or not wanted[0] <= len(points) <= wanted[1]:
        raise AnnotationRejectedError(
            _("坐标点数应在 %(low)s 到 %(high)s 之间") % {"low": wanted[0], "high": wanted[1]}
        )
    clean: list[list[float]] = []
    for point in points:
        if not (isinstance(point, list) and len(point) == 2 and all(map(_is_number, point))):
            raise AnnotationRejectedError(_("每个坐标点应为两个数字"))
        if not all(0 <= v <= 1 for v in point):
            raise AnnotationRejectedError(_("坐标应归一化到 0 到 1 之间"))
        clean.append([round(float(point[0]), 4), round(float(point[1]), 4)])
    return AnnotationIn(
        stream=stream,
        shape=str(shape),
        points=clean,
        color=color,
        media_time_s=round(float(media_time), 3),
    )


def _is_number(value: Any) -> bool:
    # bool is an int to Python, not a coordinate; NaN and infinities are no place on a picture
    return type(value) in (int, float) and math.isfinite(value)


@transaction.atomic
def add_annotation(*, actor: User, session: LiveSession, data: AnnotationIn) -> LiveAnnotation:
    """Store one drawing by `actor` (audited `live.draw`).

    Precondition: `session` came from `access.access_live_session(actor, ...)`, checked for
    this very message (an uninvited user draws nothing).
    """
    if LiveAnnotation.objects.filter(session=session).count() >= MAX_SESSION_ANNOTATIONS:
        raise DomainError(
            "too_many_annotations", _("这场直播的标注数量已达上限，请先清除"), status=409
        )
    annotation = LiveAnnotation(
        session=session,
        stream=data.stream,
        author=actor,
        shape=data.shape,
        points=data.points,
        color=data.color,
        media_time_s=data.media_time_s,
    )
    annotation.full_clean()
    annotation.save()
    audit.record(
        actor=actor,
        action="live.draw",
        target=session,
        patient_id=session.patient_id,
        detail={"annotation": annotation.pk, "stream": data.stream, "shape": data.shape},
    )
    return annotation


@transaction.atomic
def clear_annotations(*, actor: User, session: LiveSession) -> list[int]:
    """Clear every drawing `actor` made in the session that is still shown; their ids
    (audited `live.draw_clear` when there were any). Nobody clears another's drawings.

    Precondition: as `add_annotation`.
    """
    shown = LiveAnnotation.objects.select_for_update().filter(
        session=session, author=actor, cleared_at__isnull=True
    )
    ids = list(shown.values_list("pk", flat=True))
    if ids:
        LiveAnnotation.objects.filter(pk__in=ids).update(cleared_at=timezone.now())
        audit.record(
            actor=actor,
            action="live.draw_clear",
            target=session,
            patient_id=session.patient_id,
            detail={"annotations": ids},
        )
    return ids
