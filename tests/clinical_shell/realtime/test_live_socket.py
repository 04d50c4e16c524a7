"""/ws/live/ in-process (the ASGI application, the in-memory channel layer, the session cookie).

The same socket over a real uvicorn and Redis is tested in test_live_over_uvicorn.py.
"""

import asyncio
import json
import logging
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings
from shell_personas import Personas

from clinical_shell.asgi import application
from clinical_shell.audit.models import AuditEvent
from clinical_shell.realtime.events import (
    TopicError,
    check_topic,
    group_name,
    predicate_for,
    publish,
    register_topic,
)
from clinical_shell.realtime.notices import user_topic


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user, backend="clinical_shell.accounts.backends.LockoutModelBackend")
    return client.cookies["sessionid"].value


class LiveSocket(ApplicationCommunicator):  # type: ignore[misc]
    """A websocket client speaking ASGI to the application (channels.testing needs daphne)."""

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        scope = {
            "type": "websocket",
            "path": "/ws/live/",
            "query_string": b"",
            "headers": headers,
            "subprotocols": [],
            "client": ("127.0.0.1", 50000),
        }
        super().__init__(application, scope)

    async def connect(self) -> bool:
        await self.send_input({"type": "websocket.connect"})
        return bool((await self.receive_output(10))["type"] == "websocket.accept")

    async def send_json_to(self, frame: dict[str, Any]) -> None:
        await self.send_input({"type": "websocket.receive", "text": json.dumps(frame)})

    async def receive_json_from(self, timeout: float = 10) -> Any:
        output = await self.receive_output(timeout)
        assert output["type"] == "websocket.send", output
        return json.loads(output["text"])

    async def disconnect(self) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(5)


async def connect(cookie: str | None) -> tuple[LiveSocket, bool]:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if cookie is not None:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    socket = LiveSocket(headers)
    return socket, await socket.connect()


async def ask(socket: LiveSocket, frame: dict[str, Any]) -> dict[str, Any]:
    await socket.send_json_to(frame)
    answer: dict[str, Any] = await socket.receive_json_from()
    return answer


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_signed_in_user_receives_what_is_published_to_their_topic(
    personas: Personas,
) -> None:
    user = personas.county_surgeon
    socket, connected = await connect(await sync_to_async(session_cookie)(user))
    assert connected
    topic = user_topic(user.pk)
    assert await ask(socket, {"subscribe": topic}) == {"subscribed": topic}
    # publish() is the sync API the apps call (from a view, a service's on_commit, a task)
    await sync_to_async(publish)(topic, {"kind": "notice", "text": "病历已更新"})
    assert await socket.receive_json_from() == {
        "topic": topic,
        "event": {"kind": "notice", "text": "病历已更新"},
    }
    # after unsubscribing nothing more arrives
    assert await ask(socket, {"unsubscribe": topic}) == {"unsubscribed": topic}
    await sync_to_async(publish)(topic, {"kind": "notice", "text": "again"})
    assert await socket.receive_nothing(timeout=0.5)
    await socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_an_anonymous_connection_is_closed() -> None:
    socket, connected = await connect(None)
    # accepted only to be closed with the application's "not signed in" code
    assert connected
    closed = await socket.receive_output(timeout=10)
    assert closed == {"type": "websocket.close", "code": 4401}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_signing_out_closes_the_sessions_sockets(personas: Personas) -> None:
    user = personas.county_surgeon
    client = Client()
    await sync_to_async(client.force_login)(
        user, backend="clinical_shell.accounts.backends.LockoutModelBackend"
    )
    socket, connected = await connect(client.cookies["sessionid"].value)
    assert connected
    assert await ask(socket, {"subscribe": user_topic(user.pk)}) == {
        "subscribed": user_topic(user.pk)
    }
    # the person signs in elsewhere: the open page is told
    other_socket, _ = await connect(await sync_to_async(session_cookie)(user))
    notice = await socket.receive_json_from()
    assert (notice["topic"], notice["event"]["kind"]) == (user_topic(user.pk), "signed_in")
    # signing out closes this session's socket; the other session keeps its own
    response = await sync_to_async(client.post)(reverse("accounts:sign_out"))
    assert response.status_code == 302
    assert await socket.receive_output(10) == {"type": "websocket.close", "code": 4401}
    assert await other_socket.receive_nothing(timeout=0.5)
    await other_socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_another_persons_topic_is_refused_and_the_refusal_audited(
    personas: Personas,
) -> None:
    user, other = personas.outsider, personas.county_surgeon
    socket, connected = await connect(await sync_to_async(session_cookie)(user))
    assert connected
    answer = await ask(socket, {"subscribe": user_topic(other.pk)})
    assert answer["error"]["code"] == "refused"
    assert answer["error"]["topic"] == user_topic(other.pk)
    # nothing was subscribed: an event on that topic does not reach this socket
    await sync_to_async(publish)(user_topic(other.pk), {"kind": "notice"})
    assert await socket.receive_nothing(timeout=0.5)
    refusals = await database_sync_to_async(list)(
        AuditEvent.objects.filter(action="realtime.subscribe").values(
            "actor_user_id", "outcome", "detail"
        )
    )
    assert refusals == [
        {
            "actor_user_id": user.pk,
            "outcome": "failure",
            "detail": {"topic": user_topic(other.pk)},
        }
    ]
    await socket.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_unknown_and_malformed_topics_and_frames_get_an_error(personas: Personas) -> None:
    socket, connected = await connect(await sync_to_async(session_cookie)(personas.admin))
    assert connected
    assert (await ask(socket, {"subscribe": "nosuchapp.1"}))["error"]["code"] == "unknown_topic"
    assert (await ask(socket, {"subscribe": "job/../1"}))["error"]["code"] == "bad_topic"
    assert (await ask(socket, {"hello": 1}))["error"]["code"] == "bad_frame"
    await socket.disconnect()


def test_the_longest_registered_prefix_decides() -> None:
    def nobody(user: User, topic: str) -> bool:
        return False

    def everybody(user: User, topic: str) -> bool:
        return True

    register_topic("test-ward", nobody)
    register_topic("test-ward.icu", everybody)
    assert predicate_for("test-ward.3") is nobody
    assert predicate_for("test-ward.icu") is everybody
    assert predicate_for("test-ward.icu.bed-4") is everybody
    assert predicate_for("test-wardrobe") is None
    for bad in ("", ".job", "job.", "job 1", "job.42?x=1", "x" * 91):
        with pytest.raises(TopicError):
            check_topic(bad)


def test_publish_from_sync_code_inside_an_event_loop_is_delivered() -> None:
    # e.g. a sync callback run by async code: async_to_sync cannot block that loop itself
    layer = get_channel_layer()

    async def listen_and_publish() -> dict[str, Any]:
        channel = await layer.new_channel()
        await layer.group_add(group_name("user.77"), channel)
        publish("user.77", {"n": 1})
        received: dict[str, Any] = await asyncio.wait_for(layer.receive(channel), 5)
        return received

    message = asyncio.run(listen_and_publish())
    assert (message["topic"], message["event"]) == ("user.77", {"n": 1})


def test_an_unreachable_channel_layer_is_logged_not_raised(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # nothing listens on port 1: the notice is lost, the caller's committed work is not
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    with caplog.at_level(logging.ERROR, logger="clinical_shell.realtime.events"):
        publish("user.5", {"kind": "notice"})
    assert "live message to live.user.5 not sent" in caplog.text


def test_an_event_that_is_not_json_is_refused_at_the_publisher() -> None:
    with pytest.raises(TypeError):
        publish("user.5", {"at": object()})
