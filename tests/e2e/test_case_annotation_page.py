"""A surgeon confirms the proposed parts of a case built without a truth sidecar (as from a real
CT), draws the canal as a tube by clicking on the slices, and saves; the plan checks then give
a nerve distance on that case. Screenshots in zh-CN and en under /tmp/case-annotate."""

import os
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from clinical_shell.imaging.annotation_models import CaseAnnotationVersion
from clinical_shell.imaging.models import Series, SimulationCase, Study
from clinical_shell.network import services as network
from clinical_shell.network.models import Role
from clinical_shell.planning import services as planning
from clinical_shell.records import services as records

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim_core" / "case"))
from test_propose import build_without_sidecar

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
SHOTS = Path(os.environ.get("OSTEON_SCREENSHOT_DIR", "/tmp/case-annotate"))
PASSWORD = "Osteon-e2e-2026!"


def _sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/accounts/sign-in/")
    page.fill("#id_username", "e2e.annotator")
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/patients/")


@pytest.mark.django_db(transaction=True)
def test_a_surgeon_confirms_the_proposal_draws_the_canal_and_a_plan_check_measures_it(
    shell_server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    bundle, truth = build_without_sidecar(tmp_path_factory.mktemp("annotate-case"))
    center = network.create_institution(
        actor=None, code="CX-ANNOT", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    person = network.create_person(
        actor=None,
        username="e2e.annotator",
        password=PASSWORD,
        full_name="王县医",
        title="attending",
    )
    network.add_membership(actor=None, person=person, institution=center, role=Role.SURGEON)
    patient = records.register_patient(
        actor=person.user,
        institution=center,
        name="张三丰",
        sex="M",
        birth_date=date(1958, 3, 14),
    )
    study = Study.objects.create(
        study_uid="1.2.826.0.95.1",
        patient=patient,
        linked_by=Study.LinkedBy.UPLOADER,
        uploaded_at=center,
        uploaded_by=person.user,
        description="腰椎 CT（真实 CT 无标注）",
    )
    series = Series.objects.create(study=study, series_uid="1.2.826.0.95.2", modality="CT")
    case = SimulationCase.objects.create(
        patient=patient,
        series=series,
        path=str(bundle.path),
        content_hash=bundle.content_hash,
        spacing_mm=bundle.spacing_mm,
        bones=bundle.meta["bones"],
        created_by=person.user,
    )
    marks = {
        m["name"]: [float(x) for x in bundle.case_from_patient_mm(m["lps_mm"])]
        for m in truth["landmarks"]
    }
    SHOTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    problems: list[str] = []
    url = f"{shell_server}/imaging/cases/{case.pk}/annotate/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
        page.on("pageerror", lambda e: problems.append(str(e)))
        _sign_in(page, shell_server)
        page.goto(url)
        expect(page.locator("#annotate")).to_have_attribute("data-ready", "true")
        expect(page.locator("#levels-table tbody tr")).to_have_count(3)
        expect(page.locator("#zones-table tbody tr")).to_have_count(1)  # the proposed canal
        page.screenshot(path=str(SHOTS / "zh-proposal.png"), full_page=True)

        # the surgeon names the levels and bones
        for i, name in enumerate(("L3", "L4", "L5")):
            page.fill(f"input[name=level-{i}]", name)
            page.fill(f"input[name=bone-{i + 1}]", name)
        # drops the proposed canal and draws it: clicks on the sagittal slice through its middle
        page.locator("#zones-table tbody tr").first.get_by_role("button", name="删除").click()
        expect(page.locator("#zones-table tbody tr")).to_have_count(0)
        top = np.asarray(marks["L3_canal_centre"])
        bottom = np.asarray(marks["L5_canal_centre"])
        page.evaluate(
            "([axis, index]) => window.osteonAnnotate.setSlice(axis, index)",
            [2, round(float(top[2]) / bundle.spacing_mm)],
        )
        page.click("#add-zone")
        row = page.locator("#zones-table tbody tr").first
        row.locator("input").first.fill("椎管")
        row.locator("input.zone-radius").fill("8")
        for point in (top, (top + bottom) / 2, bottom):
            xy = page.evaluate(
                "([axis, p]) => window.osteonAnnotate.screenPoint(axis, p)", [2, point.tolist()]
            )
            page.mouse.click(xy["x"], xy["y"])
        zones = page.evaluate("() => window.osteonAnnotate.zones")
        assert len(zones) == 1 and len(zones[0]["points_mm"]) == 3
        # a landmark by a click on the axial slice at the L4 left pedicle entry
        entry = np.asarray(marks["L4_pedicle_entry_left"])
        page.evaluate(
            "([axis, index]) => window.osteonAnnotate.setSlice(axis, index)",
            [0, round(float(entry[0]) / bundle.spacing_mm)],
        )
        page.fill("#landmark-name", "L4 左椎弓根入点")
        page.click("#add-landmark")
        xy = page.evaluate(
            "([axis, p]) => window.osteonAnnotate.screenPoint(axis, p)", [0, entry.tolist()]
        )
        page.mouse.click(xy["x"], xy["y"])
        page.fill("#annotate-note", "已核对节段与椎管")
        page.click("#annotate-save")
        expect(page.locator("#annotate")).to_have_attribute("data-status", "saved")
        expect(page.locator("#annotate-version")).to_have_text("1")
        page.screenshot(path=str(SHOTS / "zh-saved.png"), full_page=True)
        page.close()

        en = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="en-US")
        en.on("pageerror", lambda e: problems.append(str(e)))
        _sign_in(en, shell_server)
        en.goto(url)
        expect(en.locator("#annotate")).to_have_attribute("data-ready", "true")
        expect(en.locator("h1")).to_contain_text("Confirm the case's parts")
        expect(
            en.locator("#levels-table tbody tr").first.locator("input[name=level-0]")
        ).to_have_value("L3")
        en.screenshot(path=str(SHOTS / "en-saved.png"), full_page=True)
        en.close()
        browser.close()
    assert problems == []

    version = CaseAnnotationVersion.objects.get(case=case)
    assert [lv["name"] for lv in version.content["levels"]] == ["L3", "L4", "L5"]
    drawn = np.asarray(version.content["zones"][0]["points_mm"])
    assert np.abs(drawn[0] - top).max() < 1.0
    placed = np.asarray(version.content["landmarks"][0]["point_mm"])
    assert np.abs(placed - entry).max() < 1.0

    # the plan check on this case now measures the drawn canal
    checks = planning.compute_checks(
        case=case,
        data=planning.ElementData(
            kind="pedicle_screw",
            label="L4 左",
            entry_mm=marks["L4_pedicle_entry_left"],
            target_mm=marks["L4_pedicle_target_left"],
            implant_id="pedicle_screw_6.5x45",
        ),
    )
    nerve = checks["zones"]["nerve"]["clearance_mm"]
    print("nerve clearance after confirmation:", nerve)
    assert nerve is not None and 0.0 < nerve < 10.0
