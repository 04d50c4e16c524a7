"""The plan page's 3D view in Chromium (WebGL through SwiftShader), in Chinese and in English: the
lumbar phantom's bones (built by the real case builder) and the plan's two screws are drawn
(pixels on the canvas, the breaching screw in red); clicking a row marks the screw and clicking
the screw marks its row; "set entry" and a click on the bone fill the add form with a point on
the bone surface; orientation letters and a scale bar are shown; a browser without WebGL gets
a message instead. No CSP violation, no page error. Screenshots in /tmp/planner-3d."""

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from planning_setup import PASSWORD, surgeon_with_lumbar_case
from playwright.sync_api import Browser, Page, expect, sync_playwright

from clinical_shell.planning import services as planning
from clinical_shell.planning.models import Plan, PlanElement
from sim_core.case.bundle import load_bundle

CHROMIUM = "/usr/bin/chromium"
# WebGL without a GPU: ANGLE on SwiftShader (software)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--no-first-run",
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
SHOTS = Path(os.environ.get("OSTEON_SCREENSHOT_DIR", "/tmp/planner-3d"))
SCREW = "pedicle_screw_6.5x45"
WORDS = {
    "zh-CN": {"title": "三维视图", "letter": "前 A", "no_webgl": "WebGL 不可用"},
    "en-US": {"title": "3D view", "letter": "A", "no_webgl": "WebGL is not available"},
}

# the canvas as RGB counts: pixels unlike the background, reddish ones, greenish ones
CANVAS_PIXELS = """() => {
  const c = document.querySelector('#planner-3d canvas');
  const copy = document.createElement('canvas');
  copy.width = c.width; copy.height = c.height;
  const g = copy.getContext('2d');
  g.drawImage(c, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let drawn = 0, red = 0, green = 0;
  for (let i = 0; i < d.length; i += 4) {
    const r = d[i], gr = d[i + 1], b = d[i + 2];
    if (Math.abs(r - 0x1d) + Math.abs(gr - 0x23) + Math.abs(b - 0x2b) > 30) drawn++;
    if (r > 140 && r > 2 * gr && r > 2 * b) red++;
    if (gr > 110 && gr > r + 40 && gr > b + 20) green++;
  }
  return {total: d.length / 4, drawn, red, green};
}"""


def _towards_canal(marks: dict[str, list[float]], side: str, mm: float) -> np.ndarray:
    entry = np.asarray(marks[f"L4_pedicle_entry_{side}"])
    axis = np.asarray(marks[f"L4_pedicle_target_{side}"]) - entry
    towards = np.asarray(marks["L4_canal_centre"]) - entry
    across = towards - axis * np.dot(towards, axis) / np.dot(axis, axis)
    return np.asarray(mm * across / np.linalg.norm(across))


def _plan_with_two_screws(root: Path) -> tuple[Plan, Path]:
    """A surgeon's draft plan on a patient's lumbar case: L4 left as planned, L4 right moved
    6 mm towards the canal."""
    lumbar = surgeon_with_lumbar_case(root, username="e2e.planner3d", uid_root="1.2.826.0.98")
    surgeon, case, marks, path = lumbar.surgeon, lumbar.case, lumbar.marks, lumbar.path
    plan = planning.create_plan(actor=surgeon, patient=case.patient, case=case, title="L4 双侧螺钉")
    shift = {"left": np.zeros(3), "right": _towards_canal(marks, "right", 6.0)}
    for version, side in enumerate(("left", "right"), start=1):
        planning.add_element(
            actor=surgeon,
            plan=plan,
            version=version,
            data=planning.ElementData(
                kind="pedicle_screw",
                label=f"L4 {side}",
                entry_mm=list(np.asarray(marks[f"L4_pedicle_entry_{side}"]) + shift[side]),
                target_mm=list(np.asarray(marks[f"L4_pedicle_target_{side}"]) + shift[side]),
                implant_id=SCREW,
            ),
        )
    return plan, path


def _status(checks: dict[str, Any]) -> str:
    flags = set(checks.get("flags", ()))
    if flags & {"cortical_breach", "protected_zone_contact"}:
        return "breach"
    return "warning" if flags else "ok"


def _signed_in(browser: Browser, base: str, locale: str, problems: list[str]) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale=locale)
    page.on("pageerror", lambda e: problems.append(f"{locale}: {e}"))
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{base}/accounts/sign-in/")
    page.fill("#id_username", "e2e.planner3d")
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/patients/")
    return page


@pytest.mark.django_db(transaction=True)
def test_the_plan_page_draws_the_bones_and_screws_and_links_them_to_the_table(
    shell_server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    plan, path = _plan_with_two_screws(tmp_path_factory.mktemp("planner-case"))
    elements = list(PlanElement.objects.filter(plan=plan).order_by("id"))
    expected = {e.pk: _status(e.checks) for e in elements}
    assert expected[elements[1].pk] == "breach", elements[1].checks
    bundle = load_bundle(path)
    bone_vertices = np.concatenate([m.vertices_mm for m in bundle.meshes])
    SHOTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for locale, lang in (("zh-CN", "zh"), ("en-US", "en")):
            words = WORDS[locale]
            page = _signed_in(browser, shell_server, locale, problems)
            page.goto(f"{shell_server}/planning/{plan.pk}/")
            expect(page.locator("#view3d h2")).to_have_text(words["title"])
            expect(page.locator("#planner-3d")).to_have_attribute(
                "data-ready", "true", timeout=60_000
            )
            expect(page.locator("#planner-message")).to_be_hidden()

            # the scene: both screws with their check status, the bones' triangles
            scene = page.evaluate("window.osteonPlanner.elements")
            assert {e["id"]: e["status"] for e in scene} == expected
            assert 1000 < page.evaluate("window.osteonPlanner.triangles") <= 60_000
            pixels = page.evaluate(CANVAS_PIXELS)
            assert pixels["drawn"] > 0.05 * pixels["total"], pixels
            assert pixels["red"] > 20, pixels  # the breaching screw
            if expected[elements[0].pk] == "ok":
                assert pixels["green"] > 20, pixels

            # orientation letters and a scale bar
            expect(page.locator(".planner-orient")).to_have_count(6)
            expect(page.locator('.planner-orient[data-letter="A"]')).to_have_text(words["letter"])
            expect(page.locator(".planner-scale span")).to_have_text(
                page.locator(".planner-scale").get_attribute("data-mm") + " mm"
            )

            # a row marks its screw; the other screw clicked in the view marks its row
            right, left = elements[1].pk, elements[0].pk
            page.locator(f'tr[data-element-id="{right}"] td').first.click()
            assert page.evaluate("window.osteonPlanner.selected") == right
            expect(page.locator(f'tr[data-element-id="{right}"]')).to_have_class(
                "has-warnings planner-selected"
            )
            page.locator("#planner-3d").scroll_into_view_if_needed()
            point = page.evaluate(f"window.osteonPlanner.elementScreenPoint({left})")
            page.mouse.click(point["x"], point["y"])
            assert page.evaluate("window.osteonPlanner.selected") == left
            expect(page.locator("tr.planner-selected")).to_have_count(1)
            expect(page.locator(f'tr[data-element-id="{left}"]')).to_have_class("planner-selected")
            page.screenshot(path=str(SHOTS / f"{lang}-plan-3d.png"), full_page=True)

            # "set entry", then a click on the bone: the form's entry is a point on the surface
            page.click("#planner-set-entry")
            expect(page.locator("#planner-set-entry")).to_have_attribute("aria-pressed", "true")
            centre = page.evaluate("window.osteonPlanner.boneScreenPoint()")
            page.mouse.click(centre["x"], centre["y"])
            expect(page.locator("#planner-set-entry")).to_have_attribute("aria-pressed", "false")
            entry = [float(page.input_value(f"#id_entry_{axis}")) for axis in "xyz"]
            assert entry == page.evaluate("window.osteonPlanner.entry")
            nearest = np.linalg.norm(bone_vertices - np.asarray(entry), axis=1).min()
            assert nearest < 2.0, (entry, nearest)
            page.locator("#view3d").screenshot(path=str(SHOTS / f"{lang}-plan-3d-entry.png"))
            page.close()

            # no WebGL: a message in place of the view, the rest of the page as before
            page = _signed_in(browser, shell_server, locale, problems)
            page.add_init_script("delete window.WebGL2RenderingContext")
            page.goto(f"{shell_server}/planning/{plan.pk}/")
            expect(page.locator("#planner-message")).to_contain_text(words["no_webgl"])
            expect(page.locator("#planner-3d")).to_have_attribute("data-ready", "no-webgl")
            expect(page.locator("#elements-table tbody tr[data-element-id]")).to_have_count(2)
            page.close()
        browser.close()
    assert problems == []
