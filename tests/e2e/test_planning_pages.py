"""The plan page in Chromium, in Chinese and in English: a surgeon opens a patient's plan on the
lumbar phantom's case (built by the real case builder), types a pedicle screw moved towards the
canal into the add form, and reads its checks and the breach warning; no CSP violation, no page
error. Screenshots in /tmp/plan-pages."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
from planning_setup import PASSWORD, surgeon_with_lumbar_case
from playwright.sync_api import Browser, Page, expect, sync_playwright

from clinical_shell.planning import services as planning
from clinical_shell.planning.models import Plan, PlanElement

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
SHOTS = Path(os.environ.get("OSTEON_SCREENSHOT_DIR", "/tmp/plan-pages"))
SCREW = "pedicle_screw_6.5x45"

WORDS = {
    "zh-CN": {"warning": "皮质突破", "grade": "预测 Gertzbein–Robbins 分级", "nerve": "触及神经"},
    "en-US": {
        "warning": "Cortical breach of",
        "grade": "predicted Gertzbein–Robbins grade",
        "nerve": "Touches the nerve",
    },
}


def _plan_on_the_phantom(root: Path) -> tuple[Plan, dict[str, list[float]]]:
    """A surgeon's draft plan on a patient's lumbar case, holding the L4 left screw."""
    lumbar = surgeon_with_lumbar_case(root, username="e2e.planner", uid_root="1.2.826.0.99")
    surgeon, case, marks = lumbar.surgeon, lumbar.case, lumbar.marks
    plan = planning.create_plan(
        actor=surgeon, patient=case.patient, case=case, title="L4 椎弓根螺钉"
    )
    planning.add_element(
        actor=surgeon,
        plan=plan,
        version=1,
        data=planning.ElementData(
            kind="pedicle_screw",
            label="L4 左",
            entry_mm=marks["L4_pedicle_entry_left"],
            target_mm=marks["L4_pedicle_target_left"],
            implant_id=SCREW,
        ),
    )
    return plan, marks


def _towards_canal(marks: dict[str, list[float]], mm: float) -> np.ndarray:
    entry = np.asarray(marks["L4_pedicle_entry_left"])
    axis = np.asarray(marks["L4_pedicle_target_left"]) - entry
    towards = np.asarray(marks["L4_canal_centre"]) - entry
    across = towards - axis * np.dot(towards, axis) / np.dot(axis, axis)
    return np.asarray(mm * across / np.linalg.norm(across))


def _signed_in(browser: Browser, base: str, locale: str, problems: list[str]) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale=locale)
    page.on("pageerror", lambda e: problems.append(f"{locale}: {e}"))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{base}/accounts/sign-in/")
    page.fill("#id_username", "e2e.planner")
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/patients/")
    return page


@pytest.mark.django_db(transaction=True)
def test_a_surgeon_types_a_screw_and_reads_its_checks_in_both_languages(
    shell_server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    plan, marks = _plan_on_the_phantom(tmp_path_factory.mktemp("plan-case"))
    SHOTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    shift = _towards_canal(marks, 5.0)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for n, (locale, lang) in enumerate((("zh-CN", "zh"), ("en-US", "en")), start=1):
            words = WORDS[locale]
            page = _signed_in(browser, shell_server, locale, problems)
            page.goto(f"{shell_server}/planning/{plan.pk}/")
            expect(page.locator("#elements-table tbody tr").first).to_contain_text("L4")

            # the implant list offers only the kind's implants; a screw 5 mm towards the canal
            page.select_option("#id_kind", "k_wire")
            expect(page.locator("#id_implant_id optgroup:not([hidden])")).to_have_count(1)
            page.select_option("#id_kind", "pedicle_screw")
            page.select_option("#id_implant_id", SCREW)
            page.fill("#id_label", f"L4 左 内移 {lang}")
            for name, mark in (
                ("entry", "L4_pedicle_entry_left"),
                ("target", "L4_pedicle_target_left"),
            ):
                point = np.asarray(marks[mark]) + shift
                for axis, value in zip("xyz", point, strict=True):
                    page.fill(f"#id_{name}_{axis}", f"{value:.2f}")
            page.click("#save-element")
            page.wait_for_url(re.compile(rf".*/planning/{plan.pk}/#elements$"))
            warnings = page.locator("tr.warnings")
            expect(warnings).to_have_count(n)
            expect(warnings.last).to_contain_text(words["warning"])
            expect(warnings.last).to_contain_text(words["grade"])
            expect(warnings.last).to_contain_text(words["nerve"])
            page.screenshot(path=str(SHOTS / f"{lang}-plan-detail.png"), full_page=True)
            page.goto(f"{shell_server}/planning/{plan.pk}/print/")
            page.emulate_media(media="print")
            page.screenshot(path=str(SHOTS / f"{lang}-plan-print.png"), full_page=True)
            page.close()
        browser.close()
    assert problems == []
    assert PlanElement.objects.filter(plan=plan).count() == 3
    assert Plan.objects.get(pk=plan.pk).version == 4
