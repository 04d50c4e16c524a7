"""Stations in a real browser, with real processes behind: a station enrolled with a code shows
online on the stations page, and a scripted session started from the page ends verified.

Behind the uvicorn shell (`shell_server`): `osteon bridge serve` (the shell's DjangoShellSide),
`osteon shell worker` (replay verification) and `osteon station run --no-realtime`, each a child
stopped by its pid.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright
from pytest_django.fixtures import Settings

from bridge.keys import shell_public_key
from clinical_shell.jobs.worker import worker_environment
from clinical_shell.network import services as network
from clinical_shell.network.models import Role
from clinical_shell.stations import case_archives, services
from clinical_shell.stations.models import SessionResult, Station

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
PASSWORD = "Osteon-e2e-2026!"


def _port_base() -> int:
    """P with P, P+1, P+2 free: the bridge's enrolment, request and telemetry ports."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        try:
            for offset in (1, 2):
                with socket.socket() as t:
                    t.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no three consecutive free ports")


@pytest.fixture(scope="module")
def small_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small lumbar phantom built into a case bundle (a pedicle scenario resolves on it)."""
    from sim_core.case.build import build_case
    from sim_core.ct.phantom import make_phantom, write_phantom

    root = tmp_path_factory.mktemp("e2e-station-case")
    write_phantom(make_phantom("lumbar", seed=1, slices=40, matrix=96), root / "ct")
    build_case(root / "ct", root / "demo-lumbar-small", spacing_mm=1.0)
    return root / "demo-lumbar-small"


@pytest.fixture
def children(tmp_path: Path) -> Iterator[list["subprocess.Popen[bytes]"]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _logs(tmp_path: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
        for p in sorted(tmp_path.glob("*.log"))
    )


@pytest.mark.django_db(transaction=True)
def test_a_station_shows_online_and_a_session_from_the_page_ends_verified(
    shell_server: str,
    settings: Settings,
    small_case: Path,
    children: list["subprocess.Popen[bytes]"],
    tmp_path: Path,
) -> None:
    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    surgeon = network.create_person(
        actor=None, username="e2e.surgeon", password=PASSWORD, full_name="王医生", title="attending"
    )
    network.add_membership(actor=None, person=surgeon, institution=center, role=Role.SURGEON)
    # the case, packed where the shell server and the bridge both read it
    case = case_archives.archive_for_bundle(small_case)

    port = _port_base()
    settings.OSTEON_BRIDGE_KEY_DIR = tmp_path / "bridge-keys"
    env = worker_environment()
    env.update(
        OSTEON_CASE_ARCHIVE_ROOT=str(settings.OSTEON_CASE_ARCHIVE_ROOT),
        OSTEON_STATION_RECORDING_ROOT=str(tmp_path / "recordings"),
        OSTEON_BRIDGE_KEY_DIR=str(settings.OSTEON_BRIDGE_KEY_DIR),
        OSTEON_BRIDGE_PORT=str(port),
    )

    def start(name: str, *args: str) -> "subprocess.Popen[bytes]":
        proc = subprocess.Popen(
            [sys.executable, "-m", "osteon", *args],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=(tmp_path / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        children.append(proc)
        return proc

    start("bridge", "bridge", "serve", "--port", str(port))
    start("worker", "shell", "worker", "--workers", "2")
    issued = services.create_enrolment_code(actor=None, institution=center, room="技能中心 1 室")
    station_dir = tmp_path / "station"
    deadline = time.monotonic() + 60
    while True:  # the bridge takes a moment to listen
        enrolled = subprocess.run(
            [
                sys.executable, "-m", "osteon", "station", "enroll",
                "--shell", f"tcp://127.0.0.1:{port}", "--code", issued.code,
                "--shell-key", shell_public_key(settings.OSTEON_BRIDGE_KEY_DIR),
                "--dir", str(station_dir),
            ],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if enrolled.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert enrolled.returncode == 0, enrolled.stderr + _logs(tmp_path)
    station = Station.objects.get()
    start("station", "station", "run", "--dir", str(station_dir), "--no-realtime")

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860}, locale="zh-CN")
        page.goto(f"{shell_server}/accounts/sign-in/")
        page.fill("#id_username", "e2e.surgeon")
        page.fill("#id_password", PASSWORD)
        page.click("button.primary")
        page.wait_for_url("**/patients/")
        page.click("header nav >> text=模拟工作站")
        page.wait_for_url("**/stations/")
        presence = page.locator(f'[data-station-id="{station.pk}"] [data-field=presence]')
        try:
            expect(presence).to_have_attribute("data-presence", "online", timeout=30_000)
        except AssertionError:
            raise AssertionError(_logs(tmp_path)) from None
        assert presence.inner_text() == "在线"
        page.screenshot(path=str(tmp_path / "stations.png"), full_page=True)

        # run the scripted pedicle scenario on the case at the station, for themselves
        page.click(f'[data-station-id="{station.pk}"] a')
        page.click("text=在此工作站发起训练")
        page.fill("#case_hash", case.content_hash)
        page.select_option("#scenario", "pedicle_pilot_hole")
        page.click("#start-session")
        page.wait_for_url("**/stations/sessions/*/")
        verification = page.locator("#verification")
        try:
            expect(verification).to_have_attribute("data-verification", "verified", timeout=150_000)
        except AssertionError:
            raise AssertionError(_logs(tmp_path)) from None
        assert verification.inner_text() == "已验证"
        page.screenshot(path=str(tmp_path / "session.png"), full_page=True)

        # the station stops: the list shows it offline within seconds, without a reload
        page.goto(f"{shell_server}/stations/")
        expect(presence).to_have_attribute("data-presence", "online", timeout=10_000)
        station_proc = children[-1]
        os.kill(station_proc.pid, signal.SIGTERM)
        station_proc.wait(timeout=15)
        stopped_at = time.monotonic()
        expect(presence).to_have_attribute("data-presence", "offline", timeout=8_000)
        # the bridge calls a station offline after 2.5 s of silence; the page follows within 1 s
        assert time.monotonic() - stopped_at < 6.0
        assert presence.inner_text() == "离线"
        browser.close()
    result = SessionResult.objects.get()
    assert result.verification == "verified" and result.user == surgeon.user
