"""Administration in a real browser, in Chinese and in English: an administrator edits an
institution (every error shown at once, then saved, its history listed), issues an enrolment code
(shown once, with its expiry) and revokes a station after confirming. Breadcrumbs on each page;
no CSP violation, no page error. Screenshots in /tmp/administration-pages."""

import os
import re
from pathlib import Path

import nacl.signing
import pytest
import zmq
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect, sync_playwright

from clinical_shell.network import services as network
from clinical_shell.network.models import Institution, Role
from clinical_shell.stations import services as stations
from clinical_shell.stations.models import Station

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
PASSWORD = "Osteon-e2e-2026!"
SHOTS = Path(os.environ.get("OSTEON_SCREENSHOT_DIR", "/tmp/administration-pages"))

WORDS = {
    "zh-CN": {
        "home": "首页",
        "errors": "请更正下面标红的字段。",
        "latitude": "纬度须在 -90 到 90 之间",
        "revoked": "已吊销",
        "code_title": "新注册码（仅显示这一次）",
    },
    "en-US": {
        "home": "Home",
        "errors": "Please correct the fields marked in red.",
        "latitude": "Latitude must be between -90 and 90",
        "revoked": "Revoked",
        "code_title": "New enrolment code (shown this once only)",
    },
}


def _network() -> tuple[Institution, Institution]:
    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    county = network.create_institution(
        actor=None,
        code="CX-YR",
        name="永仁县人民医院",
        level="county",
        county="永仁县",
        parent=center,
    )
    person = network.create_person(
        actor=None, username="e2e.admin", password=PASSWORD, full_name="吴管理", title="none"
    )
    network.add_membership(actor=None, person=person, institution=center, role=Role.ADMINISTRATOR)
    return center, county


def _station(institution: Institution, hostname: str) -> Station:
    admin = User.objects.get(username="e2e.admin")
    issued = stations.create_enrolment_code(actor=admin, institution=institution, room="技能室")
    public, _secret = zmq.curve_keypair()
    return stations.enroll_station(
        code=issued.code,
        curve_public_key=public.decode(),
        signing_public_key=nacl.signing.SigningKey.generate().verify_key.encode().hex(),
        hostname=hostname,
    )


def _signed_in(browser: Browser, base: str, locale: str, problems: list[str]) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale=locale)
    page.on("pageerror", lambda e: problems.append(f"{locale}: {e}"))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{base}/accounts/sign-in/")
    page.fill("#id_username", "e2e.admin")
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/patients/")
    return page


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_an_administrator_edits_an_institution_and_manages_stations_in_both_languages(
    shell_server: str,
) -> None:
    _center, county = _network()
    stations_by_locale = {
        "zh-CN": _station(county, "yr-sim-01"),
        "en-US": _station(county, "yr-sim-02"),
    }
    SHOTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for locale, lang in (("zh-CN", "zh"), ("en-US", "en")):
            words = WORDS[locale]
            page = _signed_in(browser, shell_server, locale, problems)
            _shot(page, f"{lang}-00-patient-search")

            page.goto(f"{shell_server}/administration/")
            expect(page.locator("nav.breadcrumbs li").first).to_have_text(words["home"])
            _shot(page, f"{lang}-01-index")
            page.goto(f"{shell_server}/administration/institutions/")
            _shot(page, f"{lang}-02-institutions")

            # a new township centre under the county hospital
            page.click("#new-institution")
            page.wait_for_url("**/administration/institutions/new/")
            _shot(page, f"{lang}-02-institution-new")
            page.fill("#id_code", f"YR-T-{lang.upper()}")
            page.fill("#id_name", f"永仁县永定镇卫生院 {lang}")
            page.fill("#id_county", "永仁县")
            page.select_option("#id_parent_id", str(county.pk))
            page.click("button.primary")
            page.wait_for_url(re.compile(r".*/administration/institutions/\d+/$"))
            expect(page.locator("h1")).to_contain_text(f"永仁县永定镇卫生院 {lang}")

            # every error at once, nothing saved
            page.goto(f"{shell_server}/administration/institutions/{county.pk}/edit/")
            _shot(page, f"{lang}-03-institution-edit")
            page.fill("#id_name", "")
            page.fill("#id_longitude", "101.68")
            page.fill("#id_latitude", "95")
            page.click("button.primary")
            expect(page.locator("#form-errors")).to_contain_text(words["errors"])
            expect(page.locator("ul.errorlist")).to_have_count(2)
            expect(page.locator("#id_latitude-errors")).to_have_text(words["latitude"])
            expect(page.locator("#id_name")).to_have_attribute("aria-invalid", "true")
            _shot(page, f"{lang}-04-institution-errors")
            # corrected: saved, and the page lists the change
            page.fill("#id_name", "永仁县人民医院")
            page.fill("#id_name_en", "Yongren County People's Hospital")
            page.fill("#id_latitude", "26.06")
            page.click("button.primary")
            page.wait_for_url(f"**/administration/institutions/{county.pk}/")
            expect(page.locator("#institution-history tbody tr").first).to_contain_text("26.06")
            _shot(page, f"{lang}-05-institution-saved")

            # an enrolment code, shown once with its expiry
            page.goto(f"{shell_server}/administration/stations/")
            page.select_option("#institution", str(county.pk))
            page.fill("#room", "骨科示教室")
            page.click("#create-code")
            expect(page.locator("#issued-code h2")).to_have_text(words["code_title"])
            code = page.locator("#enrolment-code").inner_text()
            assert re.fullmatch(r"[A-Z0-9]{4}(-[A-Z0-9]{4}){3}", code)
            expect(page.locator("#enrolment-code-expiry")).to_contain_text(
                re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
            )
            _shot(page, f"{lang}-06-stations-code-issued")
            page.goto(f"{shell_server}/administration/stations/")
            expect(page.locator("#enrolment-code")).to_have_count(0)

            # revoke after confirming
            station = stations_by_locale[locale]
            row = page.locator(f'tr[data-station-id="{station.pk}"]')
            row.locator("a").click()
            page.wait_for_url(f"**/stations/{station.pk}/revoke/")
            _shot(page, f"{lang}-07-station-revoke")
            page.fill("#reason", "主机报废 / computer retired")
            page.click("#confirm-revoke")
            page.wait_for_url("**/administration/stations/")
            expect(page.locator(f'tr[data-station-id="{station.pk}"]')).to_contain_text(
                words["revoked"]
            )
            _shot(page, f"{lang}-08-stations-after-revoke")
            page.close()
        browser.close()
    assert problems == []
    for station in stations_by_locale.values():
        station.refresh_from_db()
        assert station.is_revoked
