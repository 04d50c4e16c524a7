"""Key images in Chromium: a surgeon marks the axial slice in view with a note, finds it listed
after a reload, jumps back to it from the list, and reads it on the study's report page. The
sagittal and coronal views are laid out from the series' geometry before every slice is in."""

import os
from datetime import date
from pathlib import Path

import pydicom
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging import services as imaging
from clinical_shell.imaging.key_images_models import KeyImage
from clinical_shell.imaging.models import Series
from clinical_shell.imaging.selectors import instances_in_viewing_order
from clinical_shell.network import services as network
from clinical_shell.network.models import Role
from clinical_shell.records import services as records
from sim_core.ct.phantom import make_phantom, write_phantom

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "Osteon-e2e-2026!"
SHOTS = Path(os.environ.get("OSTEON_E2E_SHOTS", "/tmp/shellshots2"))
SLICES = 16
NOTE = "L4 椎弓根螺钉入点"


def _ct_of_a_patient(tmp_path: Path) -> Series:
    center = network.create_institution(
        actor=None, code="KI-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    person = network.create_person(
        actor=None, username="e2e.keys", password=PASSWORD, full_name="王医生", title="attending"
    )
    network.add_membership(actor=None, person=person, institution=center, role=Role.SURGEON)
    patient = records.register_patient(
        actor=person.user, institution=center, name="李明", sex="M", birth_date=date(1990, 5, 1)
    )
    files = write_phantom(
        make_phantom("lumbar", seed=3, slices=SLICES, matrix=96), tmp_path / "phantom"
    )
    handles = [f.open("rb") for f in files]
    try:
        report = imaging.import_upload(
            actor=person.user,
            institution=center,
            files=[(f.name, h) for f, h in zip(files, handles, strict=True)],
            patient=patient,
        )
    finally:
        for h in handles:
            h.close()
    assert not report.refused, report.refused
    return Series.objects.get(instances__sop_uid=pydicom.dcmread(files[0]).SOPInstanceUID)


def _open(page: Page, url: str) -> None:
    page.goto(url)
    # "ready" once every slice is in; the reformats were drawn before that
    page.wait_for_selector("#osteon-viewer[data-state=ready]", timeout=60_000)


def _axial_slice(page: Page) -> int:
    return int(page.locator('[data-view="axial"]').get_attribute("data-slice") or "0")


@pytest.mark.django_db(transaction=True)
def test_a_key_image_marked_in_the_viewer_is_listed_after_reload_and_on_the_report(
    shell_server: str, tmp_path: Path
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    series = _ct_of_a_patient(tmp_path)
    viewer = f"{shell_server}/imaging/series/{series.pk}/"
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 950}, locale="zh-CN")
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{shell_server}/accounts/sign-in/")
        page.fill("#id_username", "e2e.keys")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        _open(page, viewer)
        root = page.locator("#osteon-viewer")
        # the reformats were laid out from the geometry, not after the last slice
        assert root.get_attribute("data-reformats") == "streaming"
        assert not page.locator('[data-view="sagittal"] [data-role="filling"]').is_visible()

        # three slices up from the middle with the wheel, then mark that slice
        box = page.locator("[data-viewport=axial]").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        middle = _axial_slice(page)
        for _ in range(3):
            page.mouse.wheel(0, 120)
            page.wait_for_timeout(150)
        expect(page.locator('[data-view="axial"]')).not_to_have_attribute(
            "data-slice", str(middle), timeout=30_000
        )
        marked = _axial_slice(page)
        # the panel names the slice in view as the axial view does
        expect(page.locator('[data-role="key-current"]')).to_have_text(
            f"第 {marked}/{SLICES} 层", timeout=30_000
        )
        page.fill("#key-note", NOTE)
        page.click('[data-action="key-mark"]')
        expect(page.locator('[data-role="key-images"] li')).to_have_count(1, timeout=30_000)
        assert root.get_attribute("data-key-marked") == "true"

        # after a reload the viewer opens on the middle slice and lists the key image
        _open(page, viewer)
        item = page.locator('[data-role="key-images"] li')
        expect(item).to_have_count(1, timeout=30_000)
        expect(item).to_contain_text(f"第 {marked}/{SLICES} 层")
        expect(item).to_contain_text(NOTE)
        assert _axial_slice(page) != marked
        item.locator("button").click()
        expect(page.locator('[data-view="axial"]')).to_have_attribute(
            "data-slice", str(marked), timeout=30_000
        )
        expect(page.locator("#key-note")).to_have_value(NOTE)
        page.screenshot(path=str(SHOTS / "viewer_key_images.png"))

        # the report page lists it, linking into the viewer at that slice
        page.goto(f"{shell_server}/imaging/reports/studies/{series.study_id}/")
        listed = page.locator("#key-images li")
        expect(listed).to_have_count(1)
        expect(listed).to_contain_text(NOTE)
        expect(listed).to_contain_text(f"第 {marked}/{SLICES} 层")
        page.screenshot(path=str(SHOTS / "report_key_images.png"), full_page=True)
        href = listed.locator("a").get_attribute("href") or ""
        # the link opens the viewer on the key slice, not the middle one
        _open(page, f"{shell_server}{href}")
        expect(page.locator('[data-view="axial"]')).to_have_attribute(
            "data-slice", str(marked), timeout=30_000
        )
        browser.close()
    assert errors == []

    # stored for the study, on the slice shown, and audited on the patient
    ordered = list(instances_in_viewing_order(series.pk))
    key = KeyImage.objects.get()
    assert (key.study_id, key.instance_id, key.note) == (
        series.study_id,
        ordered[marked - 1].pk,
        NOTE,
    )
    event = AuditEvent.objects.filter(action="key_image.mark").get()
    assert event.patient_id == series.study.patient_id
    assert event.actor_user_id == key.marked_by_id and key.marked_by.username == "e2e.keys"
