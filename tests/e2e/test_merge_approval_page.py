"""A patient merge in a real browser, under the CSP without inline script: one reviewer
requests it, sees it waiting; a second reviewer approves it and lands on the merged record.
The language switch (a static script since the CSP change) still works, and no CSP violation
is reported on any page visited."""

import os
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

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
