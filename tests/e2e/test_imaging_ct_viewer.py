"""The bundled viewer on CT: the project's lumbar phantom (a 40-slice series) and a real slice.

Checked on the screenshot's pixels against the phantom's own Hounsfield units shown with the same
window: the axial view shows the vertebra where the phantom has bone, scrolling moves to another
slice, and the sagittal and coronal reformats keep the series' anisotropic geometry (3.125 mm
between slices, 0.7 mm pixels), so the image is as wide and tall as the volume is in mm.
"""

import os
from dataclasses import dataclass
from datetime import date
from io import BytesIO
from pathlib import Path

import data_store
import numpy as np
import pydicom
import pytest
from django.contrib.auth.models import User
from PIL import Image
from playwright.sync_api import Page, sync_playwright

from clinical_shell.imaging import services as imaging
from clinical_shell.imaging.models import Series
from clinical_shell.network import services as network
from clinical_shell.network.models import Institution, Role
from clinical_shell.records import services as records
from clinical_shell.records.models import Patient
from sim_core.ct.phantom import make_phantom, write_phantom

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "Osteon-e2e-2026!"
DATA = Path(data_store.__file__).parent / "data"
SHOTS = Path(os.environ.get("OSTEON_E2E_SHOTS", "/tmp/shellshots2"))
VIEWER_BUNDLE = (
    Path(__file__).resolve().parents[2] / "clinical_shell/imaging/static/imaging/viewer/viewer.js"
)


@dataclass(frozen=True)
class Uploader:
    user: User
    institution: Institution
    patient: Patient


def make_uploader() -> Uploader:
    """A surgeon at the center and a patient of theirs, to upload studies for."""
    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    person = network.create_person(
        actor=None, username="e2e.ct", password=PASSWORD, full_name="郑医生", title="attending"
    )
    network.add_membership(actor=None, person=person, institution=center, role=Role.SURGEON)
    patient = records.register_patient(
        actor=person.user, institution=center, name="李明", sex="M", birth_date=date(1990, 5, 1)
    )
    return Uploader(user=person.user, institution=center, patient=patient)


def upload(who: Uploader, files: list[Path]) -> Series:
    """Import `files` for the uploader's patient; the series of the first file."""
    handles = [f.open("rb") for f in files]
    try:
        report = imaging.import_upload(
            actor=who.user,
            institution=who.institution,
            files=[(f.name, h) for f, h in zip(files, handles, strict=True)],
            patient=who.patient,
        )
    finally:
        for h in handles:
            h.close()
    assert not report.refused, report.refused
    return Series.objects.get(instances__sop_uid=pydicom.dcmread(files[0]).SOPInstanceUID)


# the preset the test clicks ("骨窗"): Hounsfield units mapped linearly from C - W/2 .. C + W/2
BONE_WIDTH_HU, BONE_CENTRE_HU = 2000.0, 500.0
BONE_HU = 300.0  # above this the phantom voxel is bone (cortex 1000..1800, cancellous ~245 +- 70)
WHEEL_STEPS = 5


def windowed(hu: np.ndarray, width: float, centre: float) -> np.ndarray:
    return np.clip((hu - (centre - width / 2)) / width, 0.0, 1.0)


def fitted(
    image: np.ndarray, width_mm: float, height_mm: float, shape: tuple[int, ...]
) -> np.ndarray:
    """`image` (0..1) drawn as a viewer fits it: true size in mm scaled to fit, centred, black."""
    height, width = shape
    scale = min(width / width_mm, height / height_mm)
    drawn_w, drawn_h = round(width_mm * scale), round(height_mm * scale)
    resized = Image.fromarray((image * 255).astype(np.uint8)).resize((drawn_w, drawn_h))
    out = np.zeros(shape)
    top, left = (height - drawn_h) // 2, (width - drawn_w) // 2
    out[top : top + drawn_h, left : left + drawn_w] = np.asarray(resized, dtype=np.float64) / 255
    return out


def inner(a: np.ndarray) -> np.ndarray:
    return a[2:-2, 2:-2]  # resampling differs most at the image's edges


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(inner(a).ravel(), inner(b).ravel())[0, 1])


def shot(page: Page, viewport: str, name: str) -> np.ndarray:
    png = page.locator(f"[data-viewport={viewport}]").screenshot()
    (SHOTS / f"{name}.png").write_bytes(png)
    grey = np.asarray(Image.open(BytesIO(png)).convert("L"), dtype=np.float64) / 255.0
    # an element at a fractional page offset brings a line of (light) page background along
    while grey[0].mean() > 0.9:
        grey = grey[1:]
    while grey[-1].mean() > 0.9:
        grey = grey[:-1]
    while grey[:, 0].mean() > 0.9:
        grey = grey[:, 1:]
    while grey[:, -1].mean() > 0.9:
        grey = grey[:, :-1]
    return grey


def sign_in_and_open(page: Page, base: str, series: Series) -> None:
    page.goto(f"{base}/accounts/sign-in/")
    page.fill("#id_username", "e2e.ct")
    page.fill("#id_password", PASSWORD)
    page.click("button.primary")
    page.wait_for_url("**/patients/")
    open_series(page, base, series)


def open_series(page: Page, base: str, series: Series) -> None:
    page.goto(f"{base}/imaging/series/{series.pk}/")
    page.wait_for_selector("#osteon-viewer[data-state=ready]", timeout=30_000)
    page.wait_for_timeout(700)  # volume slices stream in after "ready"; frames follow


@pytest.mark.django_db(transaction=True)
def test_the_viewer_shows_a_phantom_ct_in_three_planes_and_a_real_ct_slice(
    shell_server: str, tmp_path: Path
) -> None:
    assert VIEWER_BUNDLE.is_file(), "viewer bundle missing: run `make viewer` (npm ci && build)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    who = make_uploader()
    phantom = make_phantom("lumbar", seed=1, slices=40, matrix=256)
    hu = phantom.volume.hu.astype(np.float64)  # (slice k, row r, column c), k from feet to head
    slices, rows, cols = hu.shape
    pixel_mm, slice_mm = 0.7, 125.0 / slices  # the lumbar phantom: 0.7 mm pixels, 3.125 mm apart
    assert np.allclose(
        phantom.volume.patient_from_index[:3, :3].sum(axis=1), [pixel_mm, pixel_mm, slice_mm]
    )
    ct = upload(who, write_phantom(phantom, tmp_path / "phantom"))
    real_slice = DATA / "693_UNCR.dcm"
    single = upload(who, [real_slice])
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless"])
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # the production server's Content-Security-Policy must let the viewer do its work
        page.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))
        sign_in_and_open(page, shell_server, ct)
        assert page.locator("#osteon-viewer").get_attribute("data-layout") == "mpr"
        page.click("[data-preset=bone]")
        page.wait_for_timeout(300)
        axial = shot(page, "axial", "ct_axial")
        sagittal = shot(page, "sagittal", "ct_sagittal")
        coronal = shot(page, "coronal", "ct_coronal")
        # the wheel over the axial view moves through the slices, one per step
        box = page.locator("[data-viewport=axial]").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for _ in range(WHEEL_STEPS):
            page.mouse.wheel(0, 120)
            page.wait_for_timeout(60)
        page.wait_for_timeout(300)
        scrolled = shot(page, "axial", "ct_axial_scrolled")
        page.screenshot(path=str(SHOTS / "ct_page.png"))
        # a single real CT slice (pydicom-data): one stack view in the file's own window
        open_series(page, shell_server, single)
        layout = page.locator("#osteon-viewer").get_attribute("data-layout")
        real = shot(page, "stack", "real_ct_slice")
        browser.close()
    assert errors == []

    # axial: the middle slice, in the bone window, with the vertebra bright where it is bone
    def axial_view(k: int) -> np.ndarray:
        image = windowed(hu[k], BONE_WIDTH_HU, BONE_CENTRE_HU)
        return fitted(image, cols * pixel_mm, rows * pixel_mm, axial.shape)

    middle = max((slices // 2 - 1, slices // 2), key=lambda k: correlation(axial, axial_view(k)))
    assert correlation(axial, axial_view(middle)) > 0.99
    bone = (
        fitted(
            (hu[middle] > BONE_HU).astype(np.float64), cols * pixel_mm, rows * pixel_mm, axial.shape
        )
        > 0.5
    )
    assert inner(bone).sum() > 2000, "the middle slice should cut through a vertebra"
    assert axial[bone].mean() > 0.45 > axial[~bone & (axial > 0.05)].mean() + 0.1
    # scrolled: WHEEL_STEPS slices away (the three vertebrae look alike: compare, not search)
    moved = max(correlation(scrolled, axial_view(middle + d)) for d in (-WHEEL_STEPS, WHEEL_STEPS))
    assert moved > 0.99 and correlation(scrolled, axial_view(middle)) < 0.95

    # sagittal and coronal: reformats through the middle, head up, with the volume's true
    # proportions (179 mm wide, 125 mm tall), not the 256 x 40 voxel grid's nor a square
    height_mm, width_mm = slices * slice_mm, rows * pixel_mm
    for name, view, cut in (
        ("sagittal", sagittal, hu[::-1, :, cols // 2]),
        ("coronal", coronal, hu[::-1, rows // 2, :]),
    ):
        image = windowed(cut, BONE_WIDTH_HU, BONE_CENTRE_HU)
        right = correlation(view, fitted(image, width_mm, height_mm, view.shape))
        assert right > 0.99, name
        assert correlation(view, fitted(image, rows, slices, view.shape)) < right - 0.3, name
        assert correlation(view, fitted(image, 1, 1, view.shape)) < right - 0.3, name
        assert (
            correlation(view, fitted(image[::-1], width_mm, height_mm, view.shape)) < right - 0.05
        ), name

    # the real slice: stack layout, the file's window (centre 40, width 100), not mirrored
    assert layout == "stack"
    ds = pydicom.dcmread(real_slice)
    real_hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    size_mm = float(ds.PixelSpacing[0]) * ds.Rows
    expected = fitted(
        windowed(real_hu, float(ds.WindowWidth), float(ds.WindowCenter)),
        size_mm,
        size_mm,
        real.shape,
    )
    assert correlation(real, expected) > 0.98
    assert correlation(real, expected[:, ::-1]) < 0.8
    assert abs(inner(real).mean() - inner(expected).mean()) < 0.02
