"""Rehearsing an approved plan, in Chromium: the surgeon picks a station on the plan page and
sends the L4 left screw to it; the station (a StationRunner with the scripted expert, over the
shell's bridge endpoint on loopback ZeroMQ, in this process) drills it; once the result is
verified by replay, the plan page shows the deviation report and the rehearsal in its history,
in Chinese and in English. Screenshots of the card in /tmp/plan-pages."""

import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from planning_setup import PASSWORD, surgeon_with_lumbar_case
from playwright.sync_api import expect, sync_playwright

from bridge.endpoint import Endpoint
from bridge.keys import new_curve_keys
from bridge.station import StationRunner, enroll
from clinical_shell.planning import services as planning
from clinical_shell.planning.models import Rehearsal
from clinical_shell.stations import services as stations
from clinical_shell.stations.bridge_side import DjangoShellSide
from clinical_shell.stations.models import SessionResult

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bridge"))
from bridge_helpers import free_port_block

CHROMIUM = "/usr/bin/chromium"
# WebGL in software, so the 3D view draws the rehearsed path beside the planned one
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--no-first-run",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
SHOTS = Path(os.environ.get("OSTEON_SCREENSHOT_DIR", "/tmp/plan-pages"))
SCREW = "pedicle_screw_6.5x45"
WORDS = {
    "zh-CN": ("偏差报告", "入点偏差 (mm)", "已验证"),
    "en-US": ("Deviation report", "Entry offset (mm)", "Verified"),
}


@pytest.mark.django_db(transaction=True)
def test_a_surgeon_rehearses_a_plan_and_reads_its_deviation_report(
    shell_server: str, settings: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.OSTEON_STATION_RECORDING_ROOT = tmp_path / "recordings"
    lumbar = surgeon_with_lumbar_case(
        tmp_path_factory.mktemp("rehearsal-case"), username="e2e.planner", uid_root="1.2.826.0.98"
    )
    surgeon, case, marks, center = lumbar.surgeon, lumbar.case, lumbar.marks, lumbar.center
    plan = planning.create_plan(
        actor=surgeon, patient=case.patient, case=case, title="L4 椎弓根螺钉"
    )
    element = planning.add_element(
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
    planning.approve_plan(actor=surgeon, plan=plan, version=2)

    # the shell's bridge endpoint, and a station of the center enrolled through it
    keys = new_curve_keys()
    port = free_port_block()
    endpoint = Endpoint(DjangoShellSide(), keys, port=port)
    serving = threading.Thread(target=endpoint.serve_forever, daemon=True)
    serving.start()
    assert endpoint.wait_ready()
    issued = stations.create_enrolment_code(actor=None, institution=center, room="技能中心 1 室")
    station_dir = tmp_path / "station"
    enroll(
        station_dir, shell_url=f"tcp://127.0.0.1:{port}", code=issued.code, shell_key=keys.public
    )

    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for n, locale in enumerate(("zh-CN", "en-US")):
                lang = locale[:2]
                page = browser.new_page(viewport={"width": 1280, "height": 900}, locale=locale)
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.on(
                    "console",
                    lambda m: (
                        problems.append(m.text) if "Content Security Policy" in m.text else None
                    ),
                )
                page.goto(f"{shell_server}/accounts/sign-in/")
                page.fill("#id_username", "e2e.planner")
                page.fill("#id_password", PASSWORD)
                page.click("button.primary")
                page.wait_for_url("**/patients/")
                page.goto(f"{shell_server}/planning/{plan.pk}/")
                if n == 0:
                    # "rehearse on station X": the form sends it, the session page follows
                    page.click("#rehearse-form button[type=submit]")
                    page.wait_for_url(re.compile(r".*/stations/sessions/\d+/$"))
                    runner = StationRunner(station_dir, realtime=False, echo=lambda s: None)
                    assert runner.run(max_sessions=1) == 0
                    result = SessionResult.objects.get()
                    verified = stations.verify_result_by_replay(result_id=result.pk)
                    assert verified.verification == "verified", verified.rejection_reason
                    page.goto(f"{shell_server}/planning/{plan.pk}/")
                card = page.locator("#rehearsals")
                title, column, status = WORDS[locale]
                expect(card).to_contain_text(title)
                expect(card.locator("#deviation-table")).to_contain_text(column)
                expect(card.locator("#deviation-table tbody tr")).to_have_count(1)
                expect(card.locator("#rehearsal-history tbody tr")).to_contain_text(status)
                expect(card.locator('[data-deviation="tip"]')).to_have_text("0.00")
                card.screenshot(path=str(SHOTS / f"{lang}-plan-rehearsal.png"))
                if n == 0:
                    # the 3D view draws the drilled path (dashed) beside the planned screw
                    view = page.locator("#planner-3d")
                    expect(view).to_have_attribute("data-ready", "true", timeout=60_000)
                    drawn = page.evaluate("() => window.osteonPlanner.achieved")
                    assert len(drawn) == 1 and drawn[0]["element"] == element.pk, drawn
                    shot = SHOTS / "zh-plan-3d-rehearsed.png"
                    page.locator("#view3d").screenshot(path=str(shot))
                page.close()
            browser.close()
    finally:
        endpoint.stop()
        serving.join(timeout=5)
    assert problems == []
    rehearsal = Rehearsal.objects.get()
    assert rehearsal.report["tip_offset_mm"] < 0.5
