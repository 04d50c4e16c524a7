"""Voice between the operating room and a remote expert in real Chromium: fake microphones
(`--use-fake-device-for-media-stream`, a beeping tone), the shell's voice socket for
signalling, WebRTC audio between the two pages on loopback (no STUN or TURN). Audio flows both
ways (WebRTC stats: bytes received on each side), mute is shown to the other side, leaving
hangs up, and an uninvited colleague has no way in. Screenshots in /tmp/live-voice."""

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from test_live_watch import CHROMIUM, CHROMIUM_ARGS, _people, _signed_in

SHOTS = Path(os.environ.get("OSTEON_SCREENSHOT_DIR", "/tmp/live-voice"))
MEDIA_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


def _voice_stats(page: Page) -> list[dict[str, object]]:
    return list(page.evaluate("async () => Object.values(await window.osteonVoice.stats())"))


def _wait_for_audio_both_ways(page: Page, timeout_s: float = 45.0) -> dict[str, object]:
    """The page's one call: connected, and audio bytes both received and sent keep growing."""
    deadline = time.monotonic() + timeout_s
    first: dict[str, object] | None = None
    while time.monotonic() < deadline:
        peers = _voice_stats(page)
        if len(peers) == 1 and peers[0]["state"] == "connected":
            now = peers[0]
            if first is None and int(str(now["received"])) > 0:
                first = now
            elif first is not None and int(str(now["received"])) > int(str(first["received"])):
                assert int(str(now["sent"])) > int(str(first["sent"])), (first, now)
                return now
        page.wait_for_timeout(500)
    raise AssertionError(f"no audio flowing both ways: {_voice_stats(page)}")


@pytest.mark.django_db(transaction=True)
def test_the_operating_room_and_an_expert_talk_both_ways(shell_server: str) -> None:
    session = _people()
    base = shell_server
    SHOTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + MEDIA_ARGS)
        room = _signed_in(browser, base, "wang.county", "zh-CN", problems)
        expert = _signed_in(browser, base, "zhao.center", "en-US", problems)
        for page in (room, expert):
            page.goto(f"{base}/live/{session.pk}/")
            page.click("#live-voice-join")
        expect(room.locator("#live-voice-status")).to_have_text("已加入语音通话")
        expect(expert.locator("#live-voice-status")).to_have_text("Joined the voice call")

        heard_by_room = _wait_for_audio_both_ways(room)
        heard_by_expert = _wait_for_audio_both_ways(expert)
        assert heard_by_room["name"] == "赵中心" and heard_by_expert["name"] == "王县医"
        expect(room.locator("#live-voice-peers li")).to_have_attribute("data-state", "connected")
        room.locator("#live-voice").scroll_into_view_if_needed()
        room.screenshot(path=str(SHOTS / "zh-01-in-call.png"), full_page=True)

        # the expert mutes (their microphone track is disabled): the operating room sees it
        expert.click("#live-voice-mute")
        expect(room.locator("#live-voice-peers li")).to_contain_text("已静音")
        expect(expert.locator("#live-voice-mute")).to_have_text("Unmute")
        expert.screenshot(path=str(SHOTS / "en-02-muted.png"), full_page=True)

        # the expert leaves: the operating room hangs up on them
        expert.click("#live-voice-leave")
        expect(room.locator("#live-voice-peers li")).to_have_count(0)
        expect(expert.locator("#live-voice-status")).to_have_text("Left the voice call")
        assert _voice_stats(room) == []

        outsider = _signed_in(browser, base, "sun.other", "zh-CN", problems)
        response = outsider.goto(f"{base}/live/{session.pk}/")
        assert response is not None and response.status == 403
        expect(outsider.locator("#live-voice-join")).to_have_count(0)
        browser.close()
    assert problems == []
