"""The per-person topic "user.<id>": notices meant for one signed-in person, on every page.

Only that person may subscribe. The shell itself tells a person when their account is signed in
(on any of the shell's processes), so an open page learns of a sign-in it did not expect.
"""

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from clinical_shell.realtime.events import publish, register_topic

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


def register() -> None:
    """Called by RealtimeConfig.ready()."""
    register_topic(USER_TOPIC, may_subscribe_to_user_topic)
