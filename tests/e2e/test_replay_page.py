"""The replay page in a real browser: a committee member asks for the video of a recorded session,
the page follows the background job and shows the video when it is made; the video plays from
the server's byte ranges, and clicking a timeline event seeks it to that moment."""

import os
import time
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect, sync_playwright
from pytest_django.fixtures import Settings

from clinical_shell.jobs.models import Job
from clinical_shell.jobs.running import run_job
from clinical_shell.network import services as network
from clinical_shell.network.models import Institution, Role
from clinical_shell.stations import case_archives
from clinical_shell.stations import services as stations
from clinical_shell.stations.models import ReplayVideo, SessionResult, StationSession
from clinical_shell.stations.replay_video import RENDER_REPLAY_VIDEO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
PASSWORD = "Osteon-e2e-2026!"


@pytest.fixture(scope="module")
def novice_recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    """(case bundle, recording, result) of the scripted novice on a small lumbar phantom."""
    from sim_core.case.build import build_case
    from sim_core.case.bundle import load_bundle
    from sim_core.ct.phantom import make_phantom, write_phantom
    from sim_core.model import model_from_bundle
    from sim_core.replay import play, write_recording
    from sim_core.trajectories import scripted_rows

    root = tmp_path_factory.mktemp("e2e-replay")
    write_phantom(make_phantom("lumbar", seed=1, slices=40, matrix=96), root / "ct")
    build_case(root / "ct", root / "case", spacing_mm=1.0)
    model = model_from_bundle(load_bundle(root / "case"), "pedicle_pilot_hole")
    rows = scripted_rows(model, "novice")
    _state, result = play(model, rows)
    recording = root / "novice.npz"
    write_recording(
        recording,
        model=model,
        rows=rows,
        result=result,
        case_path=root / "case",
        device_name="scripted:novice",
    )
    return root / "case", recording, result.as_dict()


def _person(username: str, name: str, institution: Institution, role: str) -> User:
    person = network.create_person(
        actor=None, username=username, password=PASSWORD, full_name=name, title="attending"
    )
    network.add_membership(actor=None, person=person, institution=institution, role=role)
    return person.user


def _sign_in(page: Page, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/sign-in/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/sign-in" not in url)


def _video_until(page: Page, test: str, timeout_s: float) -> None:
    """Wait until `test` (a JS function of the video element) holds. Polled from here: the
    page's CSP forbids eval, which Playwright's wait_for_function relies on."""
    video = page.locator("#replay-video")
    deadline = time.monotonic() + timeout_s
    while not video.evaluate(test):
        if time.monotonic() > deadline:
            raise AssertionError(f"the replay video never satisfied {test}")
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_the_replay_video_plays_and_a_timeline_event_seeks_it(
    shell_server: str,
    settings: Settings,
    novice_recording: tuple[Path, Path, dict[str, Any]],
    tmp_path: Path,
) -> None:
    case_dir, recording, engine_result = novice_recording
    settings.OSTEON_REPLAY_VIDEO_FPS = 5
    settings.OSTEON_REPLAY_VIDEO_SIZE = (320, 200)
    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    trainee = _person("e2e.trainee", "李学员", center, Role.RESIDENT)
    member = _person("e2e.member", "钱委员", center, Role.COMMITTEE_MEMBER)
    archive = case_archives.archive_for_bundle(case_dir)
    issued = stations.create_enrolment_code(actor=None, institution=center, room="技能中心")
    station = stations.enroll_station(
        code=issued.code,
        curve_public_key="e2e-replay-curve-key".ljust(40, "x"),
        signing_public_key="ab" * 32,
        hostname="e2e",
    )
    session = StationSession.objects.create(
        station=station,
        user=trainee,
        case_hash=archive.archive_hash,
        case_content_hash=archive.content_hash,
        scenario="pedicle_pilot_hole",
        origin=StationSession.Origin.STATION,
        state=StationSession.State.FINISHED,
        uid="e2e-replay-1",
    )
    # a stored result row with the real recording: how results are verified is tested apart
    result = SessionResult.objects.create(
        message_id="e2e-replay-1",
        session=session,
        station=station,
        user=trainee,
        case_hash=archive.archive_hash,
        scenario="pedicle_pilot_hole",
        recording_sha256="00" * 32,
        recording_path=str(recording),
        metrics={},
        score=float(engine_result["score"]),
        passed=bool(engine_result["passed"]),
        final_state_hash=str(engine_result["state_hash"]),
        signature="e2e-row",
        verification=SessionResult.Verification.VERIFIED,
    )
    url = f"{shell_server}/stations/results/{result.pk}/replay/"

    # Playwright's sync API runs an event loop in this thread: the ORM calls below are plain
    # blocking calls made between browser steps (as tests/e2e/test_stations.py does)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        _sign_in(page, shell_server, member.username)
        page.goto(url)
        page.click("#replay-render")
        expect(page.locator("#replay")).to_have_attribute("data-state", "queued")
        # the worker's part, run here: the page follows the job and reloads when it is done
        run_job(Job.objects.get(kind=RENDER_REPLAY_VIDEO).pk)
        assert ReplayVideo.objects.get(result=result).state == ReplayVideo.State.READY
        expect(page.locator("#replay")).to_have_attribute("data-state", "ready", timeout=20_000)

        video = page.locator("#replay-video")
        _video_until(page, "v => v.readyState >= 1", 20)
        duration = float(video.evaluate("v => v.duration"))
        assert abs(duration - 11.9) < 0.5  # the novice's 11.8 s session
        plunge = page.locator("button.seek[data-kind=plunge]").first
        expect(plunge).to_be_visible()
        target = float(plunge.get_attribute("data-t") or "nan")
        plunge.click()
        _video_until(page, f"v => Math.abs(v.currentTime - {target}) < 0.25", 10)
        # seeking needed byte ranges: the video can be played from there
        _video_until(page, "v => v.readyState >= 2", 20)
        page.screenshot(path=str(tmp_path / "replay-zh.png"), full_page=True)
        page.select_option("#language-form select", "en")
        page.wait_for_load_state()
        expect(page.locator("h2", has_text="Metrics timeline")).to_be_visible()
        page.screenshot(path=str(tmp_path / "replay-en.png"), full_page=True)
        assert errors == []
        browser.close()
