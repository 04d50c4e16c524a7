"""Live events from the shell's other processes on one machine, without Redis.

The in-memory channel layer lives inside the web server, so an event published by the task
worker or the bridge endpoint (their own processes) would reach nobody. `osteon shell serve`
gives those children OSTEON_LIVE_RELAY_URL (only when there is no Redis); `publish` there POSTs
the event, signed with SECRET_KEY, to this endpoint of the web server, which publishes it in
its own process. With Redis every process publishes to Redis directly and this is unused.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from django.core import signing

from clinical_shell.realtime.events import TopicError, apublish

# answered by clinical_shell.asgi before Django's URL routing (no session, no CSRF: signed)
LIVE_RELAY_PATH = "/internal/live/publish"
_SALT = "osteon.realtime.relay"
# a signed event older than this is refused (a replayed request)
MAX_AGE_S = 60
# an event is small (a job's state, a telemetry sample); refuse anything far larger
MAX_BODY_BYTES = 256 * 1024
_LOOPBACK = {"127.0.0.1", "::1"}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def sign_event(topic: str, event: dict[str, Any]) -> bytes:
    """The request body `relay_endpoint` accepts for (topic, event)."""
    return signing.dumps({"topic": topic, "event": event}, salt=_SALT, compress=True).encode()


async def relay_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """ASGI: POST a signed event from this machine; 204 once published, 403 / 400 / 405 else."""
    client = scope.get("client") or ("", 0)
    if scope["method"] != "POST":
        await _answer(send, 405)
        return
    if client[0] not in _LOOPBACK:
        await _answer(send, 403)
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            await _answer(send, 400)
            return
        if not message.get("more_body"):
            break
    try:
        payload = signing.loads(body.decode(), salt=_SALT, max_age=MAX_AGE_S)
        await apublish(payload["topic"], payload["event"])
    except signing.BadSignature:
        await _answer(send, 403)
        return
    except (KeyError, TypeError, ValueError, TopicError, UnicodeDecodeError):
        await _answer(send, 400)
        return
    await _answer(send, 204)


async def _answer(send: Send, status: int) -> None:
    body = b"" if status == 204 else json.dumps({"status": status}).encode()
    headers = [(b"content-type", b"application/json")] if body else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
