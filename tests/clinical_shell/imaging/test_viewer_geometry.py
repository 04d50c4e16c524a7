"""The series geometry the viewer lays its reformats out from before the slices arrive: each
slice's position in viewing order, "not uniform" when one slice differs, refused to outsiders."""

import io
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from dicom_samples import ct_series
from django.contrib.auth.models import User
from django.test import Client
from shell_personas import Network, Personas

from clinical_shell.imaging import services as imaging
from clinical_shell.imaging.models import Series
from clinical_shell.imaging.selectors import instances_in_viewing_order
from clinical_shell.records.models import Patient

ClientFor = Callable[[User], Client]


@pytest.fixture
def ct(
    settings: object,
    tmp_path: Path,
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
) -> Series:
    settings.OSTEON_DICOM_ROOT = tmp_path / "dicom"  # type: ignore[attr-defined]
    imaging.import_upload(
        actor=personas.county_surgeon,
        institution=shell_network.shuangbai,
        files=[(f"{i}.dcm", io.BytesIO(data)) for i, data in enumerate(ct_series(4))],
        patient=patient_in_shuangbai,
    )
    return Series.objects.get()


def _url(series: Series) -> str:
    return f"/api/v1/imaging/series/{series.pk}/geometry"


def test_each_slice_position_comes_in_viewing_order_from_its_header(
    signed_in_client: ClientFor, personas: Personas, ct: Series
) -> None:
    answer = signed_in_client(personas.county_surgeon).get(_url(ct))
    assert answer.status_code == 200
    body = answer.json()
    ordered = list(instances_in_viewing_order(ct.pk))
    assert body["uniform"] is True
    assert [s["instance_id"] for s in body["slices"]] == [i.pk for i in ordered]
    for instance, sent in zip(ordered, body["slices"], strict=True):
        header = pydicom.dcmread(imaging.instance_path(instance), stop_before_pixels=True)
        assert sent["position_mm"] == [float(v) for v in header.ImagePositionPatient]
        assert sent["rescale_intercept"] == float(header.get("RescaleIntercept", 0))


def test_a_slice_with_other_pixel_spacing_makes_the_series_not_uniform(
    signed_in_client: ClientFor, personas: Personas, ct: Series
) -> None:
    # the viewer may then not lay the volume out from one slice's header: it waits for all
    path = imaging.instance_path(list(instances_in_viewing_order(ct.pk))[1])
    header = pydicom.dcmread(path)
    header.PixelSpacing = [float(header.PixelSpacing[0]) * 2, float(header.PixelSpacing[1])]
    header.save_as(path)
    body = signed_in_client(personas.county_surgeon).get(_url(ct)).json()
    assert body["uniform"] is False


def test_another_institutions_surgeon_gets_no_geometry(
    signed_in_client: ClientFor, personas: Personas, ct: Series
) -> None:
    assert signed_in_client(personas.outsider).get(_url(ct)).status_code == 403
