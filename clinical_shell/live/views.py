"""Live-session pages: my sessions, a new session, the watch page, recording consent, the
session's recordings and their MP4 files. Thin: access, one service or selector, render."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import DomainError
from clinical_shell.live import selectors, services
from clinical_shell.live.access import (
    access_live_recording,
    access_live_recordings,
    access_live_session,
)
from clinical_shell.live.forms import LiveSessionForm
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


@login_required
@require_http_methods(["GET"])
def session_watch(request: HttpRequest, session_id: int) -> HttpResponse:
    session = access_live_session(request.user, session_id)
    # the relay's ladder, best first; 360p (the rung every relay stream runs by default) to start
    qualities = sorted(LADDER, key=lambda q: LADDER[q].height, reverse=True)
    return render(
        request,
        "live/session_watch.html",
        {
            "session": session,
            "streams": [(name, STREAM_LABELS.get(name, "")) for name in session.streams],
            "qualities": qualities,
            "default_quality": "360p",
        },
    )


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
    recordings = selectors.session_recordings(session)
    return render(
        request,
        "live/session_recordings.html",
        {
            "session": session,
            "recordings": [(r, STREAM_LABELS.get(r.stream, "")) for r in recordings],
        },
    )


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
