"""The quality office in a real browser: the network dashboard shows an alarm with the counts
behind it, the charts (sparklines, network map) render from the bundled ECharts, a drill-down
lists the cases behind the figure, and the warning is acknowledged with an action note and
closed. Screenshots in Chinese and English under /tmp/quality-shots. No CSP violation."""

import importlib
import os
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from playwright.sync_api import Browser, Page, sync_playwright

from clinical_shell.network import services as network
from clinical_shell.network.models import Role
from clinical_shell.quality import services
from clinical_shell.quality.models import ClinicalFact, IndicatorDefinition, QualityWarning
from clinical_shell.records import services as records
from clinical_shell.records.models import Encounter

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
PASSWORD = "Osteon-e2e-2026!"
SHOTS = Path("/tmp/quality-shots")
CODE = "ssi-clean-30d"
TZ = ZoneInfo("Asia/Shanghai")


def _seed_indicators() -> None:
    """The indicators seeded by the data migration: a transactional test before may have
    flushed them."""
    if not IndicatorDefinition.objects.exists():
        importlib.import_module("clinical_shell.quality.migrations.0002_seed_indicators").seed(
            apps, None
        )


def _signed_in(
    browser: Browser, base: str, username: str, locale: str, violations: list[str]
) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale=locale)
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{base}/accounts/sign-in/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/patients/")
    return page


@pytest.mark.django_db(transaction=True)
def test_quality_office_sees_alarm_drills_down_and_acknowledges(shell_server: str) -> None:
    _seed_indicators()
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
    # more of the network, so that the map draws its outline around them
    network.create_institution(
        actor=None,
        code="CX-SB-T1",
        name="双柏县妥甸镇卫生院",
        level="township",
        county="双柏县",
        parent=county,
    )
    network.create_institution(
        actor=None,
        code="CX-YR",
        name="永仁县人民医院",
        level="county",
        county="永仁县",
        parent=center,
    )
    network.create_institution(
        actor=None,
        code="CX-WD",
        name="武定县人民医院",
        level="county",
        county="武定县",
        parent=center,
    )
    person = network.create_person(
        actor=None, username="e2e.quality", password=PASSWORD, full_name="周质控", title="none"
    )
    network.add_membership(actor=None, person=person, institution=center, role=Role.QUALITY_MANAGER)
    surgeon = network.create_person(
        actor=None, username="e2e.surgeon", password=PASSWORD, full_name="赵骨科", title="chief"
    )
    network.add_membership(actor=None, person=surgeon, institution=center, role=Role.SURGEON)
    t = datetime(2026, 1, 5, 8, tzinfo=TZ)
    names = ["杨秀英", "李桂兰", "张德明", "王建国"]
    for index, name in enumerate(names):
        place = center if index < 3 else county
        patient = records.register_patient(
            actor=surgeon.user, institution=place, name=name, sex="F", birth_date=date(1950, 3, 1)
        )
        found = Encounter.objects.create(
            patient=patient,
            institution=place,
            kind="inpatient",
            started_at=t,
            chief_complaint="择期手术",
        )
        ClinicalFact.objects.create(encounter=found, kind="clean_incision", occurred_at=t)
        if index < 3:
            ClinicalFact.objects.create(
                encounter=found, kind="ssi_30d", occurred_at=t + timedelta(days=5)
            )
    services.set_thresholds(
        actor=person.user,
        indicator=IndicatorDefinition.objects.get(code=CODE),
        reason="e2e",
        min_denominator=3,
    )
    services.recompute_month(date(2026, 1, 1), codes=[CODE])
    warning = QualityWarning.objects.get(cause=f"{CODE}:institution:{center.pk}")

    SHOTS.mkdir(exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    violations: list[str] = []
    base = shell_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for locale, language in (("zh-CN", "zh"), ("en-US", "en")):
            page = _signed_in(browser, base, "e2e.quality", locale, violations)
            page.click("header nav a[href='/quality/']")
            page.wait_for_url("**/quality/")
            card = page.locator(f"[data-indicator='{CODE}']")
            assert card.get_attribute("data-status") == "alarm"
            assert "3/4" in card.inner_text()
            page.wait_for_selector(f"[data-spark='{CODE}'][data-rendered='true']")
            page.wait_for_selector("[data-map][data-rendered='true']")
            page.screenshot(path=str(SHOTS / f"dashboard-{language}.png"), full_page=True)
            if language == "en":
                assert "Surgical quality and safety" in page.content()
                page.goto(f"{base}/quality/warnings/{warning.pk}/")
                page.screenshot(path=str(SHOTS / f"warning-{language}.png"), full_page=True)
                page.goto(f"{base}/quality/funnel/{CODE}/?month=2026-01")
                page.wait_for_selector("[data-funnel][data-rendered='true']")
                page.screenshot(path=str(SHOTS / f"funnel-{language}.png"), full_page=True)
                page.goto(f"{base}/quality/report/?month=2026-01")
                page.screenshot(path=str(SHOTS / f"report-{language}.png"), full_page=True)
                page.close()
                continue
            # drill down from the figure to the cases behind it
            card.locator("a.drill").click()
            page.wait_for_url("**/quality/cases/**")
            rows = page.locator("#cases tbody tr")
            assert rows.count() == 4
            page.click("text=仅显示分子病例")
            page.wait_for_load_state()
            text = page.locator("#cases").inner_text()
            assert all(name in text for name in names[:3]) and names[3] not in text
            page.screenshot(path=str(SHOTS / f"cases-{language}.png"), full_page=True)
            # the warning: acknowledging needs an action note
            page.goto(f"{base}/quality/warnings/")
            page.click(f"a[href='/quality/warnings/{warning.pk}/']")
            page.wait_for_url(f"**/quality/warnings/{warning.pk}/")
            assert page.locator("#warning-status").get_attribute("data-status") == "open"
            page.fill("#action_note", "感染科复核3例，更换术前皮肤准备流程")
            page.click("#acknowledge button[type=submit]")
            page.wait_for_selector("#warning-status[data-status='acknowledged']")
            assert "感染科复核3例" in page.locator("#action-note").inner_text()
            page.screenshot(path=str(SHOTS / f"warning-{language}.png"), full_page=True)
            page.click("#close button[type=submit]")
            page.wait_for_selector("#warning-status[data-status='closed']")
            page.close()
        browser.close()
    warning.refresh_from_db()
    assert (warning.status, warning.action_note) == (
        "closed",
        "感染科复核3例，更换术前皮肤准备流程",
    )
    assert violations == []
