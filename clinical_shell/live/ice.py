"""ICE servers for the browsers' voice connections (WebRTC), from the settings.

On one network (a hospital LAN, loopback in tests) browsers reach each other directly and need
none. Across hospital networks (NAT, firewalls) they need a STUN server to learn their public
address and usually a TURN server (coturn) to relay the audio. coturn's shared-secret mode
(``use-auth-secret`` + ``static-auth-secret``) is used so that no lasting TURN password reaches a
browser: the shell hands each page a credential valid for ``OSTEON_TURN_CREDENTIAL_TTL_S``,
username ``<expiry unix seconds>:<user id>``, password base64(HMAC-SHA1(secret, username)) — the
"TURN REST API" coturn checks. See docs/live.md for the coturn configuration.
"""

import base64
import hashlib
import hmac
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User


def turn_credential(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def ice_servers(user: User, *, now_s: float | None = None) -> list[dict[str, Any]]:
    """The RTCPeerConnection ``iceServers`` for `user`'s page; empty when none are configured."""
    servers: list[dict[str, Any]] = []
    if settings.OSTEON_STUN_URLS:
        servers.append({"urls": list(settings.OSTEON_STUN_URLS)})
    if settings.OSTEON_TURN_URLS and settings.OSTEON_TURN_SECRET:
        expiry = int(now_s if now_s is not None else time.time())
        expiry += settings.OSTEON_TURN_CREDENTIAL_TTL_S
        username = f"{expiry}:{user.pk}"
        servers.append(
            {
                "urls": list(settings.OSTEON_TURN_URLS),
                "username": username,
                "credential": turn_credential(settings.OSTEON_TURN_SECRET, username),
            }
        )
    return servers
