"""Record pages: search (masked, paginated, audited), timeline, encounter entry, inline errors."""

from datetime import date
from typing import Any

import pytest
from django.db import connection
from shell_personas import SHUANGBAI_MAN_ID, Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.records import services as records
from clinical_shell.records.models import Patient


def test_pages_need_a_signed_in_user(db: None, client: Any) -> None:
    response = client.get("/patients/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/sign-in/")


def test_search_page_shows_masked_ids_in_chinese_and_audits(
    personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    html = (
        signed_in_client(personas.county_surgeon).get("/patients/", {"q": "zsf"}).content.decode()
    )
    assert "患者检索" in html and "张三丰" in html
    assert "5323**********1230" in html and SHUANGBAI_MAN_ID not in html
    assert (
        AuditEvent.objects.filter(
            action="patient.search", actor_user_id=personas.county_surgeon.pk
        ).count()
        == 1
    )


def test_search_page_switches_to_english(
    personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    client.post("/i18n/setlang/", {"language": "en", "next": "/patients/"})
    html = client.get("/patients/").content.decode()
    assert "Patient search" in html and "患者检索" not in html


def test_search_page_paginates(
    shell_network: Network, personas: Personas, signed_in_client: Any
) -> None:
    for i in range(25):
        records.register_patient(
            actor=personas.township_doctor,
            institution=shell_network.tuodian,
            name=f"杨{i:02d}",
            sex="F",
            birth_date=date(1990, 1, 1),
        )
    client = signed_in_client(personas.township_doctor)
    first = client.get("/patients/").content.decode()
    assert "第 1 / 2 页，共 25 人" in first
    second = client.get("/patients/", {"page": 2}).content.decode()
    assert second.count("<tr>") == 1 + 5  # header + the last 5


@pytest.mark.parametrize("rows", [2, 22])
def test_search_page_query_count_is_fixed(
    shell_network: Network,
    personas: Personas,
    signed_in_client: Any,
    django_assert_num_queries: Any,
    rows: int,
) -> None:
    for i in range(rows):
        records.register_patient(
            actor=personas.township_doctor,
            institution=shell_network.tuodian,
            name=f"杨{i:02d}",
            sex="F",
            birth_date=date(1990, 1, 1),
        )
    client = signed_in_client(personas.township_doctor)
    client.get("/patients/")
    # session, user, roles, count, page (registered_at joined), audit (savepoint, [lock],
    # last hash, insert, release), person and unread notifications for the header: fixed per
    # page (the session is not written again within a minute:
    # accounts.middleware.LAST_SEEN_WRITE_STEP_SECONDS)
    expected = 11 + (1 if connection.vendor == "postgresql" else 0)
    with django_assert_num_queries(expected):
        client.get("/patients/")


def test_timeline_shows_each_institution_its_own_encounters(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    url = f"/patients/{patient_in_shuangbai.pk}/"
    county = signed_in_client(personas.county_surgeon).get(url).content.decode()
    assert "双柏县人民医院" in county and "S72.0" in county and "31B2.1" in county
    assert 'id="unshared-encounters"' not in county
    # the township registered the patient: it opens the record (the full ID number, access
    # audited) but the county's encounter is the county's, counted and not shown
    township = signed_in_client(personas.township_doctor).get(url).content.decode()
    assert SHUANGBAI_MAN_ID in township
    assert "S72.0" not in township and "31B2.1" not in township
    assert 'id="unshared-encounters"' in township and "另有 1 次就诊" in township


def test_timeline_is_refused_with_a_reason_for_outsiders(
    personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    response = signed_in_client(personas.outsider).get(f"/patients/{patient_in_shuangbai.pk}/")
    assert response.status_code == 403
    assert "无诊疗关系" in response.content.decode()


def test_encounter_entry_shows_errors_inline_and_saves_when_valid(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    url = f"/patients/{patient_in_shuangbai.pk}/encounters/new/"
    assert client.get(url).status_code == 200
    form = {
        "institution": shell_network.shuangbai.pk,
        "kind": "outpatient",
        "started_at": "2026-01-05T09:30",
        "chief_complaint": "",
        "icd10_code": "S7",
        "diagnosis": "骨折",
        "ao_ota_code": "31Z",
    }
    response = client.post(url, form)
    assert response.status_code == 422
    html = response.content.decode()
    assert 'id="id_icd10_code-errors"' in html and "ICD-10 编码格式错误" in html
    assert 'id="id_ao_ota_code-errors"' in html
    assert 'aria-invalid="true"' in html
    form.update({"chief_complaint": "复查", "icd10_code": "S72.0", "ao_ota_code": "31B2.1"})
    response = client.post(url, form)
    assert response.status_code == 302
    assert patient_in_shuangbai.encounters.count() == 2


def test_encounter_entry_is_refused_to_a_radiologist(
    personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    url = f"/patients/{patient_in_shuangbai.pk}/encounters/new/"
    assert signed_in_client(personas.radiologist).get(url).status_code == 403


def test_pages_follow_an_english_browser_when_no_language_was_chosen(db: None, client: Any) -> None:
    html = client.get("/accounts/sign-in/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    assert "Sign in" in html and "登录" not in html
