"""Live-session pages: my sessions, a new session, the watch page (with its drawing tools),
recording consent, removing an invitee, ending the session, the session's recordings (with the
drawings replayed over them) and their MP4 files. Thin: access, one service or selector, render."""

from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import DomainError
from clinical_shell.live import invitations, selectors, services
from clinical_shell.live.access import (
    access_live_recording,
    access_live_recordings,
    access_live_session,
)
from clinical_shell.live.forms import InviteForm, LiveSessionForm
from clinical_shell.ranged_files import ranged_file_response
from clinical_shell.records.access import access_patient
from clinical_shell.records.models import Patient
from streaming.sources import LADDER

PAGE_LIMIT = 100


@login_required
@require_http_methods(["GET"])
def session_list(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    sessions = selectors.my_sessions(user)[:PAGE_LIMIT]
    return render(request, "live/session_list.html", {"sessions": sessions})


@login_required
@require_http_methods(["GET", "POST"])
def session_new(request: HttpRequest) -> HttpResponse:
    form = LiveSessionForm(request.POST or None)
    if request.method != "POST":
        return render(request, "live/session_form.html", {"form": form})
    valid = form.is_valid()
    # the patient is checked even when other fields are wrong: every problem shown at once
    patient: Patient | None = None
    patient_id = form.cleaned_data.get("patient")
    if patient_id:
        try:
            patient = access_patient(request.user, patient_id, reason="live session")
        except DomainError as exc:
            form.add_error("patient", exc.message)
            valid = False
    if valid:
        data = form.cleaned_data
        services.create_live_session(
            actor=signed_in_user(request),
            data=services.LiveSessionIn(
                title=data["title"],
                room=data["room"],
                streams=data["streams"],
                invitees=data["invitees"],
                patient=patient,
                consent_recorded=data["consent_recorded"],
                scheduled_start=data["scheduled_start"],
            ),
        )
        return redirect("live:session_list")
    form.mark_invalid()
    return render(request, "live/session_form.html", {"form": form}, status=422)


# what a surgeon calls the usual streams of a room; another name is shown as it is configured
STREAM_LABELS = {
    "field": _("术野摄像"),
    "room": _("手术间全景"),
    "endoscope": _("内镜"),
    "arthroscope": _("关节镜"),
    "fluoro": _("C 臂透视"),
    "sim": _("模拟器画面"),
}


# the drawing palette (services.ANNOTATION_COLORS), named for the buttons
COLOR_NAMES = {
    "#ff3b30": _("红色"),
    "#ffcc00": _("黄色"),
    "#34c759": _("绿色"),
    "#0a84ff": _("蓝色"),
    "#ffffff": _("白色"),
}


@login_required
@require_http_methods(["GET"])
def session_watch(request: HttpRequest, session_id: int) -> HttpResponse:
    session = access_live_session(request.user, session_id)
    # the relay's ladder, best first; 360p (the rung every relay stream runs by default) to start
    qualities = sorted(LADDER, key=lambda q: LADDER[q].height, reverse=True)
    is_creator = session.created_by_id == request.user.pk
    return render(
        request,
        "live/session_watch.html",
        {
            "session": session,
            "streams": [(name, STREAM_LABELS.get(name, "")) for name in session.streams],
            "qualities": qualities,
            "is_creator": is_creator,
            "invitees": selectors.invitees(session) if is_creator else [],
            "colors": [(c, COLOR_NAMES[c]) for c in services.ANNOTATION_COLORS],
        },
    )


@login_required
@require_http_methods(["POST"])
def session_uninvite(request: HttpRequest, session_id: int, user_id: int) -> HttpResponse:
    session = access_live_session(request.user, session_id, manage=True)
    services.remove_invitee(actor=signed_in_user(request), session=session, user_id=user_id)
    return redirect("live:session_watch", session_id=session.pk)


@login_required
@require_http_methods(["GET", "POST"])
def session_invitees(request: HttpRequest, session_id: int) -> HttpResponse:
    """The creator's invitation list: who is invited, invite more (they are notified)."""
    session = access_live_session(request.user, session_id, manage=True)
    form = InviteForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                added = invitations.invite(
                    actor=signed_in_user(request),
                    session=session,
                    users=form.cleaned_data["invitees"],
                )
            except DomainError as exc:
                form.add_error("invitees", exc.message)
            else:
                messages.success(
                    request,
                    _("已邀请 %(n)s 人，并已通知他们") % {"n": len(added)}
                    if added
                    else _("这些人已在邀请名单中"),
                )
                return redirect("live:session_invitees", session_id=session.pk)
        form.mark_invalid()
        status = 422
    return render(
        request,
        "live/session_invitees.html",
        {"session": session, "invitees": selectors.invitees(session), "form": form},
        status=status,
    )


@login_required
@require_http_methods(["POST"])
def session_start(request: HttpRequest, session_id: int) -> HttpResponse:
    session = access_live_session(request.user, session_id, manage=True)
    invitations.start_session(actor=signed_in_user(request), session=session)
    return redirect("live:session_watch", session_id=session.pk)


@login_required
@require_http_methods(["POST"])
def session_end(request: HttpRequest, session_id: int) -> HttpResponse:
    session = access_live_session(request.user, session_id, manage=True)
    services.end_live_session(actor=signed_in_user(request), session=session)
    return redirect("live:session_recordings", session_id=session.pk)


@login_required
@require_http_methods(["POST"])
def session_consent(request: HttpRequest, session_id: int) -> HttpResponse:
    session = access_live_session(request.user, session_id, manage=True)
    services.record_consent(actor=signed_in_user(request), session=session)
    return redirect("live:session_list")


@login_required
@require_http_methods(["GET"])
def session_recordings(request: HttpRequest, session_id: int) -> HttpResponse:
    session = access_live_recordings(request.user, session_id)
    recordings = list(selectors.session_recordings(session))
    annotations = [selectors.annotation_json(a) for a in selectors.session_annotations(session)]
    return render(
        request,
        "live/session_recordings.html",
        {
            "session": session,
            "recordings": [(r, STREAM_LABELS.get(r.stream, "")) for r in recordings],
            "replay": {str(r.pk): _on_recording(r, annotations) for r in recordings},
        },
    )


# a drawing belongs to a recording when it was made while the file was being written, give or
# take the relay's latency (the media time alone repeats after an encoder restart) [s]
_REPLAY_SLACK_S = 10.0


def _on_recording(recording: Any, annotations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The drawings of the recording's stream made while it was recorded, each with ``at``:
    its time in the file [s] (the file's time 0 is ``media_start_s`` on the live timeline)."""
    start = recording.started_at - timedelta(seconds=_REPLAY_SLACK_S)
    end = recording.started_at + timedelta(seconds=recording.duration_s + _REPLAY_SLACK_S)
    found = []
    for annotation in annotations:
        at = annotation["media_time"] - recording.media_start_s
        drawn = datetime.fromisoformat(annotation["created_at"])
        if annotation["stream"] != recording.stream or not start <= drawn <= end:
            continue
        if -0.5 <= at <= recording.duration_s:
            found.append({**annotation, "at": round(max(at, 0.0), 3)})
    return found


@login_required
@require_http_methods(["POST"])
def session_recordings_attach(request: HttpRequest, session_id: int) -> HttpResponse:
    session = access_live_session(request.user, session_id, manage=True)
    services.attach_recordings(actor=signed_in_user(request), session=session)
    return redirect("live:session_recordings", session_id=session.pk)


@login_required
@require_http_methods(["GET", "HEAD"])
def recording_mp4(request: HttpRequest, recording_id: int) -> HttpResponseBase:
    """The recording's MP4, whole (200) or the byte range asked for (206)."""
    recording = access_live_recording(request.user, recording_id)
    path = services.read_recording(
        actor=signed_in_user(request),
        recording=recording,
        byte_range=request.headers.get("Range", ""),
    )
    return ranged_file_response(request, path)
