"""A station's own view, live in the shell: the administrator starts it from the station's page
in Chromium, the watch page plays the station's Panda3D picture (time advances), the station
page says it is streaming, and the stop from the page ends it (the picture says signal lost).

Behind the uvicorn shell: `osteon bridge serve` (DjangoShellSide), `osteon station run` with
a small phantom case as its view, and the relay (`python -m streaming.relay`) with the
station's room declared published; each a child stopped by its pid. Screenshots in
/tmp/station-view-live.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from pytest_django.fixtures import Settings
from shell_server import database_url, start_shell_server

from bridge.keys import shell_public_key
from clinical_shell.jobs.worker import worker_environment
from clinical_shell.network import services as network
from clinical_shell.network.models import Role
from clinical_shell.stations import services
from clinical_shell.stations.models import Station, StationStream

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
PASSWORD = "Osteon-e2e-2026!"
SHOTS = Path(os.environ.get("OSTEON_SCREENSHOT_DIR", "/tmp/station-view-live"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_base() -> int:
    """P with P, P+1, P+2 free: the bridge's enrolment, request and telemetry ports."""
    for _ in range(50):
        base = _free_port()
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
    from sim_core.case.build import build_case
    from sim_core.ct.phantom import make_phantom, write_phantom

    root = tmp_path_factory.mktemp("e2e-view-case")
    write_phantom(make_phantom("lumbar", seed=1, slices=40, matrix=96), root / "ct")
    build_case(root / "ct", root / "case", spacing_mm=1.0)
    return root / "case"


@pytest.fixture
def children() -> Iterator[list["subprocess.Popen[bytes]"]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _logs(folder: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
        for p in sorted(folder.glob("*.log"))
    )


def _video(page: Page) -> dict[str, float]:
    return dict(
        page.evaluate(
            """() => {
                const v = document.querySelector('.live-tile[data-stream="view"] video');
                return {time: v.currentTime, width: v.videoWidth, height: v.videoHeight};
            }"""
        )
    )


@pytest.mark.django_db(transaction=True)
def test_the_administrator_streams_the_stations_view_into_a_watch_page_and_stops_it(
    settings: Settings,
    small_case: Path,
    children: list["subprocess.Popen[bytes]"],
    tmp_path: Path,
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    admin = network.create_person(
        actor=None, username="e2e.admin", password=PASSWORD, full_name="李管理", title="none"
    )
    network.add_membership(actor=None, person=admin, institution=center, role=Role.ADMINISTRATOR)

    secret_file = tmp_path / "relay.secret"
    secret_file.write_text(secrets.token_urlsafe(48) + "\n")
    relay_port = _free_port()
    bridge_port = _port_base()
    settings.OSTEON_BRIDGE_KEY_DIR = tmp_path / "bridge-keys"
    relay_env = {
        "OSTEON_STREAM_RELAY_URL": f"ws://127.0.0.1:{relay_port}",
        "OSTEON_STREAM_RELAY_SECRET_FILE": str(secret_file),
    }
    env = worker_environment()
    env.update(
        OSTEON_BRIDGE_KEY_DIR=str(settings.OSTEON_BRIDGE_KEY_DIR),
        OSTEON_BRIDGE_PORT=str(bridge_port),
        **relay_env,
    )

    def start(name: str, *argv: str) -> "subprocess.Popen[bytes]":
        proc = subprocess.Popen(
            list(argv),
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=(tmp_path / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        children.append(proc)
        return proc

    osteon = [sys.executable, "-m", "osteon"]
    start("bridge", *osteon, "bridge", "serve", "--port", str(bridge_port))
    issued = services.create_enrolment_code(actor=None, institution=center, room="技能中心 1 室")
    station_dir = tmp_path / "station"
    deadline = time.monotonic() + 60
    while True:  # the bridge takes a moment to listen
        enrolled = subprocess.run(
            [*osteon, "station", "enroll", "--shell", f"tcp://127.0.0.1:{bridge_port}",
             "--code", issued.code, "--shell-key", shell_public_key(settings.OSTEON_BRIDGE_KEY_DIR),
             "--dir", str(station_dir)],
            env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if enrolled.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert enrolled.returncode == 0, enrolled.stderr + _logs(tmp_path)
    station = Station.objects.get()
    # the relay, with the station's room declared published (as `osteon demo` writes it)
    published = {"source": {"kind": "publish"}, "qualities": ["360p"]}
    config = {
        "secret_file": str(secret_file),
        "rooms": {f"station-{station.pk}": {"view": published}},
    }
    (tmp_path / "relay.json").write_text(json.dumps(config))
    start(
        "relay", sys.executable, "-m", "streaming.relay", "--port", str(relay_port),
        "--config", str(tmp_path / "relay.json"),
    )  # fmt: skip
    start("station", *osteon, "station", "run", "--dir", str(station_dir),
          "--view-case", str(small_case))  # fmt: skip

    server = start_shell_server(
        env={
            "OSTEON_DATABASE_URL": database_url(),
            "OSTEON_STATIC_ROOT": str(REPO / "var" / "test-static-station-view"),
            **relay_env,
        },
        log=tmp_path / "server.log",
    )
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    problems: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "console",
                lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.goto(f"{server.url}/accounts/sign-in/")
            page.fill("#id_username", "e2e.admin")
            page.fill("#id_password", PASSWORD)
            page.click("button.primary")
            page.wait_for_load_state()
            page.goto(f"{server.url}/stations/{station.pk}/")
            presence = page.locator("[data-field=presence]").first
            try:
                expect(presence).to_have_attribute("data-presence", "online", timeout=60_000)
            except AssertionError:
                raise AssertionError(_logs(tmp_path)) from None
            page.screenshot(path=str(SHOTS / "station-before.png"), full_page=True)

            page.click("#stream-start")
            page.wait_for_url("**/live/*/")
            tile = page.locator('.live-tile[data-stream="view"]')
            started = time.monotonic()
            try:
                expect(tile).to_have_attribute("data-state", "playing", timeout=150_000)
                page.wait_for_function(
                    "() => document.querySelector('.live-tile[data-stream=\"view\"] video')"
                    ".currentTime > 0",
                    timeout=30_000,
                )
            except AssertionError:
                raise AssertionError(_logs(tmp_path)) from None
            first_picture_s = time.monotonic() - started
            before = _video(page)
            page.wait_for_timeout(3000)
            after = _video(page)
            assert after["time"] - before["time"] > 1.0, (before, after)
            assert (after["width"], after["height"]) == (640, 360)
            page.screenshot(path=str(SHOTS / "watch-playing.png"), full_page=True)
            stream = StationStream.objects.get()
            assert stream.state == "publishing", (stream.state, stream.error)

            # the station's page says so, in both languages, with the stop button
            english = browser.new_context(
                viewport={"width": 1280, "height": 900},
                locale="en-US",
                storage_state=page.context.storage_state(),
            )
            other = english.new_page()
            other.goto(f"{server.url}/stations/{station.pk}/")
            expect(other.locator("[data-field=stream-state]")).to_have_text("Streaming")
            other.screenshot(path=str(SHOTS / "station-streaming-en.png"), full_page=True)
            english.close()
            chinese = browser.new_context(
                viewport={"width": 1280, "height": 900},
                locale="zh-CN",
                storage_state=page.context.storage_state(),
            )
            station_page = chinese.new_page()
            station_page.goto(f"{server.url}/stations/{station.pk}/")
            expect(station_page.locator("[data-field=stream-state]")).to_have_text("直播中")
            station_page.screenshot(path=str(SHOTS / "station-streaming.png"), full_page=True)
            station_page.click("#stream-stop")
            stopped_at = time.monotonic()
            # the watch page shows the lost signal once the station has stopped publishing
            expect(tile).to_have_attribute("data-state", "lost", timeout=30_000)
            lost_after_s = time.monotonic() - stopped_at
            page.screenshot(path=str(SHOTS / "watch-lost.png"), full_page=True)
            deadline = time.monotonic() + 20
            while StationStream.objects.get().state != "stopped":
                assert time.monotonic() < deadline, StationStream.objects.get().state
                time.sleep(0.3)
            station_page.goto(f"{server.url}/stations/{station.pk}/")
            expect(station_page.locator("[data-field=stream-state]")).to_have_text("已停止")
            station_page.screenshot(path=str(SHOTS / "station-stopped.png"), full_page=True)
            browser.close()
    finally:
        server.stop()
    print(f"first picture {first_picture_s:.1f} s after the click; lost {lost_after_s:.1f} s")
    assert problems == []
