"""ASGI entry point (uvicorn clinical_shell.asgi:application): HTTP pages and API, websockets."""

import os
import warnings
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinical_shell.settings")
# WhiteNoise answers static files with a file iterator, which Django reads in a thread under
# ASGI: correct, but warned about on every such response
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous")
# Django first: the websocket routes import models
django_asgi = get_asgi_application()

from clinical_shell.upload_limits import refuse_oversized_bodies  # noqa: E402

# the upload limit while the body arrives (Django would spool all of it first)
django_asgi = refuse_oversized_bodies(django_asgi)

from clinical_shell.keyfiles import require_configured_secrets  # noqa: E402

# no development default: a server without its secrets does not start
require_configured_secrets()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from clinical_shell.realtime.relay import LIVE_RELAY_PATH, relay_endpoint  # noqa: E402
from clinical_shell.realtime.routing import websocket_urlpatterns  # noqa: E402


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # live events relayed by the worker and the bridge on one machine (realtime/relay.py)
    if scope["path"] == LIVE_RELAY_PATH:
        await relay_endpoint(scope, receive, send)
    else:
        await django_asgi(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http,
        # same-origin browsers only; the session cookie names the user
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
