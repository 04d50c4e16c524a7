"""Sign-in pages in Chromium against the production server: set up an authenticator from the
QR page, sign in in two steps with a recovery code, and find that code spent the second time."""

import os
from pathlib import Path

import pyotp
import pytest
from playwright.sync_api import Page, sync_playwright

from clinical_shell.network import services as network
from clinical_shell.network.models import Role

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
USERNAME, PASSWORD = "e2e.totp", "Osteon-e2e-2026!"


def _sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/accounts/sign-in/")
    # the first step asks for name and password only
    assert page.locator("input[name=code]").count() == 0
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("main button.primary")


def _sign_out(page: Page) -> None:
    page.click("header form[action$='/sign-out/'] button")
    page.wait_for_url("**/accounts/sign-in/")


@pytest.mark.django_db(transaction=True)
def test_enrol_an_authenticator_and_sign_in_with_a_recovery_code_once(
    shell_server: str, tmp_path: Path
) -> None:
    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    person = network.create_person(
        actor=None, username=USERNAME, password=PASSWORD, full_name="李医生", title="attending"
    )
    network.add_membership(actor=None, person=person, institution=center, role=Role.SURGEON)
    base = shell_server
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="zh-CN")
        blocked: list[str] = []
        page.on(
            "console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None
        )
        _sign_in(page, base)
        page.wait_for_url("**/patients/")

        # enrolment: the QR code is drawn by the server (an <svg>), the key shown once
        page.goto(f"{base}/accounts/security/")
        page.click("#totp-begin")
        assert page.locator("#totp-qr svg").is_visible()
        secret = page.locator("#totp-secret").inner_text().strip()
        page.screenshot(path=str(tmp_path / "enrol-zh.png"), full_page=True)
        page.fill("#confirm-code", pyotp.TOTP(secret).now())
        page.click("#totp-enrolment button.primary")
        # all_inner_texts does not wait: wait for the page the confirmation loads
        page.locator("#recovery-codes li").first.wait_for()
        codes = page.locator("#recovery-codes li").all_inner_texts()
        assert len(codes) == 10
        page.screenshot(path=str(tmp_path / "codes-zh.png"), full_page=True)
        page.goto(f"{base}/accounts/security/")
        assert (
            page.locator("#totp-secret").count() == 0
            and page.locator("#recovery-codes").count() == 0
        )
        _sign_out(page)

        # sign-in now takes a second step; a recovery code stands in for the phone
        _sign_in(page, base)
        page.wait_for_url("**/accounts/sign-in/code/")
        page.screenshot(path=str(tmp_path / "second-step-zh.png"), full_page=True)
        page.fill("#id_code", codes[0])
        page.click("main button.primary")
        page.wait_for_url("**/patients/")
        _sign_out(page)

        # the same recovery code a second time is refused; another one works
        _sign_in(page, base)
        page.wait_for_url("**/accounts/sign-in/code/")
        page.fill("#id_code", codes[0])
        page.click("main button.primary")
        assert page.locator("#sign-in-error").is_visible()
        assert "/accounts/sign-in/code/" in page.url
        page.fill("#id_code", codes[1])
        page.click("main button.primary")
        page.wait_for_url("**/patients/")
        browser.close()
    assert blocked == []
