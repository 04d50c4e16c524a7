"""Reads of live sessions for the pages and the API."""

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from clinical_shell.live.models import LiveRecording, LiveSession


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


def live_recording(recording_id: int) -> LiveRecording | None:
    return (
        LiveRecording.objects.select_related("session__created_by").filter(pk=recording_id).first()
    )


def session_recordings(session: LiveSession) -> QuerySet[LiveRecording]:
    """The session's recordings, oldest first."""
    return LiveRecording.objects.filter(session=session).order_by("started_at", "stream", "pk")
