"""Where the watch page finds the relay, and the secret its admission tokens are signed with.

The secret is shared with the relay (its config's ``secret_file``). It comes from
OSTEON_STREAM_RELAY_SECRET (or its _FILE twin), else from the file at
OSTEON_STREAM_RELAY_SECRET_PATH (default: stream_relay_secret in OSTEON_KEY_DIR), created on
first use (random, mode 600; `osteon shell keys` makes it too). It never leaves the server: the
browser only ever gets a token, which admits one user to one room for a minute.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings

from clinical_shell.env import SettingsError


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
