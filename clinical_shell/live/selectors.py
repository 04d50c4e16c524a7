"""Reads of live sessions for the pages and the API."""

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q, QuerySet

from clinical_shell.live.models import LiveAnnotation, LiveRecording, LiveSession


def live_session(session_id: int) -> LiveSession | None:
    return LiveSession.objects.select_related("created_by__person").filter(pk=session_id).first()


def is_participant(session: LiveSession, user: User) -> bool:
    """The creator or an invitee: the only people who watch the session."""
    if session.created_by_id == user.pk:
        return True
    return session.invitees.filter(pk=user.pk).exists()


def invitees(session: LiveSession) -> list[tuple[int, str]]:
    """(user id, name) of the people invited, by name."""
    people = [(u.pk, author_name(u)) for u in session.invitees.select_related("person")]
    return sorted(people, key=lambda p: p[1])


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


def shown_annotations(session: LiveSession) -> QuerySet[LiveAnnotation]:
    """The session's drawings not cleared by their authors, oldest first (the live page)."""
    return session_annotations(session).filter(cleared_at__isnull=True)


def session_annotations(session: LiveSession) -> QuerySet[LiveAnnotation]:
    """Every drawing of the session, cleared or not, oldest first (replayed over recordings)."""
    return (
        LiveAnnotation.objects.filter(session=session)
        .select_related("author__person")
        .order_by("created_at", "pk")
    )


def author_name(user: User) -> str:
    try:
        name = str(user.person.full_name)
    except (AttributeError, ObjectDoesNotExist):
        name = ""
    return name or user.username


def annotation_json(annotation: LiveAnnotation) -> dict[str, Any]:
    """What a page draws: shape, points (0..1), colour, stream and media time, author; when it
    was cleared, seconds after it was drawn (the replay hides it that much later)."""
    shown_s = None
    if annotation.cleared_at is not None:
        shown_s = round((annotation.cleared_at - annotation.created_at).total_seconds(), 3)
    return {
        "id": annotation.pk,
        "stream": annotation.stream,
        "shape": annotation.shape,
        "points": annotation.points,
        "color": annotation.color,
        "media_time": annotation.media_time_s,
        "author": annotation.author_id,
        "author_name": author_name(annotation.author),
        "created_at": annotation.created_at.isoformat(),
        "shown_s": shown_s,
    }
