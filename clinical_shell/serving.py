"""`osteon shell serve`: the shell under uvicorn, with the task worker and the bridge endpoint.

A small supervisor. Every part is a child process in a session of its own (a Ctrl-C reaches
the supervisor only, which then stops each child by pid: SIGTERM, then SIGKILL after a grace
period) and dies with the supervisor should that be killed outright (PR_SET_PDEATHSIG). The web
server ending ends `serve`; the worker or the bridge ending is logged and the part restarted
with backoff. In production each part may instead run as its own systemd unit (deploy/).
"""

import ctypes
import fcntl
import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from osteon.console import emit

# seconds a child has to stop after SIGTERM before it is killed
STOP_GRACE_S = 15.0
# uvicorn's own limit for open connections (websockets) when it stops, within the grace above
UVICORN_GRACEFUL_S = 8
# restart backoff for the worker and the bridge: doubles from the first to the last value
RESTART_DELAY_FIRST_S = 1.0
RESTART_DELAY_MAX_S = 30.0
# a part that ran this long before ending starts over from the first delay
RESTART_RESET_AFTER_S = 60.0
_PR_SET_PDEATHSIG = 1


def uvicorn_argv(*, host: str, port: int, workers: int) -> list[str]:
    """The web server's command line: the ASGI app that serves pages, API and websockets."""
    return [
        sys.executable, "-m", "uvicorn", "clinical_shell.asgi:application",
        "--host", host, "--port", str(port), "--workers", str(workers),
        # Django's ASGI handler has no startup/shutdown hooks to run
        "--lifespan", "off",
        # behind nginx on loopback: the client's address from X-Forwarded-For (for the audit)
        "--proxy-headers",
        "--no-server-header",
        "--timeout-graceful-shutdown", str(UVICORN_GRACEFUL_S),
    ]  # fmt: skip


def osteon_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "osteon", *args]


def relay_url(host: str, port: int) -> str:
    """Where the children reach the web server's live-event relay (a wildcard: loopback)."""
    from clinical_shell.realtime.relay import LIVE_RELAY_PATH

    reachable = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
    if ":" in reachable and not reachable.startswith("["):
        reachable = f"[{reachable}]"
    return f"http://{reachable}:{port}{LIVE_RELAY_PATH}"


def command_exists(module: str, name: str) -> bool:
    """Whether the typer app in `module` has the command `name` (parts written in parallel)."""
    try:
        app = importlib.import_module(module).app
    except ImportError:
        return False
    for info in app.registered_commands:
        callback_name = info.callback.__name__ if info.callback is not None else ""
        if (info.name or callback_name.replace("_", "-")) == name:
            return True
    return False


def collect_static(static_root: Path) -> None:
    """collectstatic, quietly, under a lock: two shells starting at once share STATIC_ROOT."""
    from django.core.management import call_command

    static_root.mkdir(parents=True, exist_ok=True)
    with (static_root / ".collectstatic.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        call_command("collectstatic", interactive=False, verbosity=0)


def _die_with_parent() -> None:
    # runs in the child between fork and exec: SIGTERM when the supervisor's thread dies
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Part:
    """One supervised child: its command line, whether its end ends `serve`, and its process."""

    name: str
    argv: list[str]
    essential: bool
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_delay_s: float = RESTART_DELAY_FIRST_S
    restart_at: float | None = None
    restarts: int = field(default=0)
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            env={**os.environ, **self.env},
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self.started_at = time.monotonic()
        self.restart_at = None


class Supervisor:
    """Starts the parts, watches them, stops them all by pid on SIGTERM / SIGINT."""

    def __init__(self, parts: list[Part], *, say: Callable[[str], None]) -> None:
        self.parts = parts
        self.say = say
        self._stop = threading.Event()

    def run(self, on_started: Callable[[dict[str, int]], None]) -> int:
        """Run until a signal or the end of an essential part; the exit code for `serve`.

        `on_started(pids)` is called once every part has been started.
        """
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            for part in self.parts:
                part.start()
            on_started(self.pids())
            return self._watch()
        finally:
            self.stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def pids(self) -> dict[str, int]:
        return {p.name: p.process.pid for p in self.parts if p.process is not None}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()

    def _watch(self) -> int:
        while not self._stop.wait(0.2):
            now = time.monotonic()
            for part in self.parts:
                if part.process is None or part.process.poll() is None:
                    if part.restart_at is not None and now >= part.restart_at:
                        part.restarts += 1
                        self.say(f"重新启动 / restarting {part.name}")
                        part.start()
                    continue
                code = part.process.returncode
                if part.essential:
                    self.say(f"{part.name} 已退出 / exited (code {code}): 停止 / stopping")
                    return code or 1
                self._schedule_restart(part, now, code)
        return 0

    def _schedule_restart(self, part: Part, now: float, code: int) -> None:
        if now - part.started_at >= RESTART_RESET_AFTER_S:
            part.restart_delay_s = RESTART_DELAY_FIRST_S
        self.say(
            f"{part.name} 已退出 / exited (code {code}); "
            f"{part.restart_delay_s:.0f} 秒后重启 / restart in {part.restart_delay_s:.0f} s"
        )
        part.restart_at = now + part.restart_delay_s
        part.restart_delay_s = min(part.restart_delay_s * 2, RESTART_DELAY_MAX_S)
        part.process = None

    def stop_all(self) -> None:
        """SIGTERM every running child by pid, wait, SIGKILL what is left."""
        running = [p.process for p in self.parts if p.process and p.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"强制结束 / killing pid {process.pid}")
                process.kill()
                process.wait()


def serve(
    *,
    host: str,
    port: int,
    workers: int,
    with_worker: bool,
    with_bridge: bool,
    with_collectstatic: bool,
    as_json: bool,
) -> int:
    """Everything `osteon shell serve` does after settings load; returns the exit code."""
    from django.conf import settings

    from osteon.console import CommandError

    if workers > 1 and not settings.OSTEON_REDIS_URL:
        # the in-memory channel layer lives in one process: events would not cross workers
        raise CommandError(
            "多进程需要 Redis / --workers > 1 needs OSTEON_REDIS_URL "
            "(live events cross processes through it)"
        )
    if with_collectstatic:
        collect_static(Path(settings.STATIC_ROOT))
    parts = [Part("web", uvicorn_argv(host=host, port=port, workers=workers), essential=True)]
    # without Redis the worker's and the bridge's live events reach the browsers through the
    # web server (realtime/relay.py)
    relay_env = (
        {} if settings.OSTEON_REDIS_URL else {"OSTEON_LIVE_RELAY_URL": relay_url(host, port)}
    )
    optional = [
        (with_worker, "worker", "clinical_shell.cli", "worker", osteon_argv("shell", "worker")),
        (with_bridge, "bridge", "bridge.cli", "serve", osteon_argv("bridge", "serve")),
    ]
    for wanted, name, module, command, argv in optional:
        if not wanted:
            continue
        if not command_exists(module, command):
            # written in parallel: say so rather than restart a missing command forever
            emit(
                {},
                as_json=False,
                human=f"跳过 / skipping {name}: `{' '.join(argv[2:])}` 尚不存在 / does not exist",
            )
            continue
        parts.append(Part(name, argv, essential=False, env=relay_env))

    def say(line: str) -> None:
        emit({}, as_json=False, human=line)

    url = f"http://{host}:{port}/"

    def announce(pids: dict[str, int]) -> None:
        running = ", ".join(f"{name} pid {pid}" for name, pid in pids.items())
        emit(
            {"url": url, "pids": pids},
            as_json=as_json,
            human=f"临床平台 / clinical shell: {url} ({running}; Ctrl-C 停止 / to stop)",
        )
        sys.stdout.flush()

    return Supervisor(parts, say=say).run(announce)
