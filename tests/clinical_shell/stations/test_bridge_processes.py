"""The whole path with real processes and real sockets: `osteon bridge serve` (the shell's
DjangoShellSide), `osteon station enroll` with a code from the shell, `osteon station run`, and
`osteon shell worker`; a session started through the shell API ends with a verified score."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from station_helpers import EngineSession, StationPersonas

from bridge.keys import shell_public_key
from clinical_shell.jobs.worker import worker_environment
from clinical_shell.stations import case_archives, selectors, services
from clinical_shell.stations.models import SessionResult, Station, StationSession

REPO_ROOT = Path(__file__).resolve().parents[3]


def free_port_base() -> int:
    """A port P with P, P+1 and P+2 free (the bridge's enrolment, request, telemetry ports)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 2 > 65535:
            continue
        try:
            for offset in (1, 2):
                with socket.socket() as t:
                    t.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no three consecutive free ports")


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, procs: list[Any]) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        for proc in procs:
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args[3:5]} exited ({proc.returncode}) before {what}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def shell_env(settings: Any, tmp_path: Path) -> dict[str, str]:
    settings.OSTEON_STATION_RECORDING_ROOT = tmp_path / "recordings"
    settings.OSTEON_CASE_ARCHIVE_ROOT = tmp_path / "archives"
    settings.OSTEON_BRIDGE_KEY_DIR = tmp_path / "bridge-keys"
    port = free_port_base()
    settings.OSTEON_BRIDGE_URL = f"tcp://127.0.0.1:{port}"
    env = worker_environment()
    env.update(
        OSTEON_STATION_RECORDING_ROOT=str(settings.OSTEON_STATION_RECORDING_ROOT),
        OSTEON_CASE_ARCHIVE_ROOT=str(settings.OSTEON_CASE_ARCHIVE_ROOT),
        OSTEON_BRIDGE_KEY_DIR=str(settings.OSTEON_BRIDGE_KEY_DIR),
        OSTEON_BRIDGE_PORT=str(port),
        OSTEON_BRIDGE_URL=settings.OSTEON_BRIDGE_URL,
        PYTHONUNBUFFERED="1",
    )
    return env


class Processes:
    """Children started by the test, each in its own process group, stopped by pid."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str, env: dict[str, str]) -> "subprocess.Popen[bytes]":
        log = (self.tmp_path / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "osteon", *args],
            env=env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.tmp_path.glob("*.log"))
        )

    def stop(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.started:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop()


@pytest.mark.django_db(transaction=True)
def test_a_session_started_from_the_shell_ends_verified_over_the_real_bridge(
    people: StationPersonas,
    shell_network: Any,
    engine_session: EngineSession,
    shell_env: dict[str, str],
    processes: Processes,
    signed_in_client: Any,
    tmp_path: Path,
) -> None:
    port = int(shell_env["OSTEON_BRIDGE_PORT"])
    key_dir = Path(shell_env["OSTEON_BRIDGE_KEY_DIR"])
    case_archives.archive_for_bundle(engine_session.case_dir)
    bridge = processes.start(
        "bridge", "bridge", "serve", "--port", str(port), "--key-dir", str(key_dir), env=shell_env
    )
    worker = processes.start("worker", "shell", "worker", "--workers", "2", env=shell_env)
    wait_for("the bridge to listen", lambda: _listening(port + 1), 60, [bridge])

    # enrol with a one-time code, as an administrator hands it over
    issued = services.create_enrolment_code(
        actor=people.administrator, institution=shell_network.center, room="技能中心 3 室"
    )
    station_dir = tmp_path / "station"
    enrolled = subprocess.run(
        [
            sys.executable, "-m", "osteon", "station", "enroll",
            "--shell", f"tcp://127.0.0.1:{port}",
            "--code", issued.code,
            "--shell-key", shell_public_key(key_dir),
            "--dir", str(station_dir), "--json",
        ],
        env=shell_env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr + processes.logs()
    station = Station.objects.get()
    assert json.loads(enrolled.stdout)["station_id"] == str(station.pk)
    assert station.room == "技能中心 3 室"

    runner = processes.start(
        "station", "station", "run", "--dir", str(station_dir), "--no-realtime", env=shell_env
    )
    try:
        wait_for(
            "the station to show online",
            lambda: selectors.presence_of(Station.objects.get(pk=station.pk)) == "online",
            30,
            [bridge, runner],
        )
        # the surgeon runs the pedicle scenario on the case, for themselves, through the API
        client: Client = signed_in_client(people.surgeon)
        started = client.post(
            "/api/v1/stations/sessions",
            json.dumps(
                {
                    "station_id": station.pk,
                    "case_hash": engine_session.content_hash,
                    "scenario": "pedicle_pilot_hole",
                    "username": people.surgeon.get_username(),
                }
            ),
            content_type="application/json",
        )
        assert started.status_code == 201, started.content
        session_id = started.json()["id"]
        result = wait_for(
            "a verified result",
            lambda: SessionResult.objects.filter(
                session_id=session_id, verification__in=["verified", "rejected"]
            ).first(),
            180,
            [bridge, runner, worker],
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{processes.logs()}") from None
    assert result.verification == "verified", result.rejection_reason
    assert result.user == people.surgeon and result.station_id == station.pk
    session = StationSession.objects.get(pk=session_id)
    assert session.state == "finished"
    assert list(selectors.verified_scores(people.surgeon)) == [result]
    detail = client.get(f"/api/v1/stations/sessions/{session_id}").json()
    assert detail["result"]["verification"] == "verified"

    # revoking it in the shell cuts the running station off within seconds
    admin: Client = signed_in_client(people.administrator)
    revoked = admin.post(
        f"/api/v1/stations/{station.pk}/revoke",
        json.dumps({"reason": "演练吊销"}),
        content_type="application/json",
    )
    assert revoked.status_code == 200
    cut_at = time.monotonic()
    try:
        runner.wait(timeout=10)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"the station still runs 10 s after revocation\n{processes.logs()}"
        ) from None
    assert runner.returncode != 0
    assert time.monotonic() - cut_at < 10


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
