"""Live events: apps publish JSON to a topic; browsers subscribed to it over /ws/live/ receive it.

A topic is a dotted name whose first part says which app owns it ("job.42", "stations",
"station.7", "session.9"). The owning app declares, once, who may subscribe (register_topic,
from its AppConfig.ready()); the websocket consumer (consumers.LiveConsumer) asks that predicate
before it subscribes anyone. Delivery goes through the Channels layer: in-memory within one
process by default, Redis (OSTEON_REDIS_URL) when several shell processes serve the same site.
"""

import asyncio
import json
import logging
import re
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.models import User

logger = logging.getLogger(__name__)

# dotted words of letters, digits, "_" and "-": also valid in a Channels group name as they are
_TOPIC_PATTERN = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
# Channels refuses group names of 100 characters or more; the group prefix takes 5
TOPIC_MAX_LENGTH = 90
_GROUP_PREFIX = "live."
# the consumer's handler for a published event (Channels maps "live.event" to live_event)
EVENT_MESSAGE_TYPE = "live.event"

# a relayed event waits this long for the web server at most (best effort, as every event)
RELAY_TIMEOUT_S = 2.0

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

    Best effort: a channel layer that cannot be reached (Redis down) is logged, not raised, so
    a committed change never fails over its notice (pages fetch the current state when they
    subscribe). A malformed topic (TopicError) or an event that is not JSON (TypeError,
    ValueError) is the caller's mistake and raises.
    """
    message = _event_message(topic, event)
    relay_url: str | None = settings.OSTEON_LIVE_RELAY_URL
    if relay_url:
        # a child of `osteon shell serve` without Redis: hand the event to the web server
        _relay(relay_url, topic, message["event"])
        return
    deliver_to_group(group_name(topic), message)


async def apublish(topic: str, event: dict[str, Any]) -> None:
    """`publish` for code already running in an event loop (a consumer, an async view)."""
    await _send(group_name(topic), _event_message(topic, event))


def deliver_to_group(group: str, message: dict[str, Any]) -> None:
    """Send a Channels message to `group` from sync code, best effort (realtime's own use)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(_send)(group, message)
        return
    # sync code running in an event loop's thread (a sync callback inside async code):
    # async_to_sync refuses to block that loop, so the send runs on a thread of its own
    sender = threading.Thread(
        target=async_to_sync(_send), args=(group, message), name="live-publish"
    )
    sender.start()
    sender.join()


def _relay(url: str, topic: str, event: dict[str, Any]) -> None:
    from clinical_shell.realtime.relay import sign_event

    request = urllib.request.Request(url, data=sign_event(topic, event), method="POST")
    try:
        urllib.request.urlopen(request, timeout=RELAY_TIMEOUT_S).close()
    except OSError:
        logger.exception("live event on %s not relayed to %s", topic, url)


async def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        # CHANNEL_LAYERS is always set by settings; without it nobody can be listening
        logger.warning("no channel layer: live message to %s dropped", group)
        return
    try:
        await layer.group_send(group, message)
    except Exception:
        logger.exception("live message to %s not sent (channel layer unreachable?)", group)


def _event_message(topic: str, event: dict[str, Any]) -> dict[str, Any]:
    # a round trip through JSON: an event the browser could not read fails here, at the
    # publisher, with the in-memory layer as with Redis (which would accept some non-JSON types)
    check_topic(topic)
    return {"type": EVENT_MESSAGE_TYPE, "topic": topic, "event": json.loads(json.dumps(event))}
