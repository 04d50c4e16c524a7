"""The surgeon's whole path in Chromium, by clicking: open the patient, start a plan, place two
pedicle screws by clicking their entry and target on the linked axial slice, drag one into the
canal and see the live breach warning (Esc puts it back, nothing saved), approve the plan,
rehearse each screw on the station (a StationRunner with the scripted expert over the shell's
bridge endpoint on loopback ZeroMQ), and read the deviation report in Chinese and English.
Screenshots in /tmp/plan-flow."""

import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from planning_setup import PASSWORD, surgeon_with_lumbar_case
from playwright.sync_api import Page, expect, sync_playwright

from bridge.endpoint import Endpoint
from bridge.keys import new_curve_keys
from bridge.station import StationRunner, enroll
from clinical_shell.planning.models import Plan, Rehearsal
from clinical_shell.stations import services as stations
from clinical_shell.stations.bridge_side import DjangoShellSide
from clinical_shell.stations.models import SessionResult

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bridge"))
from bridge_helpers import free_port_block

CHROMIUM = "/usr/bin/chromium"
# WebGL in software (ANGLE on SwiftShader): the 3D view draws, handles drag
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--no-first-run",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
SHOTS = Path(os.environ.get("OSTEON_SCREENSHOT_DIR", "/tmp/plan-flow"))
SCREW = "pedicle_screw_6.5x45"
USERNAME = "e2e.flow"
WORDS = {
    "zh-CN": ("偏差报告", "入点偏差 (mm)", "已验证"),
    "en-US": ("Deviation report", "Entry offset (mm)", "Verified"),
}


def _drag(page: Page, start: dict[str, float], end: dict[str, float]) -> None:
    """Press at `start`, move to `end` in steps, hold (the caller releases)."""
    page.mouse.move(start["x"], start["y"])
    page.mouse.down()
    for i in range(1, 9):
        t = i / 8
        page.mouse.move(
            start["x"] + t * (end["x"] - start["x"]), start["y"] + t * (end["y"] - start["y"])
        )


def _axial_through(page: Page, point: list[float], spacing_mm: float) -> None:
    """A click on the sagittal slice at `point` moves the crosshair there: the axial slice then
    shows the level of `point`."""
    page.locator('[data-slice-view="sagittal"]').scroll_into_view_if_needed()
    at = page.evaluate(f"window.osteonPlanner.sliceScreenPoint('sagittal', {point})")
    page.mouse.click(at["x"], at["y"])
    index = str(round(point[0] / spacing_mm))
    axial = page.locator('[data-slice-view="axial"]')
    expect(axial).to_have_attribute("data-slice", index)
    expect(axial).to_have_attribute("data-loaded", index, timeout=20_000)


def _click_point(page: Page, which: str, point: list[float]) -> list[float]:
    """ "Set entry" (or target), then a click on the axial slice at `point`: the form's point."""
    page.click(f"#planner-set-{which}")
    page.locator('[data-slice-view="axial"]').scroll_into_view_if_needed()
    at = page.evaluate(f"window.osteonPlanner.sliceScreenPoint('axial', {point})")
    page.mouse.click(at["x"], at["y"])
    expect(page.locator(f"#planner-set-{which}")).to_have_attribute("aria-pressed", "false")
    return [float(page.input_value(f"#id_{which}_{axis}")) for axis in "xyz"]


def _place_screw(
    page: Page, label: str, entry: list[float], target: list[float], spacing_mm: float
) -> None:
    expect(page.locator("#planner-slices")).to_have_attribute("data-ready", "true")
    page.select_option("#id_kind", "pedicle_screw")
    page.select_option("#id_implant_id", SCREW)
    page.fill("#id_label", label)
    _axial_through(page, entry, spacing_mm)
    for which, point in (("entry", entry), ("target", target)):
        clicked = _click_point(page, which, point)
        # where the surgeon clicked, to within a voxel of the slice
        assert np.linalg.norm(np.subtract(clicked, point)) < spacing_mm, (which, clicked, point)
    page.click("#save-element")
    page.wait_for_url(re.compile(r".*/planning/\d+/#elements$"))
    expect(page.locator("#planner-3d")).to_have_attribute("data-ready", "true", timeout=60_000)


def _rehearse_next(page: Page, base: str, plan_id: int, station_dir: Path) -> None:
    """Send the element the form offers to the station, run it there, verify its result."""
    page.click("#rehearse-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/stations/sessions/\d+/$"))
    runner = StationRunner(station_dir, realtime=False, echo=lambda s: None)
    assert runner.run(max_sessions=1) == 0
    result = SessionResult.objects.filter(verification="pending").get()
    verified = stations.verify_result_by_replay(result_id=result.pk)
    assert verified.verification == "verified", verified.rejection_reason
    page.goto(f"{base}/planning/{plan_id}/")


@pytest.mark.django_db(transaction=True)
def test_a_surgeon_plans_two_screws_by_clicking_approves_rehearses_and_reads_the_report(
    shell_server: str, settings: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.OSTEON_STATION_RECORDING_ROOT = tmp_path / "recordings"
    lumbar = surgeon_with_lumbar_case(
        tmp_path_factory.mktemp("flow-case"), username=USERNAME, uid_root="1.2.826.0.97"
    )
    marks, spacing = lumbar.marks, lumbar.case.spacing_mm
    keys = new_curve_keys()
    port = free_port_block()
    endpoint = Endpoint(DjangoShellSide(), keys, port=port)
    serving = threading.Thread(target=endpoint.serve_forever, daemon=True)
    serving.start()
    assert endpoint.wait_ready()
    issued = stations.create_enrolment_code(
        actor=None, institution=lumbar.center, room="技能中心 1 室"
    )
    station_dir = tmp_path / "station"
    enroll(
        station_dir, shell_url=f"tcp://127.0.0.1:{port}", code=issued.code, shell_key=keys.public
    )

    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "console",
                lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.goto(f"{shell_server}/accounts/sign-in/")
            page.fill("#id_username", USERNAME)
            page.fill("#id_password", PASSWORD)
            page.click("button.primary")
            page.wait_for_url("**/patients/")

            # the patient, their plans, a new plan on their lumbar CT
            page.goto(f"{shell_server}/patients/{lumbar.case.patient_id}/")
            page.click("#patient-plans-link")
            page.fill("#id_title", "L4 双侧椎弓根螺钉")
            page.click("#create-plan")
            page.wait_for_url(re.compile(r".*/planning/\d+/$"))
            plan = Plan.objects.get(case=lumbar.case)
            expect(page.locator("#planner-3d")).to_have_attribute(
                "data-ready", "true", timeout=60_000
            )

            # two screws, each placed by two clicks on the axial slice through its pedicle
            for side, label in (("left", "L4 左"), ("right", "L4 右")):
                _place_screw(
                    page,
                    label,
                    marks[f"L4_pedicle_entry_{side}"],
                    marks[f"L4_pedicle_target_{side}"],
                    spacing,
                )
            left, right = plan.elements.order_by("id")
            assert [e.label for e in (left, right)] == ["L4 左", "L4 右"]
            for element in (left, right):
                assert element.checks["gr_grade"] in {"A", "B"}, element.checks
            expect(page.locator("#elements-table tr.warnings")).to_have_count(0)
            page.screenshot(path=str(SHOTS / "zh-two-screws.png"), full_page=True)

            # the right screw's entry dragged into the canal: the live check warns before
            # release; Esc puts it back and nothing is saved
            version = Plan.objects.get(pk=plan.pk).version
            page.locator(f'tr[data-element-id="{right.pk}"] td').first.click()
            page.locator("#planner-3d").scroll_into_view_if_needed()
            start = page.evaluate("window.osteonPlanner.handleScreenPoint('entry')")
            canal = page.evaluate(
                f"window.osteonPlanner.caseScreenPoint({marks['L4_canal_centre']})"
            )
            _drag(page, start, canal)
            live = page.locator("#planner-live")
            expect(live).to_have_attribute("data-status", "breach", timeout=20_000)
            expect(live.locator('[data-role="live-warnings"] li').first).to_be_visible()
            page.locator("#view3d").screenshot(path=str(SHOTS / "zh-drag-into-canal.png"))
            page.keyboard.press("Escape")
            page.mouse.up()
            assert page.evaluate("window.osteonPlanner.cancelled") == 1
            assert not page.evaluate("window.osteonPlanner.dragging")
            expect(live).not_to_have_attribute("data-status", "breach")
            page.wait_for_timeout(500)  # a save would have gone out by now
            assert Plan.objects.get(pk=plan.pk).version == version
            right.refresh_from_db()
            assert right.checks["gr_grade"] in {"A", "B"}

            # approve (a confirmation page), then rehearse each screw in turn
            page.click("#approve-link")
            page.click("#confirm-approve")
            page.wait_for_url(re.compile(rf".*/planning/{plan.pk}/.*"))
            assert Plan.objects.get(pk=plan.pk).status == Plan.Status.APPROVED
            for element in (left, right):
                # the form offers the first screw not rehearsed yet
                expect(page.locator('#rehearse-form select[name="element"]')).to_have_value(
                    str(element.pk)
                )
                _rehearse_next(page, shell_server, plan.pk, station_dir)

            card = page.locator("#rehearsals")
            title, column, status = WORDS["zh-CN"]
            expect(card).to_contain_text(title)
            expect(card.locator("#deviation-table")).to_contain_text(column)
            expect(card.locator("#rehearsal-history tbody tr").first).to_contain_text(status)
            rows = card.locator("#deviation-table tbody tr[data-element-id]")
            expect(rows).to_have_count(2)
            expect(card.locator("[data-unrehearsed]")).to_have_count(0)
            for element in (left, right):
                row = card.locator(f'#deviation-table tr[data-element-id="{element.pk}"]')
                for measure in ("entry", "tip", "angle"):
                    shown = row.locator(f'[data-deviation="{measure}"]').inner_text()
                    assert float(shown) < 1.0, (element.label, measure, shown)
                expect(row.locator('[data-deviation="nerve"]')).to_have_text("0")
            expect(card.locator("#rehearsal-history tbody tr")).to_have_count(2)
            # the 3D view draws both drilled paths (dashed) beside the planned screws
            expect(page.locator("#planner-3d")).to_have_attribute(
                "data-ready", "true", timeout=60_000
            )
            drawn = page.evaluate("() => window.osteonPlanner.achieved")
            assert {d["element"] for d in drawn} == {left.pk, right.pk}, drawn
            card.screenshot(path=str(SHOTS / "zh-deviation-report.png"))
            page.screenshot(path=str(SHOTS / "zh-plan-rehearsed.png"), full_page=True)
            page.close()

            # the same report in English
            en = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
            en.on("pageerror", lambda e: problems.append(str(e)))
            en.goto(f"{shell_server}/accounts/sign-in/")
            en.fill("#id_username", USERNAME)
            en.fill("#id_password", PASSWORD)
            en.click("button.primary")
            en.wait_for_url("**/patients/")
            en.goto(f"{shell_server}/planning/{plan.pk}/")
            title, column, status = WORDS["en-US"]
            card = en.locator("#rehearsals")
            expect(card).to_contain_text(title)
            expect(card.locator("#deviation-table")).to_contain_text(column)
            expect(card.locator("#rehearsal-history tbody tr").first).to_contain_text(status)
            card.screenshot(path=str(SHOTS / "en-deviation-report.png"))
            browser.close()
    finally:
        endpoint.stop()
        serving.join(timeout=5)
    assert problems == []
    reports = [r.report for r in Rehearsal.objects.order_by("id")]
    assert [r["element_id"] for r in reports] == [left.pk, right.pk]
    assert all(r["tip_offset_mm"] < 1.0 and r["nerve_contacts"] == 0 for r in reports)
