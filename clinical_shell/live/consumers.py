"""The drawing socket of a live session (/ws/live/sessions/<id>/draw/): telestration.

Everyone allowed to watch the session (its creator and invitees, `access.access_live_session`)
connects; on connect they get the drawings still shown ("snapshot"), then every drawing made or
cleared by anyone in the session, live. Each message from a browser is checked again before it
is acted on (access first: an invitee removed a moment ago draws nothing), then the message
itself (`services.parse_annotation`: hostile JSON), then a per-connection rate limit.

Frames from the browser:
    {"type": "draw", "stream": "field", "shape": "arrow" | "circle" | "freehand",
     "points": [[x, y], ...] (0..1), "color": "#ff3b30", "media_time": 12.34}
    {"type": "clear"}                          clears the sender's own drawings
Frames to the browser:
    {"type": "snapshot", "annotations": [...]}, {"type": "drawn", "annotation": {...}},
    {"type": "cleared", "author": user id, "ids": [...]},
    {"type": "error", "code": ..., "message": ...}
Close 4401: not signed in; 4403: not (or no longer) allowed to watch the session.
"""

import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from clinical_shell.audit.context import _origin
from clinical_shell.errors import DomainError
from clinical_shell.live import selectors, services
from clinical_shell.live.models import LiveSession
from clinical_shell.live.socket_guard import (
    CLOSE_FORBIDDEN,
    CLOSE_NOT_SIGNED_IN,
    TokenBucket,
    origin_of,
    session_if_allowed,
)

logger = logging.getLogger(__name__)

# a freehand stroke of MAX_STROKE_POINTS points is about 12 KiB of JSON [bytes]
MAX_FRAME_BYTES = 32 * 1024
# token bucket per connection: a burst of strokes, then a few per second [messages]
RATE_BURST = 20
RATE_PER_S = 5.0


class TelestrationConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    async def connect(self) -> None:
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_SIGNED_IN)
            return
        self.user: User = user
        self.session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        self.group = services.drawing_group(self.session_id)
        self.bucket = TokenBucket(RATE_BURST, RATE_PER_S)
        snapshot = await database_sync_to_async(self._snapshot)()
        if snapshot is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.send(text_data=json.dumps({"type": "snapshot", "annotations": snapshot}))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_FRAME_BYTES:
            await self._error("bad_frame", _("标注消息过大或不是文本"))
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            await self._error("bad_frame", _("无法识别的消息"))
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind not in ("draw", "clear"):
            await self._error("bad_frame", _("无法识别的消息"))
            return
        if not self.bucket.take():
            await self._error("rate_limited", _("标注过于频繁，请稍后再画"))
            return
        result = await database_sync_to_async(self._act)(kind, frame)
        if result is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        if result["type"] == "error":
            # only to the sender: nothing was stored
            await self.send(text_data=json.dumps(result))
            return
        await self.channel_layer.group_send(self.group, {"type": "draw.event", "event": result})

    async def draw_event(self, message: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(message["event"]))

    async def draw_revoke(self, message: dict[str, Any]) -> None:
        """The session ended (user None) or this user was taken off its invitation list."""
        if message["user"] is None or message["user"] == self.user.pk:
            await self.close(code=CLOSE_FORBIDDEN)

    def _session(self) -> LiveSession | None:
        # every message: who may draw can change while the socket is open
        return session_if_allowed(self.user, self.session_id, self.scope)

    def _snapshot(self) -> list[dict[str, Any]] | None:
        session = self._session()
        if session is None:
            return None
        return [selectors.annotation_json(a) for a in selectors.shown_annotations(session)]

    def _act(self, kind: str, frame: dict[str, Any]) -> dict[str, Any] | None:
        session = self._session()
        if session is None:
            return None
        token = _origin.set(origin_of(self.scope))
        try:
            if kind == "clear":
                ids = services.clear_annotations(actor=self.user, session=session)
                return {"type": "cleared", "author": self.user.pk, "ids": ids}
            data = services.parse_annotation(session, frame)
            annotation = services.add_annotation(actor=self.user, session=session, data=data)
            return {"type": "drawn", "annotation": selectors.annotation_json(annotation)}
        except DomainError as exc:
            return {"type": "error", "code": exc.code, "message": exc.message}
        finally:
            _origin.reset(token)

    async def _error(self, code: str, message: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "code": code, "message": message}))
