"""A websocket client speaking ASGI to the shell in-process, for a live session's sockets
(drawing, voice): the in-memory channel layer, a real session cookie."""

import json
from typing import Any

from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.contrib.auth.models import User
from django.test import Client

from clinical_shell.asgi import application


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user, backend="clinical_shell.accounts.backends.LockoutModelBackend")
    return client.cookies["sessionid"].value


class SessionSocket(ApplicationCommunicator):  # type: ignore[misc]
    def __init__(self, path: str, cookie: str | None) -> None:
        headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
        if cookie is not None:
            headers.append((b"cookie", f"sessionid={cookie}".encode()))
        scope = {
            "type": "websocket",
            "path": path,
            "query_string": b"",
            "headers": headers,
            "subprotocols": [],
            "client": ("127.0.0.1", 50000),
        }
        super().__init__(application, scope)

    async def open(self) -> None:
        await self.send_input({"type": "websocket.connect"})
        assert (await self.receive_output(10))["type"] == "websocket.accept"

    async def send_text(self, text: str) -> None:
        await self.send_input({"type": "websocket.receive", "text": text})

    async def send_json(self, frame: dict[str, Any]) -> None:
        await self.send_text(json.dumps(frame))

    async def next(self, timeout: float = 10) -> dict[str, Any]:
        """The next frame, or {"closed": code} when the server closed the socket."""
        output = await self.receive_output(timeout)
        if output["type"] == "websocket.close":
            return {"closed": output.get("code")}
        assert output["type"] == "websocket.send", output
        frame: dict[str, Any] = json.loads(output["text"])
        return frame

    async def close_socket(self) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(5)


async def open_socket(path: str, user: User | None) -> SessionSocket:
    cookie = None if user is None else await sync_to_async(session_cookie)(user)
    socket = SessionSocket(path, cookie)
    await socket.open()
    return socket
