"""`/api/v1/live/sessions`: my live sessions, a new one, its invitation list and starting a
scheduled one; the same rules and services as the pages (`views`, `invitations`), the input
checked by the pages' own forms so both refuse alike. Mounted beside `live.api`."""

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.forms import Form
from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import ValidationError
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import ProblemOut
from clinical_shell.live import invitations, selectors, services
from clinical_shell.live.access import access_live_session
from clinical_shell.live.forms import InviteForm, LiveSessionForm
from clinical_shell.live.models import LiveSession
from clinical_shell.records.access import access_patient

router = Router(tags=["live / 手术直播"])

ERRORS: dict[int, type[Schema]] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
}


class SessionIn(Schema):
    title: str
    room: str
    streams: list[str]
    invitees: list[str]  # user names
    patient_id: int | None = None
    consent_recorded: bool = False
    scheduled_start: datetime | None = None  # None: ad hoc, live at once


class InviteIn(Schema):
    invitees: list[str]


class SessionOut(Schema):
    id: int
    title: str
    room: str
    streams: list[str]
    status: str
    scheduled_start: datetime | None
    created_by: str
    # a real operation (a patient is named); the patient's identity is not repeated here
    real_operation: bool
    consent_recorded: bool
    invitees: list[str] | None  # the creator sees the list; an invitee does not

    @staticmethod
    def resolve_created_by(obj: LiveSession) -> str:
        return obj.created_by.get_username()

    @staticmethod
    def resolve_real_operation(obj: LiveSession) -> bool:
        return obj.patient_id is not None

    @staticmethod
    def resolve_invitees(obj: LiveSession, context: dict[str, Any]) -> list[str] | None:
        if obj.created_by_id != context["request"].user.pk:
            return None
        return sorted(obj.invitees.values_list("username", flat=True))


def _checked(form: Form) -> dict[str, Any]:
    # the form's errors as the API's 422 (every field at once, like the page)
    if not form.is_valid():
        raise ValidationError(
            [
                {"loc": ["body", field], "msg": str(message), "type": "value_error"}
                for field, messages in form.errors.items()
                for message in messages
            ]
        )
    return form.cleaned_data


@router.get(
    "/sessions",
    response={200: list[SessionOut], 401: ProblemOut},
    summary="My live sessions / 我的手术直播",
)
@paginate(PageNumberPagination)
def list_sessions(request: HttpRequest) -> QuerySet[LiveSession]:
    """Sessions I created or am invited to, newest first."""
    return selectors.my_sessions(signed_in_user(request))


@router.post(
    "/sessions",
    response={201: SessionOut, **ERRORS},
    summary="Start or schedule a live session / 发起手术直播",
)
def create_session(request: HttpRequest, payload: SessionIn) -> Status[LiveSession]:
    """Invitees are notified. A real operation (`patient_id`) is read through the patient's
    door (audited); it is watched and recorded only once consent is recorded."""
    patient = None
    if payload.patient_id is not None:
        patient = access_patient(request.user, payload.patient_id, reason="live session")
    form = LiveSessionForm(
        {
            "title": payload.title,
            "room": payload.room,
            "streams": ",".join(payload.streams),
            "invitees": ",".join(payload.invitees),
            "patient": payload.patient_id or "",
            "consent_recorded": payload.consent_recorded,
            "scheduled_start": payload.scheduled_start or "",
        }
    )
    data = _checked(form)
    session = services.create_live_session(
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
    return Status(201, session)


@router.get(
    "/sessions/{session_id}",
    response={200: SessionOut, **ERRORS},
    summary="A live session / 手术直播",
)
def get_session(request: HttpRequest, session_id: int) -> LiveSession:
    """Its creator always; an invitee while it may be watched (as the watch page)."""
    found = selectors.live_session(session_id)
    manage = found is not None and found.created_by_id == request.user.pk
    return access_live_session(request.user, session_id, manage=manage)


@router.post(
    "/sessions/{session_id}/invitees",
    response={200: SessionOut, **ERRORS},
    summary="Invite more people / 邀请专家",
)
def invite(request: HttpRequest, session_id: int, payload: InviteIn) -> LiveSession:
    """The creator only; the newly invited are notified. An ended session: 409."""
    session = access_live_session(request.user, session_id, manage=True)
    data = _checked(InviteForm({"invitees": ",".join(payload.invitees)}))
    invitations.invite(actor=signed_in_user(request), session=session, users=data["invitees"])
    return session


@router.post(
    "/sessions/{session_id}/start",
    response={200: SessionOut, **ERRORS},
    summary="Start a scheduled session now / 现在开始直播",
)
def start(request: HttpRequest, session_id: int) -> LiveSession:
    """The creator only; a real operation without recorded consent: 403 `consent_missing`."""
    session = access_live_session(request.user, session_id, manage=True)
    return invitations.start_session(actor=signed_in_user(request), session=session)
