"""A session's invitation list after it was created, and a scheduled session started by its
creator: invitees are told (a notification with the watch page's link) when they are invited
and when the session goes live. Audited like every other write of the live app."""

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError
from clinical_shell.live.models import LiveSession
from clinical_shell.live.relay import send_control
from clinical_shell.notifications.services import notify

# what a live session holds at most: every invitee is a browser the relay feeds
MAX_INVITEES = 50


def notify_invited(session: LiveSession, users: Iterable[User]) -> None:
    """Tell `users` they are invited to `session` (title, when, the watch link)."""
    when = (
        timezone.localtime(session.scheduled_start).strftime("%Y-%m-%d %H:%M")
        if session.scheduled_start is not None
        else gettext_lazy("立即开始")
    )
    notify(
        users,
        title=format_lazy(gettext_lazy("邀请您观看手术直播：{}"), session.title),
        body=format_lazy(gettext_lazy("开始时间：{}"), when),
        url=reverse("live:session_watch", args=[session.pk]),
        kind="live.invite",
    )


def announce_live(session: LiveSession) -> None:
    """Once the transaction commits, the relay records the session's streams from now; never
    a real operation's before the patient's consent to the broadcast is recorded."""
    if session.needs_consent:
        return
    message: dict[str, Any] = {"kind": "session_live", "room": session.room}
    message.update(session=str(session.pk), streams=list(session.streams))
    transaction.on_commit(lambda: send_control(message))


def _check_open(session: LiveSession) -> None:
    if session.status == LiveSession.Status.ENDED:
        raise DomainError("session_ended", _("这场直播已经结束，不能再修改。"))


@transaction.atomic
def invite(*, actor: User, session: LiveSession, users: list[User]) -> list[User]:
    """Add `users` to the invitation list and tell the ones newly added; returns those.

    Precondition: `session` came from `access.access_live_session(actor, ..., manage=True)`.
    Refused (nothing changes): an ended session, a list that would pass MAX_INVITEES."""
    locked = LiveSession.objects.select_for_update().get(pk=session.pk)
    _check_open(locked)
    present = set(locked.invitees.values_list("pk", flat=True))
    added = [u for u in users if u.pk not in present and u.pk != locked.created_by_id]
    if len(present) + len(added) > MAX_INVITEES:
        raise DomainError(
            "too_many_invitees",
            _("一场直播最多邀请 %(n)s 人") % {"n": MAX_INVITEES},
            status=422,
        )
    if not added:
        return []
    locked.invitees.add(*added)
    notify_invited(locked, added)
    audit.record(
        actor=actor,
        action="live.invite",
        target=locked,
        patient_id=locked.patient_id,
        detail={"users": [u.pk for u in added]},
    )
    return added


@transaction.atomic
def start_session(*, actor: User, session: LiveSession) -> LiveSession:
    """A scheduled session goes live now: the relay records its streams from now and the
    invitees are told. A session already live is left as it is.

    Precondition: `session` came from `access.access_live_session(actor, ..., manage=True)`."""
    locked = LiveSession.objects.select_for_update().get(pk=session.pk)
    _check_open(locked)
    if locked.status == LiveSession.Status.LIVE:
        return locked
    if locked.needs_consent:
        raise DomainError(
            "consent_missing",
            _("这是真实患者的手术直播，请先记录患者的知情同意，再开始直播。"),
            status=403,
        )
    locked.status = LiveSession.Status.LIVE
    locked.save(update_fields=["status", "updated_at"])
    announce_live(locked)
    notify(
        locked.invitees.all(),
        title=format_lazy(gettext_lazy("手术直播已开始：{}"), locked.title),
        url=reverse("live:session_watch", args=[locked.pk]),
        kind="live.start",
    )
    audit.record(actor=actor, action="live.start", target=locked, patient_id=locked.patient_id)
    return locked
