"""Every page about one patient says who under its heading: the patient number (the one the
search list, the audit log and other forms ask for), sex, age today and birth date, in the
page's language, so a record is not written on the wrong patient."""

from typing import Any

import pytest
from django.utils import timezone
from shell_personas import Personas

from clinical_shell.records.models import Patient
from clinical_shell.records.selectors import age_in_years


def _pages(patient: Patient) -> list[str]:
    encounter = patient.encounters.get()
    return [
        f"/patients/{patient.pk}/",
        f"/patients/{patient.pk}/edit/",
        f"/patients/{patient.pk}/problems/",
        f"/patients/{patient.pk}/encounters/new/",
        f"/patients/{patient.pk}/encounters/{encounter.pk}/",
    ]


@pytest.mark.parametrize(
    ("language", "number", "sex", "age"),
    [("zh-hans", "患者编号", "男", "{} 岁"), ("en", "Patient number", "Male", "{} years")],
)
def test_each_patient_page_names_the_patient_number_sex_and_age(
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
    language: str,
    number: str,
    sex: str,
    age: str,
) -> None:
    client = signed_in_client(personas.county_surgeon)
    client.cookies["django_language"] = language
    years = age_in_years(patient_in_shuangbai.birth_date, timezone.localdate())
    for url in _pages(patient_in_shuangbai):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        start = html.index('data-role="patient-strip"')
        strip = html[start : html.index("</p>", start)]
        assert f"<strong>#{patient_in_shuangbai.pk}</strong>" in strip, url
        assert number in strip and sex in strip and age.format(years) in strip, url
        assert "1958-03-14" in strip, url
