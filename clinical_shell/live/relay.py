"""Where the watch page finds the relay, and the secret its admission tokens are signed with.

The secret is shared with the relay (its config's ``secret_file``). It comes from
OSTEON_STREAM_RELAY_SECRET (or its _FILE twin), else from the file at
OSTEON_STREAM_RELAY_SECRET_PATH (default: stream_relay_secret in OSTEON_KEY_DIR), created on
first use (random, mode 600; `osteon shell keys` makes it too). It never leaves the server: the
browser only ever gets a token, which admits one user to one room for a minute.

The shell also tells the relay what the browser must not wait a minute for (`send_control`):
a viewer removed from the invitation list, a session ended (its sockets close now, its tokens
stop admitting), a session gone live (record it). One signed message per WebSocket connection
to ``<OSTEON_STREAM_RELAY_URL>/control``; the relay takes control messages from loopback only,
so the shell and the relay run on one machine (see docs/streaming.md "Revocation").
"""

import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from clinical_shell.env import SettingsError
from streaming.tokens import sign_control

log = logging.getLogger("clinical_shell.live")

# a control message is one small frame on loopback: the relay answers at once or is down [s]
CONTROL_TIMEOUT_S = 3.0


def relay_secret() -> bytes:
    """The relay's shared secret (at least 32 bytes; `streaming.tokens` refuses shorter)."""
    configured: str | None = settings.OSTEON_STREAM_RELAY_SECRET
    if configured is not None:
        return configured.strip().encode()
    return _secret_file(relay_secret_path())


def relay_secret_path() -> Path:
    """Where the secret file is (when no variable gives the secret itself)."""
    configured: str | Path | None = settings.OSTEON_STREAM_RELAY_SECRET_PATH
    if configured:
        return Path(configured)
    return Path(settings.OSTEON_KEY_DIR) / "stream_relay_secret"


def room_url(room: str) -> str:
    """The room's address on the relay; a viewer adds ``/streams/<stream>/<quality>?token=``."""
    base: str = settings.OSTEON_STREAM_RELAY_URL
    return f"{base}/rooms/{room}"


def control_url() -> str:
    base: str = settings.OSTEON_STREAM_RELAY_URL
    return f"{base}/control"


def send_control(message: dict[str, Any]) -> bool:
    """Send one control message to the relay; True once the relay acted on it.

    Best effort: a relay that is down or refuses is logged, not raised (the database change it
    follows is committed, and a relay that restarts has dropped every viewer anyway; what is
    left is a token the shell issued before, which expires within a minute).
    """
    signed = sign_control(secret=relay_secret(), message=message)
    try:
        with connect(control_url(), open_timeout=CONTROL_TIMEOUT_S) as ws:
            ws.send(signed)
            answer = json.loads(ws.recv(timeout=CONTROL_TIMEOUT_S))
    except (OSError, TimeoutError, WebSocketException, ValueError) as exc:
        log.warning("relay control %s not delivered: %s", message.get("kind"), exc)
        return False
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        log.error("relay refused control %s: %s", message.get("kind"), answer)
        return False
    return True


def _secret_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: two first requests at once must not write two different secrets
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(secrets.token_urlsafe(48) + "\n")
    value = path.read_bytes().strip()
    if not value:
        raise SettingsError(f"直播中继密钥文件为空 / relay secret file is empty: {path}")
    return value
