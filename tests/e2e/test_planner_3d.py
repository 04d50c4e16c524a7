"""The plan page's 3D view in Chromium (WebGL through SwiftShader), in Chinese and in English: the
lumbar phantom's bones (built by the real case builder) and the plan's two screws are drawn
(pixels on the canvas, the breaching screw in red); clicking a row marks the screw and clicking
the screw marks its row; "set entry" and a click on the bone fill the add form with a point on
the bone surface; orientation letters and a scale bar are shown; a browser without WebGL gets
a message instead. No CSP violation, no page error. Screenshots in /tmp/planner-3d."""

import os
import re
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
            scale_mm = page.locator("#planner-3d .planner-scale").get_attribute("data-mm")
            expect(page.locator("#planner-3d .planner-scale span")).to_have_text(f"{scale_mm} mm")

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


# the slice canvases as counts: pixels of the crosshair's yellow, red and green element paths
SLICE_PIXELS = """(view) => {
  const c = document.querySelector(`[data-slice-view="${view}"] canvas`);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let cross = 0, red = 0, green = 0, grey = 0;
  for (let i = 0; i < d.length; i += 4) {
    const r = d[i], g = d[i + 1], b = d[i + 2];
    if (r > 200 && g > 170 && b < 140 && b < g - 50) cross++;
    else if (r > 140 && r > 2 * g && r > 2 * b) red++;
    else if (g > 110 && g > r + 40 && g > b + 20) green++;
    else if (Math.abs(r - g) < 4 && Math.abs(g - b) < 4 && r > 40) grey++;
  }
  return {total: d.length / 4, cross, red, green, grey};
}"""
SLICE_WORDS = {
    "zh-CN": {
        "axial": "轴位",
        "number": "第 {n}/{total} 层",
        "breach": "皮质突破",
        "conflict": "规划已被修改",
    },
    "en-US": {
        "axial": "Axial",
        "number": "Slice {n}/{total}",
        "breach": "Cortical breach",
        "conflict": "changed",
    },
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


@pytest.mark.django_db(transaction=True)
def test_a_screw_dragged_into_the_canal_warns_live_saves_on_release_and_a_stale_drag_is_refused(
    shell_server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    plan, path = _plan_with_two_screws(tmp_path_factory.mktemp("planner-drag"))
    left, right = list(PlanElement.objects.filter(plan=plan).order_by("id"))
    assert _status(left.checks) != "breach", left.checks
    planned_left = PlanElement.objects.get(pk=left.pk)
    bundle = load_bundle(path)
    bone_vertices = np.concatenate([m.vertices_mm for m in bundle.meshes])
    marks = {
        m["name"]: [float(x) for x in bundle.case_from_patient_mm(m["lps_mm"])]
        for m in bundle.meta["landmarks"]
    }
    SHOTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for locale, lang in (("zh-CN", "zh"), ("en-US", "en")):
            words = SLICE_WORDS[locale]
            # each language starts from the left screw as first planned
            plan.refresh_from_db()
            planning.update_element(
                actor=plan.created_by,
                element=left,
                version=plan.version,
                data=planning.ElementData(
                    kind="pedicle_screw",
                    label="L4 left",
                    entry_mm=list(planned_left.entry_mm),
                    target_mm=list(planned_left.target_mm),
                    implant_id=SCREW,
                ),
            )
            left.refresh_from_db()
            plan.refresh_from_db()
            page = _signed_in(browser, shell_server, locale, problems)
            page.goto(f"{shell_server}/planning/{plan.pk}/")
            expect(page.locator("#planner-3d")).to_have_attribute(
                "data-ready", "true", timeout=60_000
            )
            # the protected zones: the phantom's nerve labels, in the legend
            assert page.evaluate("window.osteonPlanner.zones") == ["nerve"]
            expect(page.locator('[data-zone-legend="nerve"]')).to_be_visible()
            expect(page.locator('[data-zone-legend="vessel"]')).to_be_hidden()

            # the slices: each with its number of total, letters on four sides and a scale bar
            expect(page.locator("#planner-slices")).to_have_attribute("data-ready", "true")
            for view in ("axial", "sagittal", "coronal"):
                figure = page.locator(f'[data-slice-view="{view}"]')
                expect(figure).to_have_attribute("data-loaded", re.compile(r"^\d+$"))
                n = int(figure.get_attribute("data-slice") or "0") + 1
                total = bundle.hu.shape[{"axial": 0, "sagittal": 2, "coronal": 1}[view]]
                expect(figure.locator('[data-role="slice-number"]')).to_have_text(
                    words["number"].format(n=n, total=total)
                )
                expect(figure.locator(".slice-letter")).to_have_count(4)
                expect(figure.locator(".planner-scale span")).to_have_text(re.compile(r"^\d+ mm$"))
            expect(page.locator('[data-slice-view="axial"] figcaption strong')).to_have_text(
                words["axial"]
            )
            expect(page.locator('[data-slice-view="axial"] [data-side="left"]')).to_have_text("R")
            expect(page.locator('[data-slice-view="sagittal"] [data-side="left"]')).to_have_text(
                "A"
            )

            # selecting the left screw: the crosshair goes to its entry, the slices through it
            # show the crosshair and the screw
            page.locator(f'tr[data-element-id="{left.pk}"] td').first.click()
            entry = [round(v, 2) for v in left.entry_mm]
            assert page.evaluate("window.osteonPlanner.cross") == pytest.approx(entry, abs=0.01)
            axial = page.locator('[data-slice-view="axial"]')
            expect(axial).to_have_attribute("data-loaded", str(round(entry[0] / 0.5)))
            status = _status(left.checks)
            shown = page.evaluate(SLICE_PIXELS, "axial")
            assert shown["cross"] > 100 and shown["grey"] > 1000, shown
            assert shown["green" if status == "ok" else "red"] + shown["red"] > 20, shown
            expect(page.locator("#planner-live")).to_be_visible()
            page.locator("#view3d").screenshot(path=str(SHOTS / f"{lang}-slices-selected.png"))

            # a click in the axial slice moves the crosshair in the other two views
            before = page.locator('[data-slice-view="sagittal"]').get_attribute("data-slice")
            box = page.locator('[data-slice-view="axial"] canvas').bounding_box()
            assert box is not None
            page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
            cross = page.evaluate("window.osteonPlanner.cross")
            assert cross[0] == pytest.approx(entry[0], abs=0.3)  # the axial slice stays
            expect(page.locator('[data-slice-view="sagittal"]')).not_to_have_attribute(
                "data-slice", before or ""
            )

            # drag the left screw's entry towards the canal: the live check warns before release
            page.locator(f'tr[data-element-id="{left.pk}"] td').first.click()
            page.locator("#planner-3d").scroll_into_view_if_needed()
            start = page.evaluate("window.osteonPlanner.handleScreenPoint('entry')")
            canal = page.evaluate(
                f"window.osteonPlanner.caseScreenPoint({marks['L4_canal_centre']})"
            )
            checks_before = page.evaluate("window.osteonPlanner.checks")
            _drag(page, start, canal)
            assert page.evaluate("window.osteonPlanner.dragging")
            expect(page.locator("#planner-live")).to_have_attribute(
                "data-status", "breach", timeout=20_000
            )
            assert page.evaluate("window.osteonPlanner.checks") > checks_before
            expect(
                page.locator('#planner-live [data-role="live-warnings"] li').first
            ).to_be_visible()
            live = page.evaluate("window.osteonPlanner.live")
            assert {"cortical_breach", "protected_zone_contact"} & set(live["flags"]), live
            expect(page.locator('#planner-live [data-role="live-warnings"]')).to_contain_text(
                words["breach"] if "cortical_breach" in live["flags"] else ""
            )
            page.locator("#view3d").screenshot(path=str(SHOTS / f"{lang}-drag-live.png"))
            # nothing saved while dragging
            assert PlanElement.objects.get(pk=left.pk).entry_mm == left.entry_mm
            version = Plan.objects.get(pk=plan.pk).version

            # released: saved with the page's version, the page reloads with the new checks
            with page.expect_navigation():
                page.mouse.up()
            expect(page.locator("#planner-3d")).to_have_attribute(
                "data-ready", "true", timeout=60_000
            )
            saved = PlanElement.objects.get(pk=left.pk)
            assert Plan.objects.get(pk=plan.pk).version == version + 1
            assert saved.entry_mm != left.entry_mm
            # the entry sits on the bone surface
            assert np.linalg.norm(bone_vertices - np.asarray(saved.entry_mm), axis=1).min() < 2.0
            assert _status(saved.checks) == "breach", saved.checks
            expect(page.locator(f'tr[data-warnings-for="{left.pk}"]')).to_be_visible()
            expect(page.locator("#planner-live-status")).to_be_visible()
            page.screenshot(path=str(SHOTS / f"{lang}-drag-saved.png"), full_page=True)

            # another browser saves first: this page's drag is refused, nothing changes
            planning.update_element(
                actor=plan.created_by,
                element=right,
                version=version + 1,
                data=planning.ElementData(
                    kind="pedicle_screw",
                    label=f"L4 right {lang}",
                    entry_mm=list(right.entry_mm),
                    target_mm=list(right.target_mm),
                    implant_id=SCREW,
                ),
            )
            right.refresh_from_db()
            page.locator(f'tr[data-element-id="{left.pk}"] td').first.click()
            page.locator("#planner-3d").scroll_into_view_if_needed()
            start = page.evaluate("window.osteonPlanner.handleScreenPoint('target')")
            _drag(page, start, {"x": start["x"] + 30, "y": start["y"] + 10})
            page.mouse.up()
            expect(page.locator("#planner-live-status")).to_contain_text(
                words["conflict"], timeout=20_000
            )
            expect(page.locator("#planner-reload")).to_be_visible()
            assert page.evaluate("window.osteonPlanner.conflict") == "plan_version_conflict"
            assert PlanElement.objects.get(pk=left.pk).target_mm == saved.target_mm
            assert Plan.objects.get(pk=plan.pk).version == version + 2
            page.locator("#view3d").screenshot(path=str(SHOTS / f"{lang}-drag-conflict.png"))

            # "set target", then a click on the bone: a point inside the bone in the form
            page.click("#planner-set-target")
            centre = page.evaluate("window.osteonPlanner.boneScreenPoint()")
            page.mouse.click(centre["x"], centre["y"])
            target = [float(page.input_value(f"#id_target_{axis}")) for axis in "xyz"]
            assert target == page.evaluate("window.osteonPlanner.target")
            lo = np.asarray(bone_vertices.min(axis=0))
            hi = np.asarray(bone_vertices.max(axis=0))
            assert np.all(np.asarray(target) > lo) and np.all(np.asarray(target) < hi)

            # the printed plan carries the 3D view and the slices through the first element
            page.goto(f"{shell_server}/planning/{plan.pk}/print/")
            expect(page.locator("#planner-3d")).to_have_attribute(
                "data-ready", "true", timeout=60_000
            )
            for view in ("axial", "sagittal", "coronal"):
                expect(page.locator(f'[data-slice-view="{view}"]')).to_have_attribute(
                    "data-loaded", re.compile(r"^\d+$")
                )
            assert page.evaluate("window.osteonPlanner.cross") == pytest.approx(
                [round(v, 2) for v in PlanElement.objects.get(pk=left.pk).entry_mm], abs=0.01
            )
            expect(page.locator("#planner-set-entry")).to_have_count(0)
            page.emulate_media(media="print")
            expect(page.locator("#view3d")).to_be_visible()
            expect(page.locator("#view3d .planner-tools")).to_be_hidden()
            page.screenshot(path=str(SHOTS / f"{lang}-print.png"), full_page=True)
            page.close()
        browser.close()
    assert problems == []
