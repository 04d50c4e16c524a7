"""Automatic quality on the live watch page, in a real browser against a real relay.

The relay runs the field camera at 720p and 360p and the endoscope at 360p only. The invited
expert's page starts on 自动 (automatic): the field steps up to 720p after a quiet spell (the
endoscope, without a 720p, stays at 360p and keeps playing), drops back to 360p when Chromium's
network is throttled below 720p's bitrate (CDP ``Network.emulateNetworkConditions``), and the
caption says which rung is playing. A rung chosen by hand still works. Screenshots in
/tmp/live-abr.
"""

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect, sync_playwright
from pytest_django.plugin import DjangoDbBlocker
from shell_server import ShellServer, database_url, start_shell_server
from test_live_watch import CHROMIUM, CHROMIUM_ARGS, ROOM, _people, _signed_in, _stop

REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("OSTEON_SCREENSHOT_DIR", "/tmp/live-abr"))
# small rates for a 2-core box: a 720p and two 360p encoders run at once
FPS = 15
# what the throttled link carries [kbit/s]: 360p (800 + 96) fits, 720p (2500 + 128) does not
THROTTLED_KBPS = 2000


@pytest.fixture(scope="module")
def abr_stack(
    django_db_setup: None,
    django_db_blocker: DjangoDbBlocker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ShellServer]:
    folder = tmp_path_factory.mktemp("live-abr")
    (folder / "relay.secret").write_text(secrets.token_urlsafe(48) + "\n", encoding="utf-8")
    config = {
        "secret_file": "relay.secret",
        "rooms": {
            ROOM: {
                "field": {"source": {"kind": "test", "fps": FPS}, "qualities": ["720p", "360p"]},
                "endoscope": {
                    "source": {"kind": "test", "fps": FPS, "audio": False},
                    "qualities": ["360p"],
                },
            }
        },
    }
    (folder / "relay.json").write_text(json.dumps(config), encoding="utf-8")
    relay_log = folder / "relay.log"
    relay = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streaming.relay",
            "--port",
            "0",
            "--config",
            str(folder / "relay.json"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=relay_log.open("w"),
        text=True,
    )
    try:
        assert relay.stdout is not None
        line = relay.stdout.readline()
        assert line, f"the relay did not start:\n{relay_log.read_text()}"
        port = int(json.loads(line)["port"])
        with django_db_blocker.unblock():
            db_url = database_url()
            db_name = Path(str(settings.DATABASES["default"]["NAME"])).stem
        env = {
            "OSTEON_DATABASE_URL": db_url,
            "OSTEON_STATIC_ROOT": str(REPO / "var" / f"test-static-{db_name}"),
            "OSTEON_STREAM_RELAY_URL": f"ws://127.0.0.1:{port}",
            "OSTEON_STREAM_RELAY_SECRET_FILE": str(folder / "relay.secret"),
        }
        if settings.HUEY.get("filename"):
            env["OSTEON_HUEY_PATH"] = str(settings.HUEY["filename"])
        shell = start_shell_server(env=env, log=folder / "server.log")
        try:
            yield shell
        finally:
            shell.stop()
    finally:
        _stop(relay)


def _time(page: Page, stream: str) -> float:
    return float(
        page.evaluate(
            "s => document.querySelector(`.live-tile[data-stream='${s}'] video`).currentTime",
            stream,
        )
    )


def _height(page: Page, stream: str) -> int:
    return int(
        page.evaluate(
            "s => document.querySelector(`.live-tile[data-stream='${s}'] video`).videoHeight",
            stream,
        )
    )


def _player(page: Page, stream: str) -> dict[str, object]:
    # what the tile's player is doing, for a failure message
    return dict(
        page.evaluate(
            """s => {
                const t = document.querySelector(`.live-tile[data-stream='${s}']`);
                const v = t.querySelector("video"), r = v.buffered, b = [];
                for (let i = 0; i < r.length; i++) b.push([r.start(i), r.end(i)]);
                return {time: v.currentTime, buffered: b, ready: v.readyState, paused: v.paused,
                        rate: v.playbackRate, ...t.dataset};
            }""",
            stream,
        )
    )


def _assert_plays(page: Page, stream: str, seconds: float = 2.0) -> None:
    """The stream's time advances by at least half of ``seconds`` within ``seconds``."""
    before = _player(page, stream)
    page.wait_for_timeout(seconds * 1000)
    after = _player(page, stream)
    advanced = float(str(after["time"])) - float(str(before["time"]))
    assert advanced > seconds / 2, f"{before} -> {after}"


@pytest.mark.django_db(transaction=True)
def test_automatic_quality_steps_up_then_down_under_a_slow_link(abr_stack: ShellServer) -> None:
    session = _people()
    base = abr_stack.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = _signed_in(browser, base, "zhao.center", "zh-CN", problems)
        page.goto(f"{base}/live/{session.pk}/")
        field = page.locator('.live-tile[data-stream="field"]')
        endoscope = page.locator('.live-tile[data-stream="endoscope"]')

        # automatic is the default, and starts every tile on the lowest rung
        expect(page.locator("#live-quality")).to_have_value("auto")
        expect(field).to_have_attribute("data-state", "playing", timeout=20_000)
        expect(field.locator('[data-role="quality"]')).to_have_text("正在播放：自动 · 360p")

        # a quiet spell on a fast link: the field steps up; the endoscope has no 720p on the
        # relay (4404) and stays at 360p, playing all along
        expect(field).to_have_attribute("data-quality", "720p", timeout=40_000)
        expect(field.locator('[data-role="quality"]')).to_have_text("正在播放：自动 · 720p")
        page.wait_for_function(
            "() => document.querySelector(`.live-tile[data-stream='field'] video`)"
            ".videoHeight === 720",
            timeout=10_000,
        )
        _assert_plays(page, "field")
        _assert_plays(page, "endoscope")
        expect(endoscope).to_have_attribute("data-quality", "360p")
        expect(endoscope).to_have_attribute("data-state", "playing")
        page.screenshot(path=str(SHOTS / "zh-01-auto-720p.png"), full_page=True)

        # the link narrows below 720p's bitrate: the field drops back to 360p and plays on
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send(
            "Network.emulateNetworkConditions",
            {
                "offline": False,
                "latency": 20,
                "downloadThroughput": THROTTLED_KBPS * 1000 / 8,
                "uploadThroughput": THROTTLED_KBPS * 1000 / 8,
            },
        )
        expect(field).to_have_attribute("data-quality", "360p", timeout=45_000)
        expect(field.locator('[data-role="quality"]')).to_have_text("正在播放：自动 · 360p")
        page.wait_for_function(
            "() => document.querySelector(`.live-tile[data-stream='field'] video`)"
            ".videoHeight === 360",
            timeout=15_000,
        )
        # the new rung's first seconds still share the link with the old one's last
        page.wait_for_timeout(3000)
        _assert_plays(page, "field", 3.0)
        page.screenshot(path=str(SHOTS / "zh-02-auto-throttled-360p.png"), full_page=True)

        # chosen by hand: the field plays that rung, and the caption drops "自动"
        cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        page.select_option("#live-quality", "720p")
        expect(field).to_have_attribute("data-quality", "720p")
        expect(field.locator('[data-role="quality"]')).to_have_text("正在播放：720p")
        expect(field).to_have_attribute("data-state", "playing", timeout=20_000)
        page.wait_for_function(
            "() => document.querySelector(`.live-tile[data-stream='field'] video`)"
            ".videoHeight === 720",
            timeout=15_000,
        )
        _assert_plays(page, "field")
        page.screenshot(path=str(SHOTS / "zh-03-manual-720p.png"), full_page=True)
        page.close()

        # the English page names the choice in English
        page = _signed_in(browser, base, "zhao.center", "en-US", problems)
        page.goto(f"{base}/live/{session.pk}/")
        expect(page.locator("#live-quality option[value='auto']")).to_have_text("Auto")
        expect(
            page.locator('.live-tile[data-stream="endoscope"] [data-role="quality"]')
        ).to_have_text("Playing: Auto · 360p")
        expect(page.locator('.live-tile[data-stream="endoscope"]')).to_have_attribute(
            "data-state", "playing", timeout=20_000
        )
        page.screenshot(path=str(SHOTS / "en-01-auto.png"), full_page=True)
        page.close()
        browser.close()
    assert problems == []
