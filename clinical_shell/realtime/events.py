"""Live events: apps publish JSON to a topic; browsers subscribed to it over /ws/live/ receive it.

A topic is a dotted name whose first part says which app owns it ("job.42", "stations",
"station.7", "session.9"). The owning app declares, once, who may subscribe (register_topic,
from its AppConfig.ready()); the websocket consumer (consumers.LiveConsumer) asks that predicate
before it subscribes anyone. Delivery goes through the Channels layer: in-memory within one
process by default, Redis (OSTEON_REDIS_URL) when several shell processes serve the same site.
"""

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

# dotted words of letters, digits, "_" and "-": also valid in a Channels group name as they are
_TOPIC_PATTERN = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
# Channels refuses group names of 100 characters or more; the group prefix takes 5
TOPIC_MAX_LENGTH = 90
_GROUP_PREFIX = "live."
# the consumer's handler for a published event (Channels maps "live.event" to live_event)
EVENT_MESSAGE_TYPE = "live.event"

CanSubscribe = Callable[[User, str], bool]
_registry: dict[str, CanSubscribe] = {}


class TopicError(ValueError):
    """A topic that is not a well-formed dotted name."""


def check_topic(topic: str) -> str:
    """Return `topic` if it is a well-formed dotted name, else raise TopicError."""
    if len(topic) > TOPIC_MAX_LENGTH or not _TOPIC_PATTERN.fullmatch(topic):
        raise TopicError(f"not a topic name: {topic[:100]!r}")
    return topic


def group_name(topic: str) -> str:
    """The Channels group that carries `topic`'s events (topics are checked, so no escaping)."""
    return _GROUP_PREFIX + check_topic(topic)


def register_topic(prefix: str, can_subscribe: CanSubscribe) -> None:
    """Apps declare which topics exist and who may subscribe (called from AppConfig.ready()).

    `prefix` covers itself and every topic below it ("job" covers "job" and "job.42"); the
    longest registered prefix decides. `can_subscribe(user, topic)` runs in a worker thread
    (it may query the database) for a signed-in user; False, or a DomainError, PermissionDenied
    or ObjectDoesNotExist raised by it, refuses. Registering the same prefix again replaces the
    predicate (Django may call ready() twice in tests).
    """
    _registry[check_topic(prefix)] = can_subscribe


def predicate_for(topic: str) -> CanSubscribe | None:
    """The predicate of the longest registered prefix of `topic`, or None for an unknown topic."""
    parts = check_topic(topic).split(".")
    for end in range(len(parts), 0, -1):
        predicate = _registry.get(".".join(parts[:end]))
        if predicate is not None:
            return predicate
    return None


def publish(topic: str, event: dict[str, Any]) -> None:
    """Send `event` (JSON-able) to every websocket subscribed to `topic`.

    Safe to call from sync code (uses async_to_sync(channel_layer.group_send)); callers inside a
    transaction wrap it in transaction.on_commit. Topics are dotted strings: "job.42",
    "stations", "station.7", "session.9". Async code awaits `apublish` instead.
    """
    async_to_sync(apublish)(topic, event)


async def apublish(topic: str, event: dict[str, Any]) -> None:
    """`publish` for code already running in an event loop (a consumer, an async view)."""
    message = _event_message(topic, event)
    layer = get_channel_layer()
    if layer is None:
        # CHANNEL_LAYERS is always set by settings; without it nobody can be listening
        logger.warning("no channel layer: live event on %s dropped", topic)
        return
    await layer.group_send(group_name(topic), message)


def _event_message(topic: str, event: dict[str, Any]) -> dict[str, Any]:
    # a round trip through JSON: an event the browser could not read fails here, at the
    # publisher, with the in-memory layer as with Redis (which would accept some non-JSON types)
    check_topic(topic)
    return {"type": EVENT_MESSAGE_TYPE, "topic": topic, "event": json.loads(json.dumps(event))}
