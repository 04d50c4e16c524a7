"""Reads of live sessions for the pages and the API."""

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from clinical_shell.live.models import LiveSession


def live_session(session_id: int) -> LiveSession | None:
    return LiveSession.objects.select_related("created_by__person").filter(pk=session_id).first()


def is_participant(session: LiveSession, user: User) -> bool:
    """The creator or an invitee: the only people who watch the session."""
    if session.created_by_id == user.pk:
        return True
    return session.invitees.filter(pk=user.pk).exists()


def my_sessions(user: User) -> QuerySet[LiveSession]:
    """Sessions `user` created or was invited to, newest first."""
    return (
        LiveSession.objects.filter(Q(created_by=user) | Q(invitees=user))
        .distinct()
        .select_related("created_by__person")
        .order_by("-created_at", "-pk")
    )
