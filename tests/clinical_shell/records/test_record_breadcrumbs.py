"""The records pages' first breadcrumb leads to the patient list and says so in English
("Patients", not the column word "Patient"); Chinese pages keep 患者."""

from typing import Any

import pytest
from shell_personas import Personas

from clinical_shell.records.models import Patient


@pytest.mark.parametrize(("language", "crumb"), [("en", "Patients"), ("zh-hans", "患者")])
def test_the_patient_list_crumb_is_plural_in_english(
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
    language: str,
    crumb: str,
) -> None:
    client = signed_in_client(personas.county_surgeon)
    client.cookies["django_language"] = language
    for url in ("/patients/new/", f"/patients/{patient_in_shuangbai.pk}/"):
        html = client.get(url).content.decode()
        assert f'<li><a href="/patients/">{crumb}</a></li>' in html, url
    search = client.get("/patients/").content.decode()
    assert f'<li aria-current="page">{crumb}</li>' in search
