"""The per-person topic "user.<id>": notices meant for one signed-in person, on every page.

Only that person may subscribe. The shell itself tells a person when their account is signed in
(on any of the shell's processes), so an open page learns of a sign-in it did not expect.
Signing out closes the live sockets opened with that session, on every process: the session's
other tabs stop receiving events.
"""

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from clinical_shell.realtime.events import deliver_to_group, publish, register_topic

USER_TOPIC = "user"


def user_topic(user_id: int) -> str:
    return f"{USER_TOPIC}.{user_id}"


def may_subscribe_to_user_topic(user: User, topic: str) -> bool:
    return topic == user_topic(user.pk)


def announce_sign_in(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    """user_logged_in receiver: publish {"kind": "signed_in", ...} to the person's topic."""
    event = {
        "kind": "signed_in",
        "at": timezone.now().isoformat(),
        "source_ip": str(request.META.get("REMOTE_ADDR", "")) if request is not None else "",
    }
    topic = user_topic(user.pk)
    transaction.on_commit(lambda: publish(topic, event))


def session_group_name(session_key: str | None) -> str:
    """The Channels group of the live sockets opened with one session (keys are [a-z0-9])."""
    return f"live-session.{session_key or 'none'}"


def close_session_sockets(
    sender: Any, request: HttpRequest | None, user: User | None, **kwargs: Any
) -> None:
    """user_logged_out receiver: close the sockets of the session being signed out."""
    if request is not None and request.session.session_key is not None:
        deliver_to_group(
            session_group_name(request.session.session_key), {"type": "live.session_ended"}
        )


def register() -> None:
    """Called by RealtimeConfig.ready()."""
    register_topic(USER_TOPIC, may_subscribe_to_user_topic)
