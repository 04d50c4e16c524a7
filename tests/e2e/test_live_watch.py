"""A remote expert watches a live session in a real browser, in Chinese and in English.

Behind the page: the relay (`python -m streaming.relay`, two ffmpeg test pictures at 360p, a child
stopped by its pid) and the shell (`osteon shell serve`) pointed at it through the environment
(relay URL and the secret file both share). The invited expert's videos play (time advances, the
picture has a size); a source that stalls shows 信号中断 over the picture, then plays again once
the relay has restarted it; an uninvited colleague gets the refusal page. Screenshots in
/tmp/live-watch.
"""

import json
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pytest_django.plugin import DjangoDbBlocker
from shell_server import ShellServer, database_url, start_shell_server

from clinical_shell.live import services as live
from clinical_shell.live.models import LiveSession
from clinical_shell.network import services as network
from clinical_shell.network.models import Role

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
PASSWORD = "Osteon-e2e-2026!"
SHOTS = Path(os.environ.get("OSTEON_SCREENSHOT_DIR", "/tmp/live-watch"))
ROOM = "or-e2e"
# frame rates tell the two encoders apart in their command lines; both small for a 2-core box
FIELD_FPS = 15
ENDOSCOPE_FPS = 10


@dataclass
class LiveStack:
    shell: ShellServer
    relay: "subprocess.Popen[str]"
    relay_log: Path

    def ffmpeg_pid(self, fps: int) -> int:
        # the encoder of one stream, found by its test picture's rate
        for child in psutil.Process(self.relay.pid).children(recursive=True):
            if child.name() == "ffmpeg" and f"rate={fps}" in " ".join(child.cmdline()):
                return int(child.pid)
        raise AssertionError(f"no ffmpeg at {fps} fps:\n{self.relay_log.read_text()}")


def _start_relay(folder: Path) -> tuple["subprocess.Popen[str]", int, Path]:
    (folder / "relay.secret").write_text(secrets.token_urlsafe(48) + "\n", encoding="utf-8")
    config = {
        "secret_file": "relay.secret",
        # a stalled camera counts as lost after this long [s]
        "stall_timeout_s": 2.5,
        "rooms": {
            ROOM: {
                "field": {"source": {"kind": "test", "fps": FIELD_FPS}, "qualities": ["360p"]},
                "endoscope": {
                    "source": {"kind": "test", "fps": ENDOSCOPE_FPS, "audio": False},
                    "qualities": ["360p"],
                },
            }
        },
    }
    (folder / "relay.json").write_text(json.dumps(config), encoding="utf-8")
    log = folder / "relay.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streaming.relay",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--config",
            str(folder / "relay.json"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    assert process.stdout is not None
    # one line once it listens: {"listening": host, "port": N}
    line = process.stdout.readline()
    if not line:
        process.wait(10)
        raise AssertionError(f"the relay did not start:\n{log.read_text()}")
    return process, int(json.loads(line)["port"]), log


def _stop(process: "subprocess.Popen[str]") -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@pytest.fixture(scope="module")
def live_stack(
    django_db_setup: None,
    django_db_blocker: DjangoDbBlocker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveStack]:
    folder = tmp_path_factory.mktemp("live-watch")
    relay, port, relay_log = _start_relay(folder)
    try:
        with django_db_blocker.unblock():
            db_url = database_url()
            db_name = Path(str(settings.DATABASES["default"]["NAME"])).stem
        env = {
            "OSTEON_DATABASE_URL": db_url,
            "OSTEON_STATIC_ROOT": str(REPO / "var" / f"test-static-{db_name}"),
            # the shell signs tokens with the relay's own secret file, for the relay's origin
            "OSTEON_STREAM_RELAY_URL": f"ws://127.0.0.1:{port}",
            "OSTEON_STREAM_RELAY_SECRET_FILE": str(folder / "relay.secret"),
        }
        if settings.HUEY.get("filename"):
            env["OSTEON_HUEY_PATH"] = str(settings.HUEY["filename"])
        shell = start_shell_server(env=env, log=folder / "server.log")
        try:
            yield LiveStack(shell=shell, relay=relay, relay_log=relay_log)
        finally:
            shell.stop()
    finally:
        _stop(relay)


def _people() -> LiveSession:
    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    county = network.create_institution(
        actor=None,
        code="CX-SB",
        name="双柏县人民医院",
        level="county",
        county="双柏县",
        parent=center,
    )
    people = {}
    for username, name, institution in (
        ("wang.county", "王县医", county),
        ("zhao.center", "赵中心", center),
        ("sun.other", "孙同事", county),
    ):
        person = network.create_person(
            actor=None, username=username, password=PASSWORD, full_name=name, title="attending"
        )
        network.add_membership(
            actor=None, person=person, institution=institution, role=Role.SURGEON
        )
        people[username] = person.user
    return live.create_live_session(
        actor=people["wang.county"],
        data=live.LiveSessionIn(
            title="腰椎椎弓根螺钉 模拟训练示教",
            room=ROOM,
            streams=["field", "endoscope"],
            invitees=[people["zhao.center"]],
        ),
    )


def _signed_in(
    browser: Browser, base: str, username: str, locale: str, problems: list[str]
) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 860}, locale=locale)
    page.on("pageerror", lambda e: problems.append(f"{locale}: {e}"))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{base}/accounts/sign-in/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/patients/")
    return page


def _video(page: Page, stream: str) -> dict[str, float]:
    return dict(
        page.evaluate(
            """s => {
                const v = document.querySelector(`.live-tile[data-stream="${s}"] video`);
                return {time: v.currentTime, width: v.videoWidth, height: v.videoHeight};
            }""",
            stream,
        )
    )


def _assert_plays(page: Page, *streams: str) -> None:
    """Each stream's video is playing: its time advances over 3 s and it has the 360p size."""
    for stream in streams:
        tile = page.locator(f'.live-tile[data-stream="{stream}"]')
        expect(tile).to_have_attribute("data-state", "playing", timeout=20_000)
        page.wait_for_function(
            "s => document.querySelector(`.live-tile[data-stream='${s}'] video`).currentTime > 0",
            arg=stream,
            timeout=10_000,
        )
    before = {stream: _video(page, stream) for stream in streams}
    page.wait_for_timeout(3000)
    for stream in streams:
        after = _video(page, stream)
        assert after["time"] - before[stream]["time"] > 1.0, (stream, before[stream], after)
        assert (after["width"], after["height"]) == (640, 360)


@pytest.mark.django_db(transaction=True)
def test_an_invited_expert_watches_the_streams_and_sees_a_lost_signal(
    live_stack: LiveStack,
) -> None:
    session = _people()
    base = live_stack.shell.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # the invited expert, in each language
        for locale, lang, lost in (("zh-CN", "zh", "信号中断"), ("en-US", "en", "Signal lost")):
            page = _signed_in(browser, base, "zhao.center", locale, problems)
            page.goto(f"{base}/live/")
            expect(page.locator(f'tr[data-session-id="{session.pk}"]')).to_be_visible()
            page.goto(f"{base}/live/{session.pk}/")
            _assert_plays(page, "field", "endoscope")
            page.screenshot(path=str(SHOTS / f"{lang}-01-watching.png"), full_page=True)
            # one picture large
            page.locator('.live-tile[data-stream="field"]').click()
            expect(page.locator('.live-tile[data-stream="field"]')).to_have_class(
                re.compile(r"\blarge\b")
            )
            page.screenshot(path=str(SHOTS / f"{lang}-02-large.png"), full_page=True)
            if lang == "zh":
                # the endoscope's encoder hangs (a frozen camera): the relay signals the loss,
                # the page says so over the picture, then plays the restarted source
                endoscope = page.locator('.live-tile[data-stream="endoscope"]')
                os.kill(live_stack.ffmpeg_pid(ENDOSCOPE_FPS), signal.SIGSTOP)
                expect(endoscope).to_have_attribute("data-state", "lost", timeout=15_000)
                expect(endoscope.locator('[data-role="overlay"]')).to_have_text(lost)
                page.screenshot(path=str(SHOTS / f"{lang}-03-signal-lost.png"), full_page=True)
                expect(endoscope).to_have_attribute(
                    "data-state", re.compile("restored|playing"), timeout=20_000
                )
                _assert_plays(page, "endoscope")
                page.screenshot(path=str(SHOTS / f"{lang}-04-restored.png"), full_page=True)
            page.close()

        # a colleague who was not invited
        page = _signed_in(browser, base, "sun.other", "zh-CN", problems)
        response = page.goto(f"{base}/live/{session.pk}/")
        assert response is not None and response.status == 403
        expect(page.locator(".banner-error")).to_contain_text("您不在这场直播的邀请名单中")
        expect(page.locator("video")).to_have_count(0)
        page.screenshot(path=str(SHOTS / "zh-05-not-invited.png"), full_page=True)
        page.close()
        browser.close()
    assert problems == []
    assert "joined /rooms/or-e2e/streams/field/360p" in live_stack.relay_log.read_text()
