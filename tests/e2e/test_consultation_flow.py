"""A teleconsultation in a real browser: a township doctor requests it with the minimum content
and the patient's consent, booking a center expert's slot; the expert reads the attached note
and signs an opinion; the requester reads the signed opinion and ends the consultation, after
which the expert no longer sees the attachments. Screenshots go to OSTEON_E2E_SHOTS if set."""

import os
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect, sync_playwright

from clinical_shell.network import services as network
from clinical_shell.network.models import Institution, Role
from clinical_shell.records import services as records
from clinical_shell.referrals import consult_services as consult
from clinical_shell.referrals.consult_models import Consultation

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
PASSWORD = "Osteon-e2e-2026!"


def _person(username: str, name: str, institution: Institution, role: str) -> User:
    person = network.create_person(
        actor=None, username=username, password=PASSWORD, full_name=name, title="chief"
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


def _shot(page: Page, name: str) -> None:
    folder = os.environ.get("OSTEON_E2E_SHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_request_signed_opinion_read_by_requester(shell_server: str) -> None:
    center = network.create_institution(
        actor=None, code="CX-C", name="楚雄州人民医院", level="center", county="楚雄市"
    )
    county = network.create_institution(
        actor=None,
        code="CX-K",
        name="双柏县人民医院",
        level="county",
        county="双柏县",
        parent=center,
    )
    township = network.create_institution(
        actor=None,
        code="CX-T",
        name="妥甸镇卫生院",
        level="township",
        county="双柏县",
        parent=county,
    )
    doctor = _person("e2e.township", "李乡医", township, Role.TOWNSHIP_DOCTOR)
    expert = _person("e2e.expert", "王专家", center, Role.SURGEON)
    patient = records.register_patient(
        actor=doctor, institution=township, name="杨秀英", sex="F", birth_date=date(1944, 6, 2)
    )
    note = records.add_document(
        actor=doctor,
        patient=patient,
        institution=township,
        title="首诊记录",
        kind="note",
        body="右髋外旋短缩畸形",
    )
    slot = consult.publish_slot(
        actor=expert,
        institution_id=center.pk,
        specialty="orthopedics",
        starts_at=timezone.now() + timedelta(hours=2),
    )

    # the ORM checks below run beside Playwright's event loop, in this one thread
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(locale="zh-CN")
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        _sign_in(page, shell_server, doctor.username)
        page.goto(f"{shell_server}/referrals/consult/")
        page.fill("#start-patient", str(patient.pk))
        page.click("#start-consultation button")
        page.wait_for_url(f"**/consult/new/{patient.pk}/")
        # sent without the consent: refused, naming what is missing, nothing created
        page.select_option("#f-slot", str(slot.pk))
        page.fill("#f-question", "是否需要关节置换？")
        page.fill("#f-history", "82 岁，跌倒后右髋疼痛")
        page.fill("#f-findings", "右下肢短缩外旋")
        page.fill("#f-dx", "右股骨颈骨折；皮牵引")
        page.check(f"input[name=documents][value='{note.pk}']")
        page.click("#send-request")
        expect(page.locator("#form-errors li[data-field=consent_signature]")).to_be_visible()
        assert not Consultation.objects.exists()
        _shot(page, "consult_new_refused_zh")
        page.fill("#f-consent-by", "张建国")
        page.fill("#f-consent-rel", "子")
        page.fill(
            "#f-consent-at", (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        )
        page.fill("#f-consent-sig", "张建国（手写签名已扫描）")
        page.click("#send-request")
        page.wait_for_url("**/referrals/consult/*/")
        c = Consultation.objects.get()
        assert c.expert_id == expert.pk and c.slot_id == slot.pk

        _sign_in(page, shell_server, expert.username)
        page.goto(f"{shell_server}/referrals/consult/{c.pk}/")
        expect(page.locator("#attachments")).to_contain_text("右髋外旋短缩畸形")
        page.fill("#a-opinion", "移位型股骨颈骨折，建议人工股骨头置换")
        page.fill("#a-rec", "建议上转至州骨科中心")
        page.check("#a-up")
        page.click("#sign-opinion")
        expect(page.locator("#signature-ok")).to_be_visible()

        _sign_in(page, shell_server, doctor.username)
        page.goto(f"{shell_server}/referrals/consult/{c.pk}/")
        expect(page.locator("#opinion-text")).to_contain_text("人工股骨头置换")
        expect(page.locator("#signature-ok")).to_be_visible()
        expect(page.locator("#opinion")).to_contain_text("邀请方决定")
        _shot(page, "consult_detail_zh")
        page.goto(f"{shell_server}/referrals/consult/{c.pk}/print/")
        _shot(page, "consult_print_zh")
        page.goto(f"{shell_server}/referrals/consult/{c.pk}/")
        page.click("#close-consultation")
        expect(page.locator("#consultation")).to_have_attribute("data-state", "closed")

        _sign_in(page, shell_server, expert.username)
        page.goto(f"{shell_server}/referrals/consult/{c.pk}/")
        expect(page.locator("#attachments")).not_to_contain_text("右髋外旋短缩畸形")
        expect(page.locator("#opinion-text")).to_contain_text("人工股骨头置换")
        if os.environ.get("OSTEON_E2E_SHOTS"):
            english = browser.new_page(locale="en-US")
            _sign_in(english, shell_server, doctor.username)
            for name, path in (("list", ""), ("detail", f"{c.pk}/"), ("print", f"{c.pk}/print/")):
                english.goto(f"{shell_server}/referrals/consult/{path}")
                _shot(english, f"consult_{name}_en")
        assert errors == []
        browser.close()
