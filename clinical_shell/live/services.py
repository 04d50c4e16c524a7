"""Every write of the live app: sessions, the consent they need, viewers joining. All audited."""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, PermissionDeniedError
from clinical_shell.live.models import LiveSession
from clinical_shell.live.relay import relay_secret, room_url
from clinical_shell.records.models import Patient
from streaming.tokens import issue_token

# a token only bridges "the page asked" and "the page connected": the page asks again for
# each connection (quality change, reconnect) [s]
VIEWER_TOKEN_TTL_S = 60


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
