"""A patient merge in a real browser, under the CSP without inline script: one reviewer
requests it, sees it waiting; a second reviewer approves it and lands on the merged record.
The language switch (a static script since the CSP change) still works, and no CSP violation
is reported on any page visited."""

import os
import sys
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from clinical_shell.imaging import services as imaging
from clinical_shell.imaging.models import Study
from clinical_shell.network import services as network
from clinical_shell.network.models import Role
from clinical_shell.records import services as records
from clinical_shell.records.models import DuplicateCandidate, MergeRequest, Patient

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
PASSWORD = "Osteon-e2e-2026!"
SHOTS = Path("/tmp/inputs-shots")


def _signed_in(browser: Browser, base: str, username: str, violations: list[str]) -> Page:
    page = browser.new_page(viewport={"width": 1200, "height": 900}, locale="zh-CN")
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(f"{base}/accounts/sign-in/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/patients/")
    return page


@pytest.mark.django_db(transaction=True)
def test_a_merge_is_requested_by_one_reviewer_and_approved_by_another(shell_server: str) -> None:
    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    people = []
    for username, name in (("e2e.first", "王医生"), ("e2e.second", "李医生")):
        person = network.create_person(
            actor=None, username=username, password=PASSWORD, full_name=name, title="attending"
        )
        network.add_membership(actor=None, person=person, institution=center, role=Role.SURGEON)
        people.append(person)
    kept = records.register_patient(
        actor=people[0].user,
        institution=center,
        name="张三丰",
        sex="M",
        birth_date=date(1958, 3, 14),
        resident_id="532322195803141230",
    )
    twin = records.register_patient(
        actor=people[0].user,
        institution=center,
        name="张三丰",
        sex="M",
        birth_date=date(1958, 3, 14),
    )
    candidate = DuplicateCandidate.objects.get(patient=twin)
    url = f"{shell_server}/patients/duplicates/{candidate.pk}/"
    SHOTS.mkdir(exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    violations: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        first = _signed_in(browser, shell_server, "e2e.first", violations)
        first.goto(url)
        first.check(f"input[name=survivor][value='{kept.pk}']")
        first.fill("#id_reason", "身份证号相同，本人到院核实")
        first.click("button[name=action][value=merge]")
        first.click("[data-action=confirm-merge]")
        first.wait_for_selector("[data-role=awaiting-second-person]")
        assert first.locator("[data-action=approve-merge]").count() == 0
        first.screenshot(path=str(SHOTS / "merge-requested-zh.png"), full_page=True)
        # the language switch: a static script submits the form on change
        first.select_option("select[name=language]", "en")
        first.wait_for_selector("text=Merge request awaiting approval")
        first.screenshot(path=str(SHOTS / "merge-requested-en.png"), full_page=True)
        assert Patient.objects.get(pk=twin.pk).merged_into_id is None

        second = _signed_in(browser, shell_server, "e2e.second", violations)
        second.goto(url)
        second.fill("#id_note", "核对身份证复印件")
        second.screenshot(path=str(SHOTS / "merge-approve-zh.png"), full_page=True)
        second.click("[data-action=approve-merge]")
        second.wait_for_url(f"**/patients/{kept.pk}/")
        browser.close()
    assert Patient.objects.get(pk=twin.pk).merged_into_id == kept.pk
    decided = MergeRequest.objects.get()
    assert (decided.requested_by_id, decided.decided_by_id) == (
        people[0].user.pk,
        people[1].user.pk,
    )
    assert violations == []


@pytest.mark.django_db(transaction=True)
def test_the_imaging_pages_scripts_run_under_the_csp(shell_server: str) -> None:
    """The upload page's progress script and the case build page's live script, moved out of
    the templates: the upload reports through the script (the page stays), the build page polls
    its status API."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clinical_shell" / "imaging"))
    from dicom_samples import ct_series

    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    person = network.create_person(
        actor=None, username="e2e.first", password=PASSWORD, full_name="王医生", title="attending"
    )
    network.add_membership(actor=None, person=person, institution=center, role=Role.SURGEON)
    resident_id = "532322195803141230"
    patient = records.register_patient(
        actor=person.user,
        institution=center,
        name="张三丰",
        sex="M",
        birth_date=date(1958, 3, 14),
        resident_id=resident_id,
    )
    SHOTS.mkdir(exist_ok=True)
    files = []
    for number, data in enumerate(ct_series(3, patient_id=resident_id)):
        path = SHOTS / f"slice{number}.dcm"
        path.write_bytes(data)
        files.append(str(path))
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    violations: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = _signed_in(browser, shell_server, "e2e.first", violations)
        page.goto(f"{shell_server}/imaging/")
        page.set_input_files("#id_files", files)
        page.click("#upload-form button.primary")
        page.wait_for_selector("#upload-status:has-text('已存入 3')")
        assert page.url.endswith("/imaging/")  # the script answered, not a form post
        page.screenshot(path=str(SHOTS / "upload-zh.png"), full_page=True)
        series = Study.objects.get(patient=patient).series.get()
        build = imaging.request_case_build(
            actor=person.user, series=series, run_in_background=False
        )
        status_api = f"/api/v1/imaging/case-builds/{build.pk}"
        with page.expect_response(lambda r: status_api in r.url) as polled:
            page.goto(f"{shell_server}/imaging/case-builds/{build.pk}/")
        assert polled.value.status == 200
        assert page.locator("[data-role=status]").inner_text() == "排队中"
        page.screenshot(path=str(SHOTS / "case-build-zh.png"), full_page=True)
        browser.close()
    assert violations == []
