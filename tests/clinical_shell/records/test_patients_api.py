"""`/api/v1/patients`: token/session auth, access policy, audit, problem details, query counts."""

import json
from datetime import date
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from shell_personas import SHUANGBAI_MAN_ID, Network, Personas, make_persona

from clinical_shell.accounts import services as accounts
from clinical_shell.audit.models import AuditEvent
from clinical_shell.network.models import Role
from clinical_shell.records import services as records
from clinical_shell.records.models import Patient


def _bearer(user: Any) -> Client:
    raw = accounts.issue_api_token(actor=user, name="test station").raw
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_without_credentials_the_api_answers_401_problem_details(db: None) -> None:
    response = Client().get("/api/v1/patients")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys()
    assert body["status"] == 401 and body["code"] == "not_authenticated"


def test_a_revoked_token_is_refused(personas: Personas) -> None:
    issued = accounts.issue_api_token(actor=personas.county_surgeon, name="s")
    accounts.revoke_api_token(actor=personas.county_surgeon, token_id=issued.token.pk)
    response = Client(HTTP_AUTHORIZATION=f"Bearer {issued.raw}").get("/api/v1/patients")
    assert response.status_code == 401


def test_patient_list_is_paginated_masked_scoped_and_audited(
    personas: Personas, patient_in_shuangbai: Patient
) -> None:
    response = _bearer(personas.county_surgeon).get("/api/v1/patients", {"q": "zsf"})
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    row = body["items"][0]
    assert row["masked_resident_id"] == "5323**********1230"
    assert "resident_id" not in row
    assert AuditEvent.objects.filter(
        action="patient.search", actor_user_id=personas.county_surgeon.pk
    ).exists()
    # the outsider's list does not contain the patient at all
    assert _bearer(personas.outsider).get("/api/v1/patients").json()["count"] == 0


def test_patient_detail_follows_access_and_is_audited(
    personas: Personas, patient_in_shuangbai: Patient
) -> None:
    url = f"/api/v1/patients/{patient_in_shuangbai.pk}"
    ok = _bearer(personas.township_doctor).get(url)
    assert ok.status_code == 200 and ok.json()["resident_id"] == SHUANGBAI_MAN_ID
    refused = _bearer(personas.outsider).get(url)
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "patient_forbidden"
    outcomes = list(
        AuditEvent.objects.filter(
            action="patient.read", patient_id=patient_in_shuangbai.pk
        ).values_list("outcome", flat=True)
    )
    assert outcomes == ["success", "failure"]


def test_session_auth_works_for_the_api(
    personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.county_surgeon)
    assert client.get(f"/api/v1/patients/{patient_in_shuangbai.pk}").status_code == 200


def test_create_patient_validates_the_id_checksum_as_problem_details(
    shell_network: Network, personas: Personas
) -> None:
    client = _bearer(personas.township_doctor)
    payload = {
        "institution_id": shell_network.tuodian.pk,
        "name": "李四",
        "sex": "F",
        "birth_date": "1990-01-02",
        "resident_id": "532322199001020022",
    }
    bad = client.post("/api/v1/patients", json.dumps(payload), content_type="application/json")
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_record"
    assert "校验位" in bad.json()["detail"]
    payload["resident_id"] = "532322199001020021"
    good = client.post("/api/v1/patients", json.dumps(payload), content_type="application/json")
    assert good.status_code == 201, good.content
    assert good.json()["name_pinyin_initials"] == "ls"


def test_create_patient_elsewhere_is_forbidden(shell_network: Network, personas: Personas) -> None:
    payload = {
        "institution_id": shell_network.center.pk,
        "name": "李四",
        "sex": "F",
        "birth_date": "1990-01-02",
    }
    response = _bearer(personas.township_doctor).post(
        "/api/v1/patients", json.dumps(payload), content_type="application/json"
    )
    assert response.status_code == 403 and response.json()["code"] == "not_writer_here"


def test_malformed_body_is_a_422_problem(shell_network: Network, personas: Personas) -> None:
    response = _bearer(personas.township_doctor).post(
        "/api/v1/patients", json.dumps({"name": ""}), content_type="application/json"
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed" and response.json()["errors"]


def test_encounters_can_be_listed_and_recorded(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    client = _bearer(personas.county_surgeon)
    url = f"/api/v1/patients/{patient_in_shuangbai.pk}/encounters"
    payload = {
        "institution_id": shell_network.shuangbai.pk,
        "kind": "outpatient",
        "started_at": "2026-01-05T09:30:00+08:00",
        "chief_complaint": "复查 / follow-up",
        "diagnoses": [{"icd10_code": "Z09.4", "description": "骨折术后复查"}],
    }
    created = client.post(url, json.dumps(payload), content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["institution_name"] == "双柏县人民医院"
    payload["diagnoses"] = [{"icd10_code": "fracture", "description": "x"}]
    invalid = client.post(url, json.dumps(payload), content_type="application/json")
    assert invalid.status_code == 422 and "ICD-10" in invalid.json()["detail"]
    listed = client.get(url).json()
    assert listed["count"] == 2


@pytest.mark.parametrize("patients", [3, 25])
def test_patient_list_query_count_does_not_grow_with_rows(
    shell_network: Network, personas: Personas, django_assert_num_queries: Any, patients: int
) -> None:
    for i in range(patients):
        records.register_patient(
            actor=personas.township_doctor,
            institution=shell_network.tuodian,
            name=f"王{i:02d}",
            sex="M",
            birth_date=date(1970, 1, 1 + i % 28),
        )
    client = _bearer(personas.township_doctor)
    client.get("/api/v1/patients")  # warm: token last_used_at update happens once a minute
    # token, roles, audit (savepoint, [PostgreSQL chain lock], last hash, insert, release),
    # count, page: the same for 3 rows and for 25
    expected = 8 + (1 if connection.vendor == "postgresql" else 0)
    with django_assert_num_queries(expected):
        response = client.get("/api/v1/patients")
    assert response.json()["count"] == patients


def test_duplicate_queue_merge_and_dismiss_through_the_api(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    twin = records.register_patient(
        actor=personas.township_doctor,
        institution=shell_network.tuodian,
        name="张三丰",
        sex="M",
        birth_date=date(1958, 3, 14),
    )
    client = _bearer(personas.township_doctor)
    queue = client.get("/api/v1/patients/duplicates").json()
    assert queue["count"] == 1
    candidate = queue["items"][0]
    assert candidate["reason"] == "same_demographics"
    assert "resident_id" not in candidate["other"]
    # the outsider sees no queue entry and may not merge
    assert _bearer(personas.outsider).get("/api/v1/patients/duplicates").json()["count"] == 0
    url = f"/api/v1/patients/duplicates/{candidate['id']}/merge"
    body = json.dumps({"survivor_id": patient_in_shuangbai.pk, "reason": "同一人"})
    refused = _bearer(personas.outsider).post(url, body, content_type="application/json")
    assert refused.status_code == 403
    requested = client.post(url, body, content_type="application/json")
    assert requested.status_code == 202, requested.content
    assert requested.json()["status"] == "pending"
    # the requester cannot approve their own request; a second reviewer at the same place can
    own = client.post(url + "/approve", "{}", content_type="application/json")
    assert own.status_code == 403 and own.json()["code"] == "second_person_required"
    second = make_persona(
        "he.township", "何乡医", "assistant", (shell_network.tuodian, Role.TOWNSHIP_DOCTOR)
    )
    merged = _bearer(second).post(url + "/approve", "{}", content_type="application/json")
    assert merged.status_code == 200, merged.content
    assert merged.json()["id"] == patient_in_shuangbai.pk
    twin.refresh_from_db()
    assert twin.merged_into_id == patient_in_shuangbai.pk
    assert client.get("/api/v1/patients/duplicates").json()["count"] == 0
    again = client.post(url, body, content_type="application/json")
    assert again.status_code == 409 and again.json()["code"] == "duplicate_closed"
