"""The record on paper: printed from the browser, a patient's timeline and a visit show the
patient, the diagnoses and operations, and none of the screen's navigation, links to other pages,
entry forms or delete buttons. Screenshots (print media, both languages) in /tmp/print-pages."""

import os
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, sync_playwright

from clinical_shell.network import services as network
from clinical_shell.network.models import Role
from clinical_shell.records import services as records

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
PASSWORD = "Osteon-e2e-2026!"
SHOTS = Path("/tmp/print-pages")


def _visible(page: Page, selector: str) -> bool:
    return page.locator(selector).first.is_visible()


@pytest.mark.django_db(transaction=True)
def test_the_record_prints_without_the_screens_controls(shell_server: str) -> None:
    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    county = network.create_institution(
        actor=None,
        code="SB-COUNTY",
        name="双柏县人民医院",
        level="county",
        county="双柏县",
        parent=center,
    )
    person = network.create_person(
        actor=None, username="e2e.print", password=PASSWORD, full_name="王县医", title="医师"
    )
    surgeon = person.user
    network.add_membership(actor=None, person=person, institution=county, role=Role.SURGEON)
    patient = records.register_patient(
        actor=surgeon,
        institution=county,
        name="杨秀英",
        sex="F",
        birth_date=date(1941, 2, 9),
    )
    encounter = records.record_encounter(
        actor=surgeon,
        patient=patient,
        institution=county,
        data=records.EncounterIn(
            kind="inpatient",
            started_at=timezone.now() - timedelta(days=2),
            chief_complaint="跌倒后右髋疼痛、不能行走",
            diagnoses=[records.DiagnosisIn("S72.0", "股骨颈骨折", "31B2.1", True)],
        ),
    )
    SHOTS.mkdir(exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    base = shell_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for locale in ("zh-CN", "en"):
            page = browser.new_page(viewport={"width": 900, "height": 1100}, locale=locale)
            page.goto(f"{base}/accounts/sign-in/")
            page.fill("#id_username", "e2e.print")
            page.fill("#id_password", PASSWORD)
            page.click("button.primary")
            page.wait_for_url("**/patients/")
            visit = f"{base}/patients/{patient.pk}/encounters/{encounter.pk}/"
            page.goto(visit)
            # on screen: the entry form and the delete buttons are there
            assert _visible(page, "#diagnosis-form") and _visible(page, "td.row-actions button")
            page.emulate_media(media="print")
            page.screenshot(path=str(SHOTS / f"encounter-{locale}.png"), full_page=True)
            assert "S72.0" in page.inner_text("#diagnoses")
            for control in (
                "header",
                "nav.breadcrumbs",
                "#diagnosis-form",
                "#procedure-form",
                "td.row-actions",
                f"main a[href='/patients/{patient.pk}/']",
            ):
                assert not _visible(page, control), f"{control} is printed ({locale})"

            page.goto(f"{base}/patients/{patient.pk}/")
            page.screenshot(path=str(SHOTS / f"timeline-{locale}.png"), full_page=True)
            assert "杨秀英" in page.inner_text("main") and "S72.0" in page.inner_text("main")
            for control in (
                f"a[href='/patients/{patient.pk}/problems/']",
                f"a[href='/patients/{patient.pk}/edit/']",
                f"a[href='/imaging/patients/{patient.pk}/']",
                "#patient-plans-link",
                f"a[href='/patients/{patient.pk}/encounters/new/']",
            ):
                assert not _visible(page, control), f"{control} is printed ({locale})"
            page.emulate_media(media="screen")
            assert _visible(page, f"a[href='/patients/{patient.pk}/edit/']")
            page.close()
        browser.close()
