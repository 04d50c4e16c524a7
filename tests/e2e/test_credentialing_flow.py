"""The issue's whole path in a real browser, with real processes behind: a resident runs the
module a grade-3 privilege requires as a scripted session on the local station (bridge, worker
and station are real children), the replay verifies it; the resident applies, three committee
members vote, the chair's decision grants the privilege; an operation is booked for the
resident; the chair revokes the privilege: the booking is flagged and the next one is refused.

Behind the uvicorn shell (`shell_server`): `osteon bridge serve`, `osteon shell worker` and
`osteon station run --no-realtime`, each a child stopped by its pid.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect, sync_playwright
from pytest_django.fixtures import Settings
from shell_server import child_secrets_env

from bridge.keys import shell_public_key
from clinical_shell.credentialing import services as credentialing
from clinical_shell.credentialing.models import Application, Privilege
from clinical_shell.jobs.worker import worker_environment
from clinical_shell.network import services as network
from clinical_shell.network.models import Institution, Role
from clinical_shell.records import services as records
from clinical_shell.scheduling.models import Booking
from clinical_shell.stations import case_archives
from clinical_shell.stations import services as stations
from clinical_shell.stations.models import SessionResult, Station
from clinical_shell.training import services as training

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
PASSWORD = "Osteon-e2e-2026!"


def _free_port_base() -> int:
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
def lumbar_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small lumbar phantom built into a case bundle (the pedicle scenario resolves on it)."""
    from sim_core.case.build import build_case
    from sim_core.ct.phantom import make_phantom, write_phantom

    root = tmp_path_factory.mktemp("e2e-credentialing-case")
    write_phantom(make_phantom("lumbar", seed=1, slices=40, matrix=96), root / "ct")
    build_case(root / "ct", root / "demo-lumbar-small", spacing_mm=1.0)
    return root / "demo-lumbar-small"


@pytest.fixture
def processes() -> Iterator[list["subprocess.Popen[bytes]"]]:
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


def _logs(folder: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
        for p in sorted(folder.glob("*.log"))
    )


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


def _book(page: Page, base: str, *, patient_id: int, surgeon_id: int, on: date) -> None:
    page.goto(f"{base}/scheduling/new/?patient={patient_id}")
    page.select_option("#id_surgeon", str(surgeon_id))
    page.fill("#id_procedure_name", "腰椎椎弓根螺钉内固定术")
    page.select_option("#id_grade", "3")
    page.fill("#id_scheduled_on", on.isoformat())
    page.click("#booking-form button[type=submit]")


@pytest.mark.django_db(transaction=True)
def test_a_resident_trains_is_granted_books_and_loses_the_privilege(
    shell_server: str,
    settings: Settings,
    lumbar_case: Path,
    processes: list["subprocess.Popen[bytes]"],
    tmp_path: Path,
) -> None:
    # --- the hospital, its committee and rules, the resident and a patient
    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    resident = _person("e2e.resident", "杨住院", center, Role.RESIDENT)
    members = [
        _person(f"e2e.member{i}", f"委员{i}", center, Role.COMMITTEE_MEMBER) for i in range(3)
    ]
    chair = _person("e2e.chair", "普主任", center, Role.COMMITTEE_MEMBER)
    instructor = _person("e2e.instructor", "段带教", center, Role.SURGEON)
    credentialing.set_committee(actor=None, institution=center, chair=chair, quorum=3)
    credentialing.set_institution_licence(
        actor=None, institution=center, hospital_grade=3, max_surgical_grade=4
    )
    credentialing.set_practice_record(
        actor=None, user=resident, practising_since=date(2022, 8, 1), supervisor=instructor
    )
    case = case_archives.archive_for_bundle(lumbar_case)
    module = training.create_module(
        actor=None,
        code="e2e-pedicle",
        title="L4 椎弓根开路",
        scenario="pedicle_pilot_hole",
        case_kind="teaching",
        case_content_hash=case.content_hash,
        pass_score=70,
    )
    training.assign_module(
        actor=instructor,
        module=module,
        trainee=resident,
        due_on=date.today() + timedelta(days=30),
        check=False,
    )
    requirement = credentialing.save_requirement(
        actor=None, grade=3, modules=[(module, 1, 70.0, 365)]
    )
    patient = records.register_patient(
        actor=resident,
        institution=center,
        name="李腰痛",
        sex="M",
        birth_date=date(1966, 5, 2),
    )

    # --- the local station: bridge, worker and station run as real processes
    port = _free_port_base()
    settings.OSTEON_BRIDGE_KEY_DIR = tmp_path / "bridge-keys"
    env = worker_environment()
    # the children hash enrolment codes and sign the audit chain with this process's test keys
    env.update(child_secrets_env(), OSTEON_KEY_DIR=str(tmp_path / "no-key-files"))
    env.update(
        OSTEON_CASE_ARCHIVE_ROOT=str(settings.OSTEON_CASE_ARCHIVE_ROOT),
        OSTEON_STATION_RECORDING_ROOT=str(tmp_path / "recordings"),
        OSTEON_BRIDGE_KEY_DIR=str(settings.OSTEON_BRIDGE_KEY_DIR),
        OSTEON_BRIDGE_PORT=str(port),
        # the worker also makes the replay video, where the server serves it from
        OSTEON_MEDIA_ROOT=str(settings.MEDIA_ROOT),
        OSTEON_REPLAY_VIDEO_FPS="5",
        OSTEON_REPLAY_VIDEO_SIZE="320x200",
    )

    def start(name: str, *args: str) -> None:
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "osteon", *args],
                env=env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=(tmp_path / f"{name}.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    start("bridge", "bridge", "serve", "--port", str(port))
    start("worker", "shell", "worker", "--workers", "2")
    issued = stations.create_enrolment_code(actor=None, institution=center, room="技能中心 1 室")
    station_dir = tmp_path / "station"
    deadline = time.monotonic() + 60
    attempts: list[str] = []
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
        attempts.append(enrolled.stderr[-500:])
        if enrolled.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert enrolled.returncode == 0, "\n".join(attempts[:2]) + _logs(tmp_path)
    station = Station.objects.get()
    start("station", "station", "run", "--dir", str(station_dir), "--no-realtime")

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # the resident runs the module at the station; the replay verifies the score
        _sign_in(page, shell_server, resident.username)
        page.goto(f"{shell_server}/training/")
        page.select_option("#modules select[name=station]", str(station.pk))
        page.click("#modules button[type=submit]")
        page.wait_for_url("**/stations/sessions/*/")
        # the station runs it, the worker replays it: wait for the verdict, then read the page
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            verdict = SessionResult.objects.values_list("verification", flat=True).first()
            if verdict not in (None, SessionResult.Verification.PENDING):
                break
            time.sleep(1)
        result = SessionResult.objects.first()
        assert result is not None, _logs(tmp_path)
        assert result.verification == "verified", (result.rejection_reason, _logs(tmp_path))
        page.reload()
        expect(page.locator("#verification")).to_have_attribute("data-verification", "verified")
        # the committee will want to watch it: the resident asks for the replay video (the
        # worker makes it while the rest goes on)
        page.goto(f"{shell_server}/stations/results/{result.pk}/replay/")
        page.click("#replay-render")

        # eligible now: the resident applies
        page.goto(f"{shell_server}/credentialing/requirements/{requirement.pk}/apply/")
        page.fill("#statement", "已完成椎弓根开路模块")
        page.click("#submit-application")
        application = Application.objects.get(applicant=resident)
        url = f"{shell_server}/credentialing/applications/{application.pk}/"

        # three members vote for, the chair signs the decision
        for i, member in enumerate(members):
            _sign_in(page, shell_server, member.username)
            page.goto(url)
            page.check("input[name=approve][value=yes]")
            page.fill("#comment", f"同意 {i}")
            page.click("#vote-form button[type=submit]")
            expect(page.locator("tr.vote")).to_have_count(i + 1)
        _sign_in(page, shell_server, chair.username)
        page.goto(url)
        page.fill("#note", "同意授予三级手术权限")
        page.click("#decide-button")
        expect(page.locator("#decision")).to_have_attribute("data-granted", "true")
        privilege = Privilege.objects.get(application=application)
        assert (privilege.grade, privilege.status) == (3, Privilege.Status.ACTIVE)

        # the resident books an operation under the new privilege
        _sign_in(page, shell_server, resident.username)
        _book(page, shell_server, patient_id=patient.pk, surgeon_id=resident.pk,
              on=date.today() + timedelta(days=5))  # fmt: skip
        page.wait_for_url("**/scheduling/*/")
        expect(page.locator("#booking-state")).to_have_text("已预约")
        booking = Booking.objects.get()
        assert booking.grade_privilege_id == privilege.pk and not booking.emergency_override

        # the chair revokes the privilege
        _sign_in(page, shell_server, chair.username)
        page.goto(f"{shell_server}/credentialing/privileges/")
        row = page.locator(f'tr[data-privilege="{privilege.pk}"]')
        row.locator("input[name=reason]").fill("术后严重并发症，暂停复核")
        row.locator("select[name=action]").select_option("revoke")
        row.locator("button[type=submit]").click()
        expect(row.locator(".status")).to_have_text("已撤销")

        # the booking not yet performed is flagged; the next one is refused, with the reason
        _sign_in(page, shell_server, resident.username)
        page.goto(f"{shell_server}/scheduling/{booking.pk}/")
        expect(page.locator("#booking-flag")).to_contain_text("术后严重并发症")
        _book(page, shell_server, patient_id=patient.pk, surgeon_id=resident.pk,
              on=date.today() + timedelta(days=6))  # fmt: skip
        refusal = page.locator("#booking-refusal")
        expect(refusal).to_have_attribute("data-code", "privilege_revoked")
        expect(refusal).to_contain_text("已被撤销")
        page.screenshot(path=str(tmp_path / "refused.png"), full_page=True)

        # meanwhile the worker made the replay video: it plays on the result's replay page
        page.goto(f"{shell_server}/stations/results/{result.pk}/replay/")
        try:
            expect(page.locator("#replay")).to_have_attribute(
                "data-state", "ready", timeout=120_000
            )
        except AssertionError:
            raise AssertionError(_logs(tmp_path)) from None
        _video_until(page, "v => v.readyState >= 1", 20)
        assert errors == []
        browser.close()

    booking.refresh_from_db()
    assert booking.state == Booking.State.FLAGGED
    assert Booking.objects.count() == 1
    assert SessionResult.objects.get().verification == SessionResult.Verification.VERIFIED
