"""In a real browser, in Chinese and in English: the audit log names each action in words (the
code beside it), registration refuses a phone number that is not one with the reason on its
field, each page about the patient names her number, and a radiologist, who reads the record
but may not write in it, is not offered a new encounter and is told why when she asks for one.
Screenshots in /tmp/audit-labels-and-phone; no CSP violation, no page error."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from clinical_shell.network import services as network
from clinical_shell.network.models import Role
from clinical_shell.records.models import Patient

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
PASSWORD = "Osteon-e2e-2026!"
SHOTS = Path(os.environ.get("OSTEON_SCREENSHOT_DIR", "/tmp/audit-labels-and-phone"))
WORDS = {
    "zh-CN": {
        "opened": "查看患者档案",
        "phone": "座机须带区号",
        "reader": "没有录入或修改病历的权限",
    },
    "en-US": {
        "opened": "Patient record opened",
        "phone": "a landline needs its area code",
        "reader": "no right to enter or change records",
    },
}


def _people() -> None:
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
    for username, name, institution, role in (
        ("e2e.admin", "吴管理", center, Role.ADMINISTRATOR),
        ("e2e.surgeon", "李医生", county, Role.SURGEON),
        ("e2e.radiologist", "周影像", county, Role.RADIOLOGIST),
    ):
        person = network.create_person(
            actor=None, username=username, password=PASSWORD, full_name=name, title="医师"
        )
        network.add_membership(actor=None, person=person, institution=institution, role=role)


def _sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/sign-in/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/patients/")


@pytest.mark.django_db(transaction=True)
def test_audit_actions_in_words_and_phone_numbers_checked_in_both_languages(
    shell_server: str,
) -> None:
    _people()
    SHOTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for locale, lang in (("zh-CN", "zh"), ("en-US", "en")):
            words = WORDS[locale]
            context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
            page = context.new_page()
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "console",
                lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
            )
            # a surgeon registers a patient: a phone typed as words is refused on its field
            _sign_in(page, shell_server, "e2e.surgeon")
            page.goto(f"{shell_server}/patients/new/")
            page.fill("#id_name", f"赵桂芳{lang}")
            page.select_option("#id_sex", "F")
            page.fill("#id_birth_date", "1952-04-02")
            page.fill("#id_phone", "0878")
            page.click("button.primary")
            expect(page.locator("#id_phone-errors")).to_contain_text(words["phone"])
            page.screenshot(path=str(SHOTS / f"{lang}-registration-phone.png"), full_page=True)
            page.fill("#id_phone", "０８７８ ３１２３４５６")  # full-width, as typed in Chinese
            page.click("button.primary")
            page.wait_for_url("**/patients/*/")
            patient = Patient.objects.get(name=f"赵桂芳{lang}")
            assert patient.phone == "0878-3123456"
            # each page about her names her number under its heading
            page.goto(f"{shell_server}/patients/{patient.pk}/encounters/new/")
            page.fill("#id_chief_complaint", "跌倒后右腕疼痛")
            page.click("button.primary")
            page.wait_for_url(f"**/patients/{patient.pk}/")
            encounter = patient.encounters.get()
            for path, name in (
                ("", "timeline"),
                ("edit/", "edit"),
                ("problems/", "problems"),
                ("encounters/new/", "visit-new"),
                (f"encounters/{encounter.pk}/", "visit"),
            ):
                page.goto(f"{shell_server}/patients/{patient.pk}/{path}")
                expect(page.locator("[data-role=patient-strip]")).to_contain_text(f"#{patient.pk}")
                page.screenshot(path=str(SHOTS / f"{lang}-patient-{name}.png"), full_page=True)
            context.clear_cookies()
            # a radiologist reads her record but may not write in it: not offered, and told why
            _sign_in(page, shell_server, "e2e.radiologist")
            page.goto(f"{shell_server}/patients/{patient.pk}/")
            expect(page.locator("a[href$='/encounters/new/']")).to_have_count(0)
            page.goto(f"{shell_server}/patients/{patient.pk}/encounters/new/")
            expect(page.locator(".banner-error")).to_contain_text(words["reader"])
            page.screenshot(path=str(SHOTS / f"{lang}-refused-reader.png"), full_page=True)
            context.clear_cookies()
            # the administrator reads who opened her record, in words
            _sign_in(page, shell_server, "e2e.admin")
            page.goto(f"{shell_server}/administration/audit/?patient_id={patient.pk}")
            rows = page.locator("table tbody")
            expect(rows).to_contain_text(words["opened"])
            expect(rows.locator("code").first).to_be_visible()
            page.screenshot(path=str(SHOTS / f"{lang}-audit-log.png"), full_page=True)
            context.close()
        browser.close()
    assert problems == []
