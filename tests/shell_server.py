"""Start `osteon shell serve` (uvicorn, as in production) for a test; stop it by its pid.

Import as `from shell_server import ShellServer, start_shell_server` (tests/ is on sys.path).
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

REPO = Path(__file__).resolve().parent.parent
# a loaded two-core machine imports Django and collects static files slowly
READY_TIMEOUT_S = 120.0


@dataclass
class ShellServer:
    url: str  # http://127.0.0.1:<port> (no trailing slash)
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGTERM to `serve` (which stops its children by pid), then wait; SIGKILL if stuck."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _answers(port: int) -> bool:
    # any HTTP answer will do (a redirect to HTTPS too): none is followed
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/accounts/sign-in/")
        return connection.getresponse().status > 0
    except OSError:
        return False
    finally:
        connection.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url() -> str:
    """The URL of the database this test process uses (pytest-django's test database)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    port = f":{s['PORT']}" if s["PORT"] else ""
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}{port}/{s['NAME']}"


def child_secrets_env() -> dict[str, str]:
    """This test process's secrets as the variables a child process reads."""
    from django.conf import settings

    names = ("OSTEON_ID_HMAC_KEY", "OSTEON_AUDIT_KEY", "OSTEON_AUDIT_SIGNING_KEY")
    return {"OSTEON_SECRET_KEY": settings.SECRET_KEY} | {n: getattr(settings, n) for n in names}


def start_shell_server(
    *, env: dict[str, str], log: Path, extra_args: tuple[str, ...] = ()
) -> ShellServer:
    """`osteon shell serve --no-worker --no-bridge` on a free loopback port, once it answers.

    `env` is laid over this process's environment minus the variables that only mean something
    to pytest; it must name the database (OSTEON_DATABASE_URL) and STATIC_ROOT.
    """
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    child_env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    # the server refuses to start without its secrets: this process's (test) keys, so that the
    # audit chain and resident-ID digests both write stay one; no per-install key files
    child_env.update(child_secrets_env())
    child_env["OSTEON_KEY_DIR"] = str(log.parent / "no-key-files")
    child_env["OSTEON_AUDIT_CHECKPOINT_DIR"] = str(log.parent / "audit-checkpoints")
    child_env.update(env)
    args = ["shell", "serve", "--port", str(port), "--no-worker", "--no-bridge", *extra_args]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "osteon", *args],
            cwd=REPO,
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = ShellServer(url=f"http://127.0.0.1:{port}", process=process, log=log)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"shell server exited ({process.returncode}):\n{log.read_text()}")
        if _answers(port):
            return server
        time.sleep(0.3)
    server.stop()
    raise AssertionError(f"shell server did not answer in {READY_TIMEOUT_S} s:\n{log.read_text()}")
