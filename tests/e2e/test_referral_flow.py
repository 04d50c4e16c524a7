"""Two-way referral in a real browser across three institutions: the township refers a hip
fracture up, the county declines it on to the center, the center accepts, the patient arrives, is
operated and referred down with the handover; the township doctor reads what travels with it and,
once the referral is completed, no longer reads through it (nor any record written after). A
transfer out of the region is blocked until the center approves. No CSP violation on any page."""

import importlib
import os
from datetime import date
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, Page, sync_playwright

from clinical_shell.network import services as network
from clinical_shell.network.models import Institution, Role
from clinical_shell.records import services as records
from clinical_shell.referrals import services as referrals
from clinical_shell.referrals.models import Direction, Referral, State

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
PASSWORD = "Osteon-e2e-2026!"
SHOTS = Path("/tmp/referral-shots")
HANDOVER = {
    "discharge_summary": "右股骨颈骨折，全髋关节置换术后第5天，切口愈合良好",
    "operation_note": "后外侧入路全髋关节置换",
    "implants": "生物型髋臼杯 52 mm，股骨柄 3 号",
    "rehab_plan": "6 周内部分负重，每日髋外展训练",
    "medication_plan": "利伐沙班 10 mg qd 至术后 35 天",
    "follow_up": "术后 2 周拆线，6 周复查 X 线",
    "warning_signs": "小腿肿痛、呼吸困难、伤口渗液、髋部脱位感",
}


def _signed_in(browser: Browser, base: str, username: str, violations: list[str]) -> Page:
    page = browser.new_page(viewport={"width": 1200, "height": 900}, locale="zh-CN")
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


def _person(username: str, name: str, title: str, at: Institution, role: str) -> User:
    person = network.create_person(
        actor=None, username=username, password=PASSWORD, full_name=name, title=title
    )
    network.add_membership(actor=None, person=person, institution=at, role=role)
    return person.user


def _seed_rules() -> None:
    """The criteria seeded by the data migration: a transactional test before may have flushed
    them (update_or_create, so harmless when present)."""
    importlib.import_module(
        "clinical_shell.referrals.migrations.0002_seed_criteria_and_time_limits"
    ).seed(apps, None)


def _act(page: Page, action: str) -> None:
    page.click(f"button[data-action={action}]")
    page.wait_for_load_state()


@pytest.mark.django_db(transaction=True)
def test_referral_up_onward_down_and_access_ends_with_it(shell_server: str) -> None:
    _seed_rules()
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
    township = network.create_institution(
        actor=None,
        code="CX-SB-T1",
        name="双柏县妥甸镇卫生院",
        level="township",
        county="双柏县",
        parent=county,
    )
    doctor = _person("e2e.township", "李乡医", "assistant", township, Role.TOWNSHIP_DOCTOR)
    _person("e2e.county", "王县医", "attending", county, Role.SURGEON)
    surgeon = _person("e2e.center", "赵中心", "chief", center, Role.SURGEON)
    patient = records.register_patient(
        actor=doctor, institution=township, name="杨秀英", sex="F", birth_date=date(1944, 6, 2)
    )
    records.add_document(
        actor=doctor,
        patient=patient,
        institution=township,
        title="首诊记录",
        kind="note",
        body="右下肢外旋短缩畸形",
    )
    SHOTS.mkdir(exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    violations: list[str] = []
    base = shell_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # the township refers up, with its first-visit note
        town = _signed_in(browser, base, "e2e.township", violations)
        town.goto(f"{base}/referrals/new/?patient={patient.pk}")
        town.select_option("#r-direction", "up")
        town.select_option("#r-to", str(county.pk))
        town.select_option("#r-urgency", "urgent")
        town.check("input[name=criteria][value=up_hip_fracture_elderly]")
        town.fill("#r-reason", "跌倒后右髋疼痛，不能行走，X 线示股骨颈骨折")
        town.click("#referral-form button[type=submit]")
        town.wait_for_url("**/referrals/*/")
        up = Referral.objects.get()
        town.click("button[name=do][value=share]")
        town.wait_for_selector(".shared-item")
        _act(town, "send")
        assert town.get_attribute("#referral-state", "data-state") == "sent"

        # the county declines it on to the center
        cty = _signed_in(browser, base, "e2e.county", violations)
        cty.goto(f"{base}/referrals/?box=incoming")
        cty.click(f"a[href='/referrals/{up.pk}/']")
        assert "右下肢外旋短缩畸形" in cty.inner_text("#shared-items")
        cty.fill("#a-decline", "本院无老年髋部骨折共管条件")
        cty.select_option("#a-onward", str(center.pk))
        _act(cty, "decline")
        assert cty.get_attribute("#referral-state", "data-state") == "declined"
        assert "右下肢外旋短缩畸形" not in cty.inner_text("#shared-items")
        onward = Referral.objects.get(onward_from=up)

        # the center accepts, the patient arrives and is operated
        ctr = _signed_in(browser, base, "e2e.center", violations)
        ctr.goto(f"{base}/referrals/{onward.pk}/")
        assert "右下肢外旋短缩畸形" in ctr.inner_text("#shared-items")
        _act(ctr, "accept")
        _act(ctr, "arrive")
        # the referral gave no chart: the center admits the patient under its own care
        records.record_encounter(
            actor=surgeon,
            patient=patient,
            institution=center,
            data=records.EncounterIn(
                kind="inpatient", started_at=timezone.now(), chief_complaint="右股骨颈骨折"
            ),
        )
        records.add_document(
            actor=surgeon,
            patient=patient,
            institution=center,
            title="手术记录",
            kind="operative_note",
            body="后外侧入路全髋关节置换，出血 300 ml",
        )
        _act(ctr, "complete")
        assert ctr.get_attribute("#referral-state", "data-state") == "completed"

        # down-referral with its handover and the operation note
        ctr.goto(f"{base}/referrals/new/?patient={patient.pk}")
        ctr.select_option("#r-direction", "down")
        ctr.select_option("#r-to", str(township.pk))
        ctr.check("input[name=criteria][value=down_stable_post_op]")
        ctr.fill("#r-reason", "术后病情稳定，回当地康复")
        for key, text in HANDOVER.items():
            ctr.fill(f"#h-{key}", text)
        ctr.click("#referral-form button[type=submit]")
        ctr.wait_for_url("**/referrals/*/")
        down = Referral.objects.get(direction=Direction.DOWN)
        ctr.select_option("#a-item", label="手术记录")
        ctr.click("button[name=do][value=share]")
        ctr.wait_for_selector(".shared-item")
        _act(ctr, "send")
        assert ctr.get_attribute("#referral-state", "data-state") == "sent"

        # the township reads the documents while it is open, and takes the patient back
        town.goto(f"{base}/referrals/{down.pk}/")
        assert "出血 300 ml" in town.inner_text("#shared-items")
        assert "利伐沙班" in town.inner_text("body")
        town.screenshot(path=str(SHOTS / "down-open-zh.png"), full_page=True)
        for step in ("accept", "arrive", "complete"):
            _act(town, step)
        assert town.get_attribute("#referral-state", "data-state") == "completed"
        # after completion the center writes a new record: nothing of it reaches the township
        # through the referral, and the shared documents are closed to it
        records.add_document(
            actor=surgeon,
            patient=patient,
            institution=center,
            title="复查",
            kind="note",
            body="术后6周复查记录",
        )
        town.reload()
        shared = town.inner_text("#shared-items")
        assert "出血 300 ml" not in shared and "术后6周复查记录" not in shared
        town.screenshot(path=str(SHOTS / "down-completed-zh.png"), full_page=True)
        # nor through the chart: the township registered the patient, but the center's
        # admission is the center's record, counted and not shown
        town.goto(f"{base}/patients/{patient.pk}/")
        assert "右股骨颈骨折" not in town.inner_text("main")
        assert town.locator("#unshared-encounters").count() == 1
        letter = town.goto(f"{base}/referrals/{down.pk}/letter/")
        assert letter is not None and "双向转诊单" in town.inner_text(".letter")
        browser.close()
    assert Referral.objects.get(pk=down.pk).state == State.COMPLETED
    assert violations == []


@pytest.mark.django_db(transaction=True)
def test_transfer_out_is_blocked_until_the_center_approves(shell_server: str) -> None:
    _seed_rules()
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
    surgeon = _person("e2e.county", "王县医", "attending", county, Role.SURGEON)
    _person("e2e.center", "赵中心", "chief", center, Role.SURGEON)
    patient = records.register_patient(
        actor=surgeon, institution=county, name="杨秀英", sex="F", birth_date=date(1944, 6, 2)
    )
    out = referrals.create_draft(
        actor=surgeon,
        patient_id=patient.pk,
        direction=Direction.OUT,
        from_institution=county,
        to_institution=None,
        outside_hospital="昆明医科大学第一附属医院",
        reason="复杂骨盆骨折，需省级医院治疗",
        criteria=["up_severe_trauma"],
    )
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    violations: list[str] = []
    base = shell_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        cty = _signed_in(browser, base, "e2e.county", violations)
        cty.goto(f"{base}/referrals/{out.pk}/")
        _act(cty, "send")
        _act(cty, "accept")  # the outside hospital's yes, recorded by the sender
        _act(cty, "arrive")
        assert cty.get_attribute("#referral-state", "data-state") == "accepted"
        assert "州骨科中心审批" in cty.inner_text("#referral-error")
        ctr = _signed_in(browser, base, "e2e.center", violations)
        ctr.goto(f"{base}/referrals/?box=approvals")
        ctr.click(f"a[href='/referrals/{out.pk}/']")
        ctr.fill("#a-note", "同意转往省级医院")
        _act(ctr, "approve")
        assert ctr.get_attribute("#transfer-approval", "data-decision") == "approved"
        cty.goto(f"{base}/referrals/{out.pk}/")
        _act(cty, "arrive")
        _act(cty, "complete")
        assert cty.get_attribute("#referral-state", "data-state") == "completed"
        browser.close()
    assert violations == []
