"""Two remote experts draw on one live session in real browsers (one in Chinese, one in English):
an arrow drawn by one appears on the other's page; a colleague not invited gets no drawing in;
the creator removes an expert (their pictures stop at once, not when the token runs out), ends
the session, attaches the recording, and the drawing is replayed over it at its time.

Behind the pages: the relay (`python -m streaming.relay`, one ffmpeg test picture at 360p, with
``record_dir``) and the shell (`osteon shell serve`) sharing its secret and recordings folder.
Screenshots in /tmp/live-telestration.
"""

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect, sync_playwright
from pytest_django.fixtures import Settings
from pytest_django.plugin import DjangoDbBlocker
from shell_server import ShellServer, database_url, start_shell_server
from test_live_watch import CHROMIUM, CHROMIUM_ARGS, PASSWORD, _signed_in, _stop

from clinical_shell.live import services as live
from clinical_shell.live.models import LiveAnnotation, LiveSession
from clinical_shell.network import services as network
from clinical_shell.network.models import Role

REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("OSTEON_SCREENSHOT_DIR", "/tmp/live-telestration"))
ROOM = "or-draw"


@dataclass
class DrawStack:
    shell: ShellServer
    relay_url: str
    secret_file: Path
    recordings: Path


@pytest.fixture(scope="module")
def draw_stack(
    django_db_setup: None,
    django_db_blocker: DjangoDbBlocker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DrawStack]:
    folder = tmp_path_factory.mktemp("live-draw")
    (folder / "relay.secret").write_text(secrets.token_urlsafe(48) + "\n", encoding="utf-8")
    recordings = folder / "recordings"
    config = {
        "secret_file": "relay.secret",
        "record_dir": str(recordings),
        "rooms": {ROOM: {"field": {"source": {"kind": "test", "fps": 15}, "qualities": ["360p"]}}},
    }
    (folder / "relay.json").write_text(json.dumps(config), encoding="utf-8")
    relay = subprocess.Popen(
        [sys.executable, "-m", "streaming.relay", "--port", "0", "--config", "relay.json"],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=(folder / "relay.log").open("w"),
        text=True,
    )
    assert relay.stdout is not None
    line = relay.stdout.readline()
    if not line:
        relay.wait(10)
        raise AssertionError((folder / "relay.log").read_text())
    relay_url = f"ws://127.0.0.1:{json.loads(line)['port']}"
    try:
        with django_db_blocker.unblock():
            db_url = database_url()
            db_name = Path(str(settings.DATABASES["default"]["NAME"])).stem
        env = {
            "OSTEON_DATABASE_URL": db_url,
            "OSTEON_STATIC_ROOT": str(REPO / "var" / f"test-static-{db_name}"),
            "OSTEON_STREAM_RELAY_URL": relay_url,
            "OSTEON_STREAM_RELAY_SECRET_FILE": str(folder / "relay.secret"),
            "OSTEON_LIVE_RECORDINGS_DIR": str(recordings),
        }
        if settings.HUEY.get("filename"):
            env["OSTEON_HUEY_PATH"] = str(settings.HUEY["filename"])
        shell = start_shell_server(env=env, log=folder / "server.log")
        try:
            yield DrawStack(shell, relay_url, folder / "relay.secret", recordings)
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
        ("li.center", "李中心", center),
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
            title="股骨近端髓内钉 远程示教",
            room=ROOM,
            streams=["field"],
            invitees=[people["zhao.center"], people["li.center"]],
        ),
    )


def _playing(page: Page) -> None:
    tile = page.locator('.live-tile[data-stream="field"]')
    expect(tile).to_have_attribute("data-state", "playing", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('.live-tile video').currentTime > 0.5", timeout=15_000
    )
    page.wait_for_function("() => window.OsteonTelestration.state() === 'open'", timeout=10_000)


def _drag(page: Page, tool: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Choose ``tool`` and drag over the field picture from ``start`` to ``end`` (0..1)."""
    page.click(f'[data-tool="{tool}"]')
    box = page.locator('.live-tile[data-stream="field"] canvas').bounding_box()
    assert box is not None
    x0, y0 = box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"]
    x1, y1 = box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    for step in range(1, 9):
        page.mouse.move(x0 + (x1 - x0) * step / 8, y0 + (y1 - y0) * step / 8)
    page.mouse.up()
    page.click(f'[data-tool="{tool}"]')  # tool off: a click enlarges the picture again


def _count(page: Page) -> int:
    return int(page.evaluate("() => window.OsteonTelestration.annotations().length"))


@pytest.mark.django_db(transaction=True)
def test_two_experts_see_each_others_drawings_and_an_outsider_draws_nothing(
    draw_stack: DrawStack, settings: Settings
) -> None:
    # this process signs its control messages (the session going live) like the shell does
    settings.OSTEON_STREAM_RELAY_URL = draw_stack.relay_url
    settings.OSTEON_STREAM_RELAY_SECRET = draw_stack.secret_file.read_text().strip()
    session = _people()
    base = draw_stack.shell.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        zhao = _signed_in(browser, base, "zhao.center", "zh-CN", problems)
        li = _signed_in(browser, base, "li.center", "en-US", problems)
        for page in (zhao, li):
            page.goto(f"{base}/live/{session.pk}/")
            _playing(page)

        # 赵 draws an arrow on the field camera; 李 sees it, stamped with the picture's time
        drawn_at = float(zhao.evaluate("() => document.querySelector('video').currentTime"))
        _drag(zhao, "arrow", (0.25, 0.3), (0.55, 0.6))
        li.wait_for_function("() => window.OsteonTelestration.annotations().length === 1")
        arrow = li.evaluate("() => window.OsteonTelestration.annotations()[0]")
        assert (arrow["shape"], arrow["stream"], arrow["author_name"]) == (
            "arrow",
            "field",
            "赵中心",
        )
        (tail, head) = arrow["points"]
        assert abs(tail[0] - 0.25) < 0.02 and abs(head[1] - 0.6) < 0.02
        assert abs(arrow["media_time"] - drawn_at) < 2.0
        expect(li.locator('.live-tile[data-stream="field"] canvas')).to_have_attribute(
            "data-count", "1"
        )
        # a circle and a pen stroke from 赵, an arrow from 李
        _drag(zhao, "circle", (0.7, 0.4), (0.8, 0.4))
        _drag(zhao, "freehand", (0.2, 0.8), (0.5, 0.75))
        _drag(li, "arrow", (0.9, 0.1), (0.65, 0.35))
        for page in (zhao, li):
            page.wait_for_function("() => window.OsteonTelestration.annotations().length === 4")
        zhao.screenshot(path=str(SHOTS / "zh-01-drawing.png"), full_page=True)
        li.screenshot(path=str(SHOTS / "en-01-drawing.png"), full_page=True)

        # a colleague not invited: no page, and the drawing socket refuses them (4403)
        sun = _signed_in(browser, base, "sun.other", "zh-CN", problems)
        close_code = sun.evaluate(
            """url => new Promise(resolve => {
                const ws = new WebSocket(`ws://${location.host}${url}`);
                ws.onopen = () => ws.send(JSON.stringify({type: "draw", stream: "field",
                    shape: "arrow", points: [[0.1, 0.1], [0.9, 0.9]], color: "#ff3b30",
                    media_time: 1}));
                ws.onclose = e => resolve(e.code);
            })""",
            f"/ws/live/sessions/{session.pk}/draw/",
        )
        assert close_code == 4403
        li.wait_for_timeout(500)
        assert _count(li) == 4
        assert LiveAnnotation.objects.filter(session=session).count() == 4
        sun.close()

        # 赵 clears: only 赵's drawings go, on both pages
        zhao.click("#live-draw-clear")
        for page in (zhao, li):
            page.wait_for_function("() => window.OsteonTelestration.annotations().length === 1")
        zhao.screenshot(path=str(SHOTS / "zh-02-cleared.png"), full_page=True)

        # the creator removes 李: pictures and drawing stop now
        wang = _signed_in(browser, base, "wang.county", "zh-CN", problems)
        wang.goto(f"{base}/live/{session.pk}/")
        _playing(wang)
        wang.screenshot(path=str(SHOTS / "zh-03-creator.png"), full_page=True)
        li_pk = session.invitees.get(username="li.center").pk
        wang.locator(f'li[data-invitee="{li_pk}"] button[type="submit"]').click()
        expect(li.locator('.live-tile[data-stream="field"]')).to_have_attribute(
            "data-state", "refused", timeout=3_000
        )
        li.wait_for_function("() => window.OsteonTelestration.state() === 'refused'", timeout=3_000)
        expect(li.locator('[data-role="overlay"]')).to_contain_text(
            "removed from this session's invitation list"
        )
        li.screenshot(path=str(SHOTS / "en-02-removed.png"), full_page=True)
        expect(zhao.locator('.live-tile[data-stream="field"]')).to_have_attribute(
            "data-state", "playing"
        )

        # the creator ends the session; the relay finishes the recording; attach; replay
        wang.click("#live-end")
        wang.wait_for_url(f"**/live/{session.pk}/recordings/")
        expect(zhao.locator('.live-tile[data-stream="field"]')).to_have_attribute(
            "data-state", "refused", timeout=3_000
        )
        expect(zhao.locator('[data-role="overlay"]')).to_have_text("这场直播已经结束。")
        for _ in range(40):
            wang.click("#attach-recordings")
            if wang.locator(".live-recording").count():
                break
            wang.wait_for_timeout(500)
        recording = wang.locator(".live-recording").first
        expect(recording).to_be_visible()
        replay = json.loads(wang.locator("#live-replay-data").text_content() or "{}")
        (drawings,) = replay.values()
        assert len(drawings) == 4
        (shown,) = [
            a
            for items in replay.values()
            for a in items
            if a["shape"] == "arrow" and a["shown_s"] is None
        ]
        for page, lang in ((wang, "zh"), (zhao, "en")):
            if page is zhao:
                page.close()
                page = _signed_in(browser, base, "zhao.center", "en-US", problems)
                page.goto(f"{base}/live/{session.pk}/recordings/")
            video = page.locator(".live-recording video").first
            page.wait_for_function(
                "() => document.querySelector('.live-recording video').readyState >= 1"
            )
            # while it was drawn: everything shown live at that moment (赵's, not yet cleared)
            moment = shown["at"] + 0.3
            live_then = [
                a
                for a in drawings
                if a["at"] <= moment and (a["shown_s"] is None or moment < a["at"] + a["shown_s"])
            ]
            assert len(live_then) >= 1
            video.evaluate("(v, t) => { v.currentTime = t; }", moment)
            canvas = page.locator(".live-recording canvas").first
            expect(canvas).to_have_attribute("data-count", str(len(live_then)), timeout=5_000)
            page.screenshot(path=str(SHOTS / f"{lang}-04-replay.png"), full_page=True)
            # at the end: only 李's arrow, which was never cleared
            video.evaluate("v => { v.currentTime = v.duration - 0.3; }")
            expect(canvas).to_have_attribute("data-count", "1", timeout=5_000)
            # before anything was drawn: nothing
            first = min(a["at"] for a in drawings)
            if first > 1.0:
                video.evaluate("v => { v.currentTime = 0; }")
                expect(canvas).to_have_attribute("data-count", "0", timeout=5_000)
        browser.close()
    assert problems == []
