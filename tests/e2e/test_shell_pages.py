"""The clinical shell in a real browser: sign in, search by pinyin initials, see a masked ID."""

import os
from datetime import date
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

from clinical_shell.network import services as network
from clinical_shell.network.models import Role
from clinical_shell.records import services as records

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "Osteon-e2e-2026!"


@pytest.mark.django_db(transaction=True)
def test_a_surgeon_signs_in_and_finds_a_patient_by_pinyin(
    shell_server: str, tmp_path: Path
) -> None:
    county = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    person = network.create_person(
        actor=None, username="e2e.surgeon", password=PASSWORD, full_name="王医生", title="attending"
    )
    network.add_membership(actor=None, person=person, institution=county, role=Role.SURGEON)
    records.register_patient(
        actor=person.user,
        institution=county,
        name="张三丰",
        sex="M",
        birth_date=date(1958, 3, 14),
        resident_id="532322195803141230",
    )
    base = shell_server
    # Playwright's sync API runs an event loop in this thread; the ORM is done with by now
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800}, locale="en-US")
        page.goto(f"{base}/accounts/sign-in/")
        assert page.locator("h1").inner_text() == "Sign in"  # the browser's language: none chosen
        page.fill("#id_username", "e2e.surgeon")
        page.fill("#id_password", PASSWORD)
        page.click("button.primary")
        page.wait_for_url("**/patients/")
        page.fill("input[name=q]", "zsf")
        page.click("form.card button.primary")
        row = page.locator("tbody tr").first
        assert "张三丰" in row.inner_text()
        assert "5323**********1230" in row.inner_text()
        assert "532322195803141230" not in page.content()
        shot = tmp_path / "search.png"
        page.screenshot(path=str(shot))
        # the CJK glyphs are drawn (a missing font gives empty boxes of nearly no ink)
        name_box = page.locator("tbody tr a").first.screenshot()
        browser.close()
    assert shot.stat().st_size > 10_000
    pixels = Image.open(BytesIO(name_box)).convert("L")
    dark = sum(pixels.histogram()[:128])
    assert dark > 40, "the patient's name rendered with almost no ink: CJK font missing?"
