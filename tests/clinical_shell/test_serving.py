"""The shell as deployed: Django's deployment checks, and the real uvicorn server (started by
`osteon shell serve`) answering with the security headers, compressed hashed static files, and
live events over a websocket through Redis."""

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import brotli
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings
from pytest_django.plugin import DjangoDbBlocker
from shell_personas import Personas
from shell_server import (
    REPO,
    ShellServer,
    child_secrets_env,
    database_url,
    free_port,
    start_shell_server,
)
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from clinical_shell.audit.models import AuditEvent
from clinical_shell.realtime.events import publish
from clinical_shell.realtime.notices import user_topic
from clinical_shell.realtime.relay import LIVE_RELAY_PATH

# this test's own Redis database (channel layer), apart from the other tests'
REDIS_URL = "redis://127.0.0.1:6379/13"
PRODUCTION_ENV = {
    "OSTEON_SECRET_KEY": "k3Yq-not-a-real-secret-but-long-and-varied-enough-8f2c9d0e7a6b5",
    "OSTEON_SECURE_COOKIES": "true",
    "OSTEON_TRUST_X_FORWARDED_PROTO": "true",
    "OSTEON_DEBUG": "false",
    "OSTEON_ALLOWED_HOSTS": "osteon.chuxiong.example",
}
EXPECTED_HEADERS = {
    "strict-transport-security": "max-age=31536000; includeSubDomains; preload",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "x-frame-options": "DENY",
}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without pytest's and the test database's variables, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "OSTEON_"))
        and k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "DJANGO_SETTINGS_MODULE")
    }
    # the server refuses to start without its secrets: this process's test keys, never the
    # install's key files under var/keys
    env.update(child_secrets_env(), OSTEON_KEY_DIR=str(REPO / "var" / "no-key-files-in-tests"))
    env.update(extra)
    return env


def run_check_deploy(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "clinical_shell/manage.py", "check", "--deploy", "--fail-level", "INFO"],
        cwd=REPO,
        env=clean_env(OSTEON_DATABASE_URL=f"sqlite:///{tmp_path / 'check.sqlite3'}", **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_production_settings(tmp_path: Path) -> None:
    done = run_check_deploy(tmp_path, **PRODUCTION_ENV)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout
    assert "WARNINGS" not in done.stdout + done.stderr


def test_check_deploy_names_what_a_plain_http_setup_lacks(tmp_path: Path) -> None:
    # the same deployment without OSTEON_SECURE_COOKIES: the check must catch it
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "OSTEON_SECURE_COOKIES"}
    done = run_check_deploy(tmp_path, **env)
    assert done.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in done.stderr, done.stderr


@pytest.fixture(scope="module")
def production_server(
    django_db_setup: None,
    django_db_blocker: DjangoDbBlocker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ShellServer]:
    """The shell as behind nginx with TLS, on the test database and this test's Redis."""
    with django_db_blocker.unblock():
        db_url = database_url()
    db_name = Path(str(settings.DATABASES["default"]["NAME"])).stem
    env = {
        **PRODUCTION_ENV,
        # the same key as this process: the sessions it writes must be the server's sessions
        "OSTEON_SECRET_KEY": settings.SECRET_KEY,
        "OSTEON_ALLOWED_HOSTS": "127.0.0.1",
        "OSTEON_DATABASE_URL": db_url,
        "OSTEON_STATIC_ROOT": str(REPO / "var" / f"test-static-{db_name}"),
        "OSTEON_REDIS_URL": REDIS_URL,
    }
    log = tmp_path_factory.mktemp("production-server") / "server.log"
    server = start_shell_server(env=env, log=log)
    yield server
    server.stop()


def fetch(url: str, *, https: bool = True) -> tuple[int, dict[str, str], bytes]:
    """GET without following redirects; headers lower-cased (Set-Cookie lines joined by \\n)."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "br, gzip"})
    if https:
        request.add_header("X-Forwarded-Proto", "https")  # as nginx sets it

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        response = opener.open(request, timeout=30)
    except urllib.error.HTTPError as error:
        response = error
    headers: dict[str, str] = {}
    for name, value in response.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]}\n{value}" if key in headers else value
    return response.status, headers, response.read()


@pytest.mark.django_db
def test_pages_and_api_carry_the_security_headers(production_server: ShellServer) -> None:
    for path, kind in (("/accounts/sign-in/", "text/html"), ("/api/v1/openapi.json", "json")):
        status, headers, _ = fetch(production_server.url + path)
        assert status == 200, path
        assert kind in headers["content-type"]
        for name, value in EXPECTED_HEADERS.items():
            assert headers.get(name) == value, (path, name, headers.get(name))
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "object-src 'none'" in policy
        assert "server" not in headers  # uvicorn does not announce itself
    # the sign-in form's CSRF cookie is sent over HTTPS only
    _, headers, _ = fetch(production_server.url + "/accounts/sign-in/")
    assert re.search(r"csrftoken=[^\n]*; Secure", headers["set-cookie"])
    # plain HTTP is sent to HTTPS
    status, headers, _ = fetch(production_server.url + "/accounts/sign-in/", https=False)
    assert status == 301
    assert headers["location"].startswith("https://127.0.0.1")


@pytest.mark.django_db
def test_static_files_are_hashed_compressed_and_cached_for_good(
    production_server: ShellServer,
) -> None:
    _, _, page = fetch(production_server.url + "/accounts/sign-in/")
    match = re.search(rb'src="(/static/realtime/live\.[0-9a-f]{12}\.js)"', page)
    assert match, "the page links the hashed name collectstatic wrote"
    status, headers, body = fetch(production_server.url + match.group(1).decode())
    assert status == 200
    assert headers["content-encoding"] == "br"
    assert "immutable" in headers["cache-control"]
    assert "max-age=315360000" in headers["cache-control"]
    assert b"OsteonLive" in brotli.decompress(body)


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user, backend="clinical_shell.accounts.backends.LockoutModelBackend")
    return client.cookies["sessionid"].value


def ws_url(server: ShellServer) -> str:
    return server.url.replace("http://", "ws://") + "/ws/live/"


@pytest.mark.django_db(transaction=True)
def test_a_websocket_on_uvicorn_receives_events_published_through_redis(
    production_server: ShellServer, personas: Personas, settings: Settings
) -> None:
    # this process publishes through the same Redis as the server (channels resets its layers
    # when the setting changes)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    user, other = personas.county_surgeon, personas.outsider
    headers = {"Cookie": f"sessionid={session_cookie(user)}", "Origin": production_server.url}
    with connect(ws_url(production_server), additional_headers=headers, open_timeout=30) as ws:
        ws.send(json.dumps({"subscribe": user_topic(user.pk)}))
        assert json.loads(ws.recv(timeout=30)) == {"subscribed": user_topic(user.pk)}
        publish(user_topic(user.pk), {"kind": "notice", "text": "转诊已批准"})
        assert json.loads(ws.recv(timeout=30)) == {
            "topic": user_topic(user.pk),
            "event": {"kind": "notice", "text": "转诊已批准"},
        }
        # another person's topic: refused, audited by the server, nothing delivered
        ws.send(json.dumps({"subscribe": user_topic(other.pk)}))
        refused = json.loads(ws.recv(timeout=30))
        assert refused["error"]["code"] == "refused"
        publish(user_topic(other.pk), {"kind": "notice"})
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1)
    audit = AuditEvent.objects.get(action="realtime.subscribe")
    assert (audit.actor_user_id, audit.outcome) == (user.pk, "failure")
    assert audit.detail == {"topic": user_topic(other.pk)}
    assert audit.source_ip == "127.0.0.1"


@pytest.mark.django_db(transaction=True)
def test_a_websocket_without_a_session_is_closed(production_server: ShellServer) -> None:
    headers = {"Origin": production_server.url}
    with (
        connect(ws_url(production_server), additional_headers=headers, open_timeout=30) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


def test_serve_stops_its_children_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "osteon", "shell", "serve", "--port", str(port)),
            *("--no-worker", "--no-bridge", "--no-collectstatic", "--json"),
        ],
        cwd=REPO,
        env=clean_env(OSTEON_DATABASE_URL=f"sqlite:///{tmp_path / 'serve.sqlite3'}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    announced = json.loads(process.stdout.readline() + b"".join(iter_json(process.stdout)))
    web_pid = announced["pids"]["web"]
    assert announced["url"] == f"http://127.0.0.1:{port}/"
    assert Path(f"/proc/{web_pid}").exists()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    # the uvicorn child was stopped (and reaped) by serve, not left behind
    assert not Path(f"/proc/{web_pid}").exists()


def iter_json(stream: object) -> Iterator[bytes]:
    """The rest of one pretty-printed JSON object (`emit` writes it over several lines)."""
    for line in stream:  # type: ignore[attr-defined]
        yield line
        if line.startswith(b"}"):
            return


@pytest.mark.django_db(transaction=True)
def test_an_event_relayed_by_another_process_reaches_the_websocket(
    production_server: ShellServer, personas: Personas, settings: Settings
) -> None:
    # this process plays the worker or the bridge on one machine: its events go over HTTP
    settings.OSTEON_LIVE_RELAY_URL = production_server.url + LIVE_RELAY_PATH
    user = personas.center_surgeon
    headers = {"Cookie": f"sessionid={session_cookie(user)}", "Origin": production_server.url}
    with connect(ws_url(production_server), additional_headers=headers, open_timeout=30) as ws:
        ws.send(json.dumps({"subscribe": user_topic(user.pk)}))
        assert json.loads(ws.recv(timeout=30)) == {"subscribed": user_topic(user.pk)}
        publish(user_topic(user.pk), {"kind": "job", "progress": 0.5})
        assert json.loads(ws.recv(timeout=30)) == {
            "topic": user_topic(user.pk),
            "event": {"kind": "job", "progress": 0.5},
        }
        # an unsigned (or otherwise signed) request is refused and publishes nothing
        forged = json.dumps({"topic": user_topic(user.pk), "event": {"kind": "forged"}}).encode()
        request = urllib.request.Request(
            production_server.url + LIVE_RELAY_PATH, data=forged, method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 403
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1)
