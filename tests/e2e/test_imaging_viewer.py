"""The bundled viewer draws real radiographs from pydicom-data in Chromium.

Checked on the screenshot's pixels against the image pydicom decodes: MONOCHROME1 inverted, the
file's own window, fitted into the viewport, not mirrored. RG3_UNCR.dcm is uncompressed (window
centre 550, width 1024); RG1_J2KR.dcm is JPEG 2000 lossless with Pixel Spacing "0\\0", which once
left the viewport black (the viewer now treats a zero spacing as unknown).
"""

import os
from datetime import date
from io import BytesIO
from pathlib import Path

import data_store
import numpy as np
import pydicom
import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

from clinical_shell.imaging import services as imaging
from clinical_shell.imaging.models import Series
from clinical_shell.network import services as network
from clinical_shell.network.models import Role
from clinical_shell.records import services as records

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "Osteon-e2e-2026!"
DATA = Path(data_store.__file__).parent / "data"
VIEWER_BUNDLE = (
    Path(__file__).resolve().parents[2] / "clinical_shell/imaging/static/imaging/viewer/viewer.js"
)


def expected_display(path: Path) -> np.ndarray:
    """What a correct viewer shows: the file's VOI window, MONOCHROME1 inverted, 0..1."""
    ds = pydicom.dcmread(path)
    pixels = ds.pixel_array.astype(np.float64)
    centre, width = float(ds.WindowCenter), float(ds.WindowWidth)
    shown = np.clip((pixels - (centre - width / 2)) / width, 0.0, 1.0)
    return 1.0 - shown if ds.PhotometricInterpretation == "MONOCHROME1" else shown


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


# file name -> whether the image is asymmetric enough to check it is not mirrored
RADIOGRAPHS = {"RG3_UNCR.dcm": True, "RG1_J2KR.dcm": False}


@pytest.mark.parametrize("file_name", sorted(RADIOGRAPHS))
@pytest.mark.django_db(transaction=True)
def test_the_viewer_renders_a_real_radiograph(
    shell_server: str, tmp_path: Path, file_name: str
) -> None:
    radiograph = DATA / file_name
    assert VIEWER_BUNDLE.is_file(), "viewer bundle missing: run `make viewer` (npm ci && build)"
    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    person = network.create_person(
        actor=None, username="e2e.radio", password=PASSWORD, full_name="郑医生", title="attending"
    )
    network.add_membership(actor=None, person=person, institution=center, role=Role.SURGEON)
    patient = records.register_patient(
        actor=person.user, institution=center, name="李明", sex="M", birth_date=date(1990, 5, 1)
    )
    with radiograph.open("rb") as handle:
        report = imaging.import_upload(
            actor=person.user,
            institution=center,
            files=[(file_name, handle)],
            patient=patient,
        )
    assert not report.refused
    series = Series.objects.get()
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # the production server's Content-Security-Policy must let the viewer do its work
        page.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))
        page.goto(f"{shell_server}/accounts/sign-in/")
        page.fill("#id_username", "e2e.radio")
        page.fill("#id_password", PASSWORD)
        page.click("button.primary")
        page.wait_for_url("**/patients/")
        page.goto(f"{shell_server}/imaging/series/{series.pk}/")
        page.wait_for_selector("#osteon-viewer[data-state=ready]", timeout=60_000)
        page.wait_for_timeout(500)  # the first frame is drawn on the next animation frame
        shot = page.locator("[data-viewport=stack]").screenshot()
        browser.close()
    assert errors == []
    grey = np.asarray(Image.open(BytesIO(shot)).convert("L"), dtype=np.float64) / 255.0
    height, width = grey.shape
    expected = expected_display(radiograph)
    # an image taller than wide for the viewport: fitted to its height, centred, black bars
    drawn_width = round(height * expected.shape[1] / expected.shape[0])
    left = (width - drawn_width) // 2
    drawn = grey[:, left : left + drawn_width]
    assert grey[:, : left - 4].mean() < 0.02 and grey[:, left + drawn_width + 4 :].mean() < 0.02
    reference = (
        np.asarray(
            Image.fromarray((expected * 255).astype(np.uint8)).resize((drawn_width, height)),
            dtype=np.float64,
        )
        / 255.0
    )
    assert correlation(drawn, reference) > 0.95
    if RADIOGRAPHS[file_name]:
        # not mirrored (the lead "R" marker and the fibula make the image asymmetric)
        assert correlation(drawn, reference[:, ::-1]) < 0.9
    assert abs(drawn.mean() - reference.mean()) < 0.05
