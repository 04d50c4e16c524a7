"""The CT viewer's safety overlays and its loading on a slow link, in Chromium against the server.

The patient banner names the authorised patient; each view says which it is (Chinese first),
where the patient's sides are, which slice of how many, its window/level; a click in one view
moves the other two; the progress bar counts the slices in. Someone who may not see the patient
gets a refusal and no banner; slices travel gzipped to a browser that asks for it.
"""

import gzip
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from playwright.sync_api import Page, expect, sync_playwright
from pytest_django.fixtures import Settings
from shell_personas import PERSONA_PASSWORD, Network, Personas
from shell_server import database_url, start_shell_server

from clinical_shell.imaging import report_services as reports
from clinical_shell.imaging import services as imaging
from clinical_shell.imaging.models import Instance, Series
from clinical_shell.records.models import Patient
from sim_core.ct.phantom import make_phantom, write_phantom

REPO = Path(__file__).resolve().parents[3]
SLICES = 24
MATRIX = 128
SCREENSHOT = Path("/tmp/viewer_overlays.png")
# patient direction letters at (top, bottom, left, right) of each view, radiological convention
ORIENTATION = {
    "axial": ("A", "P", "R", "L"),
    "sagittal": ("S", "I", "A", "P"),
    "coronal": ("S", "I", "R", "L"),
}
VIEW_NAMES = {"axial": "轴位", "sagittal": "矢状位", "coronal": "冠状位"}


@pytest.fixture
def phantom_ct(
    settings: Settings,
    tmp_path: Path,
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
) -> Series:
    """A small lumbar phantom (24 slices of 128 x 128) in the record of the 双柏 patient."""
    settings.OSTEON_DICOM_ROOT = tmp_path / "dicom"
    phantom = make_phantom("lumbar", seed=3, slices=SLICES, matrix=MATRIX)
    files = write_phantom(phantom, tmp_path / "phantom")
    handles = [f.open("rb") for f in files]
    try:
        report = imaging.import_upload(
            actor=personas.county_surgeon,
            institution=shell_network.shuangbai,
            files=[(f.name, h) for f, h in zip(files, handles, strict=True)],
            patient=patient_in_shuangbai,
        )
    finally:
        for h in handles:
            h.close()
    assert not report.refused, report.refused
    return Series.objects.get()


def view_text(page: Page, view: str, role: str) -> str:
    return page.locator(f'[data-view="{view}"] [data-role="{role}"]').inner_text().strip()


def slice_number(page: Page, view: str) -> str | None:
    return page.locator(f'[data-view="{view}"]').get_attribute("data-slice")


@pytest.mark.django_db(transaction=True)
def test_the_viewer_shows_who_and_where_and_links_the_views(
    phantom_ct: Series,
    patient_in_shuangbai: Patient,
    personas: Personas,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Playwright's sync API keeps an event loop in this thread; the ORM calls here are plain sync
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # the radiologist has reported the study: the surgeon reads it beside the images
    draft = reports.create_draft(
        actor=personas.radiologist,
        study_id=phantom_ct.study_id,
        text=reports.ReportText(
            findings="L4 椎体形态正常，双侧椎弓根完整，未见骨折线。",
            impression="腰椎未见明显骨折。",
        ),
    )
    reports.sign_report(actor=personas.radiologist, report_id=draft.pk, version=1)
    server = start_shell_server(
        env={
            "OSTEON_DATABASE_URL": database_url(),
            "OSTEON_STATIC_ROOT": str(REPO / "var" / "test-static-imaging"),
            "OSTEON_DICOM_ROOT": str(Path(settings.OSTEON_DICOM_ROOT).resolve()),
        },
        log=tmp_path / "server.log",
    )
    errors: list[str] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox"]
            )
            page = browser.new_page(viewport={"width": 1500, "height": 950}, locale="zh-CN")
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{server.url}/accounts/sign-in/")
            page.fill("#id_username", personas.county_surgeon.username)
            page.fill("#id_password", PERSONA_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            page.goto(f"{server.url}/imaging/series/{phantom_ct.pk}/")
            page.wait_for_selector("#osteon-viewer[data-state=ready]", timeout=60_000)
            page.wait_for_timeout(300)  # the overlays are filled on the next frame

            # the banner: the authorised patient, the study's date and description
            banner = page.locator("#patient-banner")
            assert banner.locator('[data-role="patient-name"]').inner_text() == "张三丰"
            number = banner.locator('[data-role="patient-number"]').inner_text()
            assert number == str(patient_in_shuangbai.pk)
            assert banner.locator('[data-role="patient-sex"]').inner_text() == "男"
            # born 1958-03-14, phantom studies are dated 2024-01-01: 65 on the study's day
            study_date = phantom_ct.study.study_date
            assert study_date is not None
            age = study_date.year - 1958 - ((study_date.month, study_date.day) < (3, 14))
            assert banner.locator('[data-role="patient-age"]').inner_text() == f"{age} 岁"
            assert banner.locator('[data-role="study-date"]').inner_text() == (
                study_date.isoformat()
            )
            assert (
                "phantom lumbar" in banner.locator('[data-role="study-description"]').inner_text()
            )

            # the signed report beside the images
            panel = page.locator("#study-report")
            assert panel.get_attribute("data-state") == "signed"
            assert "腰椎未见明显骨折" in panel.inner_text()

            # every slice arrived, counted on the progress bar
            loading = page.locator('[data-role="loading"]')
            assert loading.get_attribute("data-done") == "true"
            bar = page.locator('[data-role="progress"]')
            assert bar.evaluate("b => [b.value, b.max]") == [SLICES, SLICES]
            # the reformats replaced their "loading" notices
            assert not page.locator('[data-view="sagittal"] [data-role="placeholder"]').is_visible()
            timing = page.locator("#osteon-viewer")
            first_ms = float(timing.get_attribute("data-first-image-ms") or "nan")
            all_ms = float(timing.get_attribute("data-all-slices-ms") or "nan")
            assert 0 < first_ms <= all_ms

            # each view: its name, the patient's sides, slice n of N, position and thickness
            for view, (top, bottom, left, right) in ORIENTATION.items():
                assert view_text(page, view, "view-name") == VIEW_NAMES[view]
                sides = [view_text(page, view, f"orient-{s}") for s in ("top", "bottom", "left")]
                assert [*sides, view_text(page, view, "orient-right")] == [top, bottom, left, right]
                counted = re.fullmatch(r"第 (\d+)/(\d+) 层", view_text(page, view, "slice"))
                assert counted is not None
                assert 1 <= int(counted[1]) <= int(counted[2])
                assert re.fullmatch(
                    r"位置 -?\d+\.\d mm · 层厚 \d+\.\d\d mm", view_text(page, view, "position")
                )
                assert view_text(page, view, "scalebar-label").endswith(" mm")
            assert view_text(page, "axial", "slice").endswith(f"/{SLICES} 层")

            # window/level: the readout follows a change
            before = view_text(page, "axial", "wl")
            page.click("[data-preset=bone]")
            # expect() polls from Playwright's own script: wait_for_function would need eval,
            # which the page's CSP forbids once the condition is not true at the first look
            expect(page.locator("[data-view=axial] [data-role=wl]")).to_have_text(
                "窗宽 2000 · 窗位 500", timeout=60_000
            )
            assert before != view_text(page, "axial", "wl")
            assert view_text(page, "coronal", "wl") == "窗宽 2000 · 窗位 500"

            # a click off-centre in the axial view moves the sagittal and coronal slices there
            sagittal, coronal = slice_number(page, "sagittal"), slice_number(page, "coronal")
            axial = slice_number(page, "axial")
            box = page.locator("[data-viewport=axial]").bounding_box()
            assert box is not None
            page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.35)
            # a loaded CI machine renders the three views slowly
            for view, was in (("sagittal", sagittal), ("coronal", coronal)):
                expect(page.locator(f"[data-view={view}]")).not_to_have_attribute(
                    "data-slice", was or "", timeout=60_000
                )
            assert slice_number(page, "axial") == axial
            # the sagittal slice is the clicked column: the square image fills the view's width
            # or height, centred; its 128 columns run from the patient's right (screen left)
            side = min(box["width"], box["height"])
            column = (box["width"] * 0.3 - (box["width"] - side) / 2) / side * MATRIX
            assert abs(int(slice_number(page, "sagittal") or 0) - 1 - column) <= 1.5
            assert page.locator('[data-view="sagittal"] [data-role="crosshair"]').is_visible()

            # measurements on the axial view: a length, an angle, a region's CT values
            def at(fx: float, fy: float) -> tuple[float, float]:
                assert box is not None
                return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy

            def drag(a: tuple[float, float], b: tuple[float, float]) -> None:
                page.mouse.move(*a)
                page.mouse.down()
                page.mouse.move((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, steps=4)
                page.mouse.move(*b, steps=4)
                page.mouse.up()

            page.click("[data-tool=length]")
            drag(at(0.3, 0.5), at(0.7, 0.5))
            page.click("[data-tool=roi]")
            drag(at(0.45, 0.3), at(0.55, 0.4))
            page.click("[data-tool=angle]")
            drag(at(0.3, 0.7), at(0.5, 0.6))
            page.mouse.click(*at(0.7, 0.7))
            measured = page.locator('[data-role="measurements"] li')
            expect(measured).to_have_count(3, timeout=30_000)
            kinds = {m.get_attribute("data-kind"): m.inner_text() for m in measured.all()}
            assert set(kinds) == {"length", "roi", "angle"}, kinds
            length = page.locator('[data-role="measurements"] li[data-kind=length]')
            assert float(length.get_attribute("data-value") or 0) > 0
            assert kinds["roi"].endswith("mm²") and " HU" in kinds["roi"]
            assert kinds["angle"].endswith("°") and 0 < float(kinds["angle"][:-1]) < 180
            page.wait_for_timeout(200)
            page.screenshot(path=str(SCREENSHOT))
            browser.close()
    finally:
        server.stop()
    assert errors == []


def test_someone_outside_the_patients_care_gets_no_banner(
    phantom_ct: Series,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
) -> None:
    response = signed_in_client(personas.outsider).get(f"/imaging/series/{phantom_ct.pk}/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "patient-banner" not in page
    assert "张三丰" not in page


def test_slices_travel_gzipped_to_a_browser_that_asks(
    phantom_ct: Series,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
) -> None:
    client = signed_in_client(personas.county_surgeon)
    instance = Instance.objects.filter(series=phantom_ct).first()
    assert instance is not None
    stored = imaging.instance_path(instance).read_bytes()
    response = client.get(f"/imaging/instances/{instance.pk}/file", HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    # the phantom has noise like a real scan: about half the size
    assert int(response["Content-Length"]) < len(stored) * 0.8
    assert gzip.decompress(response.content) == stored
    # without the header the file travels as it is
    plain = client.get(f"/imaging/instances/{instance.pk}/file")
    assert not plain.has_header("Content-Encoding")
    assert plain.content == stored
    assert io.BytesIO(plain.content).read(132)[128:] == b"DICM"
