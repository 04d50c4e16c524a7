"""The voice socket of a live session (/ws/live/sessions/<id>/voice/): WebRTC signalling.

The browsers talk to each other directly (WebRTC audio with the browser's echo cancellation);
the shell only passes their offers, answers and network candidates between the people allowed
in the session (its creator and invitees, `access.access_live_session`), asked again on every
message. Each pair of participants has its own connection (a mesh): fine for the operating room
and a few experts; each page keeps at most `MAX_PEERS` - 1 connections and answers a newcomer
beyond that with "full" (the cap protects each browser's CPU and uplink, so each browser keeps
it; nothing is kept on the server). More people need a media server (docs/live.md).

On connect the socket gets a peer id and the ICE servers (`ice.ice_servers`), and everybody
already in the session's voice gets {"type": "joined"}; each of them then sends the newcomer an
offer (the one already there offers, so two never offer to each other at once).

Frames from the browser:
    {"type": "signal", "to": <peer id>, "kind": "offer" | "answer", "sdp": "..."}
    {"type": "signal", "to": <peer id>, "kind": "candidate",
     "candidate": "...", "sdp_mid": "0" | null, "sdp_mline_index": 0 | null}
    {"type": "signal", "to": <peer id>, "kind": "full"}     (this page has no room for them)
    {"type": "mute", "muted": true | false}
Frames to the browser:
    {"type": "welcome", "peer": id, "ice_servers": [...]},
    {"type": "joined", "peer": id, "name": "..."}, {"type": "left", "peer": id},
    {"type": "signal", "from": id, "name": "...", ...the sender's fields},
    {"type": "muted", "peer": id, "muted": bool}, {"type": "error", "code", "message"}
Close 4401: not signed in; 4403: not (or no longer) allowed in the session.
A participant removed from the session or a session ended closes the socket, and the others
hang up on that peer ("left"): their audio stops, not only their signalling.
"""

import json
import logging
import re
import secrets
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.audit.context import _origin
from clinical_shell.live import ice, selectors, services
from clinical_shell.live.models import LiveSession
from clinical_shell.live.socket_guard import (
    CLOSE_FORBIDDEN,
    CLOSE_NOT_SIGNED_IN,
    TokenBucket,
    origin_of,
    session_if_allowed,
)

logger = logging.getLogger(__name__)

MAX_PEERS = 6
# an SDP offer with audio only is 2-5 KB; video-capable browsers send more lines
MAX_SDP_CHARS = 20_000
MAX_CANDIDATE_CHARS = 1_000
MAX_FRAME_BYTES = MAX_SDP_CHARS + 1_000
# a connection gathers a dozen candidates within a second or two of joining
RATE_BURST = 60
RATE_PER_S = 10.0
_PEER_ID = re.compile(r"^[0-9a-f]{16}$")


class VoiceSignallingConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]  # channels untyped
    async def connect(self) -> None:
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_SIGNED_IN)
            return
        self.user: User = user
        self.session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        self.group = services.voice_group(self.session_id)
        self.peer = secrets.token_hex(8)
        self.bucket = TokenBucket(RATE_BURST, RATE_PER_S)
        if not await database_sync_to_async(self._join)():
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        self.joined = True
        await self.send(
            text_data=json.dumps(
                {
                    "type": "welcome",
                    "peer": self.peer,
                    "max_peers": MAX_PEERS,
                    "ice_servers": ice.ice_servers(self.user),
                }
            )
        )
        await self.channel_layer.group_send(
            self.group,
            {
                "type": "voice.event",
                "event": {"type": "joined", "peer": self.peer, "name": self.name},
            },
        )

    async def disconnect(self, code: int) -> None:
        if not getattr(self, "joined", False):
            return
        self.joined = False
        await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.channel_layer.group_send(
            self.group, {"type": "voice.event", "event": {"type": "left", "peer": self.peer}}
        )
        await database_sync_to_async(self._leave)()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not getattr(self, "joined", False):
            return
        if text_data is None or len(text_data) > MAX_FRAME_BYTES:
            await self._error("bad_frame", _("语音信令消息过大或不是文本"))
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            await self._error("bad_frame", _("无法识别的语音信令消息"))
            return
        event = parse_frame(frame)
        if event is None:
            await self._error("bad_frame", _("无法识别的语音信令消息"))
            return
        if not self.bucket.take():
            await self._error("rate_limited", _("语音信令过于频繁"))
            return
        allowed = await database_sync_to_async(session_if_allowed)(
            self.user, self.session_id, self.scope
        )
        if allowed is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        event["from"] = self.peer
        event["name"] = self.name
        if event["type"] == "muted":
            event["peer"] = self.peer
        await self.channel_layer.group_send(self.group, {"type": "voice.event", "event": event})

    async def voice_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if event.get("peer") == self.peer and event["type"] in ("joined", "left"):
            return
        if event["type"] == "signal" and event.get("to") != self.peer:
            return  # a signal is for one peer; the group only carries it there
        await self.send(text_data=json.dumps(event))

    async def voice_revoke(self, message: dict[str, Any]) -> None:
        """The session ended (user None) or this user was taken off its invitation list."""
        if message["user"] is None or message["user"] == self.user.pk:
            await self.close(code=CLOSE_FORBIDDEN)

    def _join(self) -> bool:
        session = session_if_allowed(self.user, self.session_id, self.scope)
        if session is None:
            return False
        self.name = selectors.author_name(self.user)[:64]
        self._audit(session, "live.voice.join")
        return True

    def _leave(self) -> None:
        session = LiveSession.objects.filter(pk=self.session_id).first()
        if session is not None:
            self._audit(session, "live.voice.leave")

    def _audit(self, session: LiveSession, action: str) -> None:
        token = _origin.set(origin_of(self.scope))
        try:
            audit.record(
                actor=self.user, action=action, target=session, patient_id=session.patient_id
            )
        finally:
            _origin.reset(token)

    async def _error(self, code: str, message: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "code": code, "message": message}))


def parse_frame(frame: Any) -> dict[str, Any] | None:
    """The frame as the event to pass on, with only the fields checked here; None if malformed."""
    if not isinstance(frame, dict):
        return None
    if frame.get("type") == "mute":
        muted = frame.get("muted")
        return {"type": "muted", "muted": muted} if isinstance(muted, bool) else None
    if frame.get("type") != "signal":
        return None
    to, kind = frame.get("to"), frame.get("kind")
    if not isinstance(to, str) or not _PEER_ID.match(to):
        return None
    if kind == "full":
        return {"type": "signal", "to": to, "kind": kind}
    if kind in ("offer", "answer"):
        sdp = frame.get("sdp")
        if not isinstance(sdp, str) or not 0 < len(sdp) <= MAX_SDP_CHARS:
            return None
        return {"type": "signal", "to": to, "kind": kind, "sdp": sdp}
    if kind == "candidate":
        candidate, mid, index = (
            frame.get("candidate"),
            frame.get("sdp_mid"),
            frame.get("sdp_mline_index"),
        )
        if not isinstance(candidate, str) or len(candidate) > MAX_CANDIDATE_CHARS:
            return None
        if mid is not None and (not isinstance(mid, str) or len(mid) > 64):
            return None
        if index is not None and (
            not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 64
        ):
            return None
        return {
            "type": "signal",
            "to": to,
            "kind": kind,
            "candidate": candidate,
            "sdp_mid": mid,
            "sdp_mline_index": index,
        }
    return None
