"""The committee page in a real browser: three members vote with comments (the applicant's
supervisor is not offered a vote), the chair decides, and the signed decision and the granted
privilege show; the applicant's learning curve is drawn by the bundled ECharts."""

from datetime import date

import nacl.signing
import pytest
import zmq
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect, sync_playwright

from clinical_shell.credentialing import services
from clinical_shell.credentialing.models import Application, Privilege
from clinical_shell.network import services as network
from clinical_shell.network.models import Institution, Role
from clinical_shell.stations import services as stations
from clinical_shell.stations.models import CaseArchive, SessionResult, StationSession
from clinical_shell.training.models import Module

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
PASSWORD = "Osteon-e2e-2026!"
CASE = "sha256:" + "e2" * 32


def _person(username: str, name: str, institution: Institution, role: str) -> User:
    person = network.create_person(
        actor=None, username=username, password=PASSWORD, full_name=name, title="chief"
    )
    network.add_membership(actor=None, person=person, institution=institution, role=role)
    return person.user


def _verified_row(station_id: int, user: User, score: float, n: int) -> None:
    # a result row in the verified state: how verification happens is the stations app's test
    CaseArchive.objects.get_or_create(
        archive_hash="sha256:archive",
        defaults={"content_hash": CASE, "path": "/nonexistent", "size_bytes": 0, "bundle_path": ""},
    )
    session = StationSession.objects.create(
        station_id=station_id,
        user=user,
        case_hash="sha256:archive",
        case_content_hash=CASE,
        scenario="pedicle_pilot_hole",
        origin=StationSession.Origin.STATION,
        state=StationSession.State.FINISHED,
        uid=f"e2e-cred-{n}",
    )
    SessionResult.objects.create(
        message_id=f"e2e-cred-{n}",
        session=session,
        station_id=station_id,
        user=user,
        case_hash=session.case_hash,
        scenario="pedicle_pilot_hole",
        recording_sha256="00" * 32,
        recording_path="/nonexistent",
        metrics={"time_s": 80.0 - n, "breach_mm": 0.5},
        score=score,
        passed=True,
        final_state_hash="sha256:" + "ab" * 32,
        signature="e2e-row",
        verification=SessionResult.Verification.VERIFIED,
    )


def _sign_in(page: Page, base: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/sign-in/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/sign-in" not in url)


@pytest.mark.django_db(transaction=True)
def test_members_vote_and_the_chair_signs_the_decision(shell_server: str) -> None:
    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    applicant = _person("e2e.applicant", "杨申请", center, Role.SURGEON)
    supervisor = _person("e2e.supervisor", "段上级", center, Role.COMMITTEE_MEMBER)
    members = [
        _person(f"e2e.member{i}", f"委员{i}", center, Role.COMMITTEE_MEMBER) for i in range(3)
    ]
    chair = _person("e2e.chair", "普主任", center, Role.COMMITTEE_MEMBER)
    services.set_committee(actor=None, institution=center, chair=chair, quorum=3)
    services.set_institution_licence(
        actor=None, institution=center, hospital_grade=3, max_surgical_grade=4
    )
    services.set_practice_record(
        actor=None, user=applicant, practising_since=date(2010, 7, 1), supervisor=supervisor
    )
    module = Module.objects.create(
        code="e2e-pedicle",
        title="L4 椎弓根开路",
        scenario="pedicle_pilot_hole",
        case_kind="teaching",
        case_content_hash=CASE,
        pass_score=70,
    )
    requirement = services.save_requirement(
        actor=None, grade=4, min_years_practice=10, modules=[(module, 3, 80.0, 365)]
    )
    issued = stations.create_enrolment_code(actor=None, institution=center, room="技能中心")
    station = stations.enroll_station(
        code=issued.code,
        curve_public_key=zmq.curve_keypair()[0].decode(),
        signing_public_key=nacl.signing.SigningKey.generate().verify_key.encode().hex(),
        hostname="e2e",
    )
    for n, score in enumerate((81.0, 86.5, 93.0)):
        _verified_row(station.pk, applicant, score, n)
    application = services.submit_application(
        actor=applicant, requirement=requirement, institution=center, statement="完成 3 次模拟"
    )
    url = f"{shell_server}/credentialing/applications/{application.pk}/"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))

        # the supervisor sees the application but is offered no vote
        _sign_in(page, shell_server, supervisor.username)
        page.goto(url)
        expect(page.locator("#application")).to_be_visible()
        expect(page.locator("#vote-form")).to_have_count(0)
        expect(page.locator('[data-curve-index="0"]')).to_have_attribute("data-rendered", "true")

        for i, member in enumerate(members):
            _sign_in(page, shell_server, member.username)
            page.goto(url)
            page.check(
                "input[name=approve][value=yes]" if i < 2 else "input[name=approve][value=no]"
            )
            page.fill("#comment", f"意见 {i}")
            page.click("#vote-form button[type=submit]")
            expect(page.locator("tr.vote")).to_have_count(i + 1)
            expect(page.locator("#vote-form")).to_have_count(0)
        expect(page.locator("#approvals")).to_have_text("2")
        expect(page.locator("#refusals")).to_have_text("1")

        _sign_in(page, shell_server, chair.username)
        page.goto(url)
        page.fill("#note", "同意授予四级手术权限")
        page.click("#decide-button")
        expect(page.locator("#decision")).to_have_attribute("data-granted", "true")
        expect(page.locator("#signature-ok")).to_be_visible()
        expect(page.locator("#application")).to_have_attribute("data-status", "granted")
        assert page_errors == []
        browser.close()

    application.refresh_from_db()
    assert application.status == Application.Status.GRANTED
    privilege = Privilege.objects.get(application=application)
    assert (privilege.grade, privilege.status) == (4, Privilege.Status.ACTIVE)
    assert services.verify_decision(application.decision)
