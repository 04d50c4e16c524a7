"""The one live websocket (/ws/live/): a signed-in browser subscribes to topics and gets events.

Frames from the browser:  {"subscribe": "job.42"}  or  {"unsubscribe": "job.42"}
Frames to the browser:    {"subscribed": "job.42"}, {"unsubscribed": "job.42"},
                          {"topic": "job.42", "event": {...}},
                          {"error": {"code": ..., "topic": ..., "message": ...}}
"""

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.audit.context import RequestOrigin, _origin
from clinical_shell.errors import DomainError
from clinical_shell.realtime.events import TopicError, check_topic, group_name, predicate_for
from clinical_shell.realtime.notices import session_group_name

logger = logging.getLogger(__name__)

# a page needs a handful; a client asking for hundreds is broken or probing
MAX_SUBSCRIPTIONS = 64
# close code for a connection without a signed-in user (4000-4999: application codes)
CLOSE_NOT_SIGNED_IN = 4401


class LiveConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    """Subscriptions are per connection; the browser helper resubscribes after a reconnect."""

    async def connect(self) -> None:
        self.topics: set[str] = set()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # accept, then close with our code: a refused handshake reaches the page only as
            # 1006, which the browser helper could not tell from a network fault and would retry
            await self.accept()
            await self.close(code=CLOSE_NOT_SIGNED_IN)
            return
        self.user: User = user
        # signing out (on any shell process) closes this session's sockets: see notices.py
        self.session_group = session_group_name(self.scope["session"].session_key)
        await self.channel_layer.group_add(self.session_group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for topic in getattr(self, "topics", set()):
            await self.channel_layer.group_discard(group_name(topic), self.channel_name)
        if hasattr(self, "session_group"):
            await self.channel_layer.group_discard(self.session_group, self.channel_name)

    async def live_session_ended(self, message: dict[str, Any]) -> None:
        """The session this socket was opened with signed out: nothing more for it."""
        await self.close(code=CLOSE_NOT_SIGNED_IN)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and isinstance(content.get("subscribe"), str):
            await self._subscribe(content["subscribe"])
        elif isinstance(content, dict) and isinstance(content.get("unsubscribe"), str):
            await self._unsubscribe(content["unsubscribe"])
        else:
            await self._error("bad_frame", None, _("无法识别的消息"))

    async def live_event(self, message: dict[str, Any]) -> None:
        """A published event (type "live.event") for a group this connection joined."""
        if message["topic"] in self.topics:
            await self.send_json({"topic": message["topic"], "event": message["event"]})

    async def _subscribe(self, topic: str) -> None:
        try:
            check_topic(topic)
        except TopicError:
            await self._error("bad_topic", topic[:100], _("主题名称无效"))
            return
        if topic in self.topics:
            await self.send_json({"subscribed": topic})
            return
        if len(self.topics) >= MAX_SUBSCRIPTIONS:
            await self._error("too_many", topic, _("订阅数量已达上限"))
            return
        predicate = predicate_for(topic)
        if predicate is None:
            logger.warning("user %s asked for unknown live topic %s", self.user.pk, topic)
            await self._error("unknown_topic", topic, _("没有这个主题"))
            return
        if not await database_sync_to_async(self._may_subscribe)(topic):
            await self._error("refused", topic, _("无权订阅此主题"))
            return
        await self.channel_layer.group_add(group_name(topic), self.channel_name)
        self.topics.add(topic)
        await self.send_json({"subscribed": topic})

    async def _unsubscribe(self, topic: str) -> None:
        if topic in self.topics:
            self.topics.discard(topic)
            await self.channel_layer.group_discard(group_name(topic), self.channel_name)
        await self.send_json({"unsubscribed": topic})

    def _may_subscribe(self, topic: str) -> bool:
        # the predicate may read the database (who owns job 42?) and so runs in a thread
        predicate = predicate_for(topic)
        assert predicate is not None  # checked by the caller; the registry only grows
        try:
            allowed = bool(predicate(self.user, topic))
        except (DomainError, PermissionDenied, ObjectDoesNotExist) as exc:
            allowed = False
            reason = str(exc)
        else:
            reason = ""
        if not allowed:
            # a refused subscription may be someone reaching for patient data: audit every one
            # (audit.context has no public setter for a non-HTTP origin; the scope is one)
            token = _origin.set(self._origin())
            try:
                audit.record(
                    actor=self.user,
                    action="realtime.subscribe",
                    success=False,
                    reason=reason or "refused",
                    detail={"topic": topic},
                )
            finally:
                _origin.reset(token)
        return allowed

    def _origin(self) -> RequestOrigin:
        client = self.scope.get("client") or ("", 0)
        headers = dict(self.scope.get("headers") or [])
        return RequestOrigin(
            source_ip=str(client[0])[:64],
            user_agent=headers.get(b"user-agent", b"").decode("latin-1")[:300],
        )

    async def _error(self, code: str, topic: str | None, message: str) -> None:
        await self.send_json({"error": {"code": code, "topic": topic, "message": message}})
