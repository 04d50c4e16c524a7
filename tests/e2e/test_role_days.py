"""Each role's day in a real browser: a township doctor registers a patient and records an
encounter with two coded diagnoses; a radiologist reports a study from the work list and signs
it; a surgeon finds the patient by the end of her ID number and reads the report beside the
images; an administrator unlocks an account and reads the audit log. Screenshots in
/tmp/role-days. No CSP violation, no page error."""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, Page, sync_playwright

from clinical_shell.accounts.models import SignInThrottle
from clinical_shell.accounts.throttle import account_key
from clinical_shell.imaging import services as imaging
from clinical_shell.network import services as network
from clinical_shell.network.models import Institution, Role
from clinical_shell.records import services as records
from clinical_shell.records.models import Diagnosis, Patient
from sim_core.ct.phantom import make_phantom, write_phantom

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
PASSWORD = "Osteon-e2e-2026!"
SHOTS = Path("/tmp/role-days")
# 532322 = 双柏县, born 1941-02-09, sequence 124 (even: female), check character by GB 11643
RESIDENT_ID = "532322194102091249"


def _person(username: str, name: str, institution: Institution, role: str) -> None:
    person = network.create_person(
        actor=None, username=username, password=PASSWORD, full_name=name, title="医师"
    )
    network.add_membership(actor=None, person=person, institution=institution, role=role)


def _signed_in(browser: Browser, base: str, username: str, problems: list[str]) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page.on("pageerror", lambda e: problems.append(f"{username}: {e}"))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{base}/accounts/sign-in/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/patients/")
    return page


def _check_digit(first17: str) -> str:
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


@pytest.mark.django_db(transaction=True)
def test_a_township_doctor_a_radiologist_and_a_surgeon_do_their_day(
    shell_server: str, tmp_path: Path
) -> None:
    resident_id = RESIDENT_ID[:17] + _check_digit(RESIDENT_ID[:17])
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
    township = network.create_institution(
        actor=None,
        code="SB-TUODIAN",
        name="双柏县妥甸镇卫生院",
        level="township",
        county="双柏县",
        parent=county,
    )
    _person("e2e.town", "李乡医", township, Role.TOWNSHIP_DOCTOR)
    _person("e2e.surgeon", "王县医", county, Role.SURGEON)
    _person("e2e.radiologist", "郑放射", county, Role.RADIOLOGIST)
    _person("e2e.admin", "赵管理", center, Role.ADMINISTRATOR)
    SHOTS.mkdir(exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    problems: list[str] = []
    base = shell_server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        # the township doctor registers the patient, then records a visit with two diagnoses
        town = _signed_in(browser, base, "e2e.town", problems)
        town.goto(f"{base}/patients/new/")
        town.fill("#id_name", "杨秀英")
        town.select_option("#id_sex", "F")
        town.fill("#id_birth_date", "1941-02-09")
        town.fill("#id_resident_id", resident_id)
        town.click("button.primary")
        town.wait_for_url(re.compile(r".*/patients/\d+/$"))
        patient = Patient.objects.get(resident_id=resident_id)
        town.click(f"a[href='/patients/{patient.pk}/encounters/new/']")
        town.fill("#id_chief_complaint", "跌倒后右髋疼痛、不能行走 2 小时")
        town.fill("#id_icd10_code", "S72.0")
        town.fill("#id_diagnosis", "右股骨颈骨折")
        town.click("button.primary")
        town.wait_for_url(re.compile(r".*/patients/\d+/$"))
        town.click("table a[href*='/encounters/']")
        town.wait_for_url(re.compile(r".*/encounters/\d+/$"))
        form = town.locator("#diagnosis-form")
        form.locator("[name=dx-code]").fill("M81.0")
        form.locator("[name=dx-laterality]").select_option("na")
        form.locator("button.primary").click()
        town.wait_for_load_state()
        assert {d.icd10_code for d in Diagnosis.objects.filter(encounter__patient=patient)} == {
            "S72.0",
            "M81.0",
        }
        assert "M81.0" in town.inner_text("main") and "S72.0" in town.inner_text("main")
        town.screenshot(path=str(SHOTS / "township-encounter.png"), full_page=True)

        # the county admits her and images the hip (done by the county's systems here)
        surgeon_user = User.objects.get(username="e2e.surgeon")
        records.record_encounter(
            actor=surgeon_user,
            patient=patient,
            institution=county,
            data=records.EncounterIn(
                kind="inpatient", started_at=timezone.now(), chief_complaint="右髋外伤后疼痛"
            ),
        )
        phantom = make_phantom("lumbar", seed=5, slices=12, matrix=96)
        files = write_phantom(phantom, tmp_path / "ct")
        handles = [f.open("rb") for f in files]
        try:
            imaging.import_upload(
                actor=surgeon_user,
                institution=county,
                files=[(f.name, h) for f, h in zip(files, handles, strict=True)],
                patient=patient,
            )
        finally:
            for h in handles:
                h.close()

        # the radiologist reports it from the work list and signs it
        rad = _signed_in(browser, base, "e2e.radiologist", problems)
        rad.click("header nav a[href='/imaging/reports/']")
        rad.wait_for_url("**/imaging/reports/")
        row = rad.locator("[data-role=worklist] tbody tr", has_text="杨秀英")
        row.locator("a").click()
        rad.fill("#id_findings", "右股骨颈骨皮质连续性中断，断端移位。")
        rad.fill("#id_impression", "右股骨颈骨折（Garden IV 型）。")
        rad.click("button[value=sign]")
        rad.click("[data-action=confirm-sign]")
        rad.wait_for_selector("[data-role=state][data-state=signed]")
        rad.screenshot(path=str(SHOTS / "radiologist-signed.png"), full_page=True)

        # the surgeon finds her and reads the report beside the images
        doc = _signed_in(browser, base, "e2e.surgeon", problems)
        doc.fill("input[name=q]", resident_id[-4:])  # the last digits of her ID card
        doc.press("input[name=q]", "Enter")
        doc.click(f"a[href='/patients/{patient.pk}/']")
        assert "Garden IV" in doc.inner_text("#imaging-reports")
        doc.click(f"a[href='/imaging/patients/{patient.pk}/']")
        doc.click("a[href^='/imaging/series/']")
        doc.wait_for_selector("#osteon-viewer[data-state=ready]", timeout=60_000)
        assert "Garden IV" in doc.inner_text("#study-report")
        doc.screenshot(path=str(SHOTS / "surgeon-viewer.png"))

        # the township doctor mistyped the password too often: the administrator unlocks her
        SignInThrottle.objects.create(
            key=account_key("e2e.town"), failures=10, locked_at=timezone.now()
        )
        admin = _signed_in(browser, base, "e2e.admin", problems)
        admin.click("header nav a[href='/administration/']")
        admin.goto(f"{base}/administration/users/?locked=yes")
        admin.click("td a:text-is('e2e.town')")
        admin.click("a[href$='/unlock/']")
        admin.click("button.primary")
        admin.wait_for_load_state()
        assert not SignInThrottle.objects.filter(key=account_key("e2e.town")).exists()
        # and reads who opened the patient's record today
        admin.goto(f"{base}/administration/audit/?patient_id={patient.pk}")
        log = admin.inner_text("main")
        assert "e2e.surgeon" in log and "e2e.radiologist" in log
        assert "查看患者档案" in log  # the action in words, not its code alone
        admin.screenshot(path=str(SHOTS / "admin-audit.png"), full_page=True)
        browser.close()
    assert problems == []
    assert Path(settings.OSTEON_DICOM_ROOT).exists()
