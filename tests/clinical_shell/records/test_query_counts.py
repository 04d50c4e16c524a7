"""Fixed per-request query counts of the busiest pages, pinned so that they cannot creep back.

Each page is requested once to warm the session (the idle timeout writes its last-seen time at
most once a minute), then counted. Every count still includes the access check and its audit
event, and each test asserts that event was written.
"""

import io
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from shell_personas import Network, Personas

from clinical_shell.accounts import services as accounts
from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging import services as imaging
from clinical_shell.imaging.models import Instance
from clinical_shell.records.models import Patient

# the DICOM test files are built by the imaging tests' helper module (not a package)
sys.path.insert(0, str(Path(__file__).parents[1] / "imaging"))
from dicom_samples import ct_series

# audit.record: savepoint, [PostgreSQL: lock of the hash chain], last hash, insert, release
AUDIT = 4 + (1 if connection.vendor == "postgresql" else 0)


def _reads(user_id: int, action: str) -> int:
    return AuditEvent.objects.filter(
        actor_user_id=user_id, action=action, outcome="success"
    ).count()


def test_timeline_query_count(
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
    django_assert_num_queries: Any,
) -> None:
    user = personas.county_surgeon
    client = signed_in_client(user)
    url = f"/patients/{patient_in_shuangbai.pk}/"
    client.get(url)
    reads = _reads(user.pk, "patient.read")
    # session, user, patient (registering institution joined), memberships (once: read rule,
    # record scope and "new encounter" button), care relationship, audit, records shared by
    # referrals and by consultations or meetings, encounters, diagnoses, procedures, other
    # institutions' unshared encounters (a count), person and unread notifications for the
    # header, allergies, imaging reports
    with django_assert_num_queries(15 + AUDIT):
        response = client.get(url)
    assert response.status_code == 200 and "新建就诊" in response.content.decode()
    assert _reads(user.pk, "patient.read") == reads + 1


def test_search_query_count(
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
    django_assert_num_queries: Any,
) -> None:
    user = personas.county_surgeon
    client = signed_in_client(user)
    client.get("/patients/", {"q": "zsf"})
    searches = _reads(user.pk, "patient.search")
    # session, user, memberships, count, page, audit, person and unread notifications for the
    # header
    with django_assert_num_queries(7 + AUDIT):
        response = client.get("/patients/", {"q": "zsf"})
    assert "张三丰" in response.content.decode()
    assert _reads(user.pk, "patient.search") == searches + 1


def test_image_file_query_count(
    settings: Any,
    tmp_path: Path,
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
    django_assert_num_queries: Any,
) -> None:
    settings.OSTEON_DICOM_ROOT = tmp_path / "dicom"
    imaging.import_upload(
        actor=personas.county_surgeon,
        institution=shell_network.shuangbai,
        files=[(f"{i}.dcm", io.BytesIO(data)) for i, data in enumerate(ct_series(2))],
        patient=patient_in_shuangbai,
    )
    instance = Instance.objects.order_by("pk").first()
    assert instance is not None
    user = personas.county_surgeon
    client = signed_in_client(user)
    url = f"/imaging/instances/{instance.pk}/file"
    client.get(url)
    reads = _reads(user.pk, "patient.read")
    # session, user, instance (series joined), study, patient, memberships, care relationship,
    # audit
    with django_assert_num_queries(7 + AUDIT):
        response = client.get(url)
    # a plain response (not streamed): no ASGI warning about synchronous iterators
    assert not response.streaming
    assert response.content == imaging.instance_path(instance).read_bytes()
    assert response["Content-Length"] == str(len(response.content))
    assert _reads(user.pk, "patient.read") == reads + 1


def test_api_encounter_list_query_count(
    personas: Personas, patient_in_shuangbai: Patient, django_assert_num_queries: Any
) -> None:
    user = personas.county_surgeon
    client = Client(
        HTTP_AUTHORIZATION=f"Bearer {accounts.issue_api_token(actor=user, name='t').raw}"
    )
    url = f"/api/v1/patients/{patient_in_shuangbai.pk}/encounters"
    client.get(url)  # warm: the token's last-used time is written once a minute
    reads = _reads(user.pk, "patient.read")
    # token, patient, memberships, care relationship, audit, records shared by referrals and by
    # consultations or meetings, count, page, diagnoses, procedures
    with django_assert_num_queries(10 + AUDIT):
        response = client.get(url)
    assert response.json()["count"] == 1
    assert _reads(user.pk, "patient.read") == reads + 1


@pytest.mark.parametrize("persona", ["center_surgeon", "outsider"])
def test_the_timeline_is_still_refused_and_audited_without_a_care_relationship(
    personas: Personas, patient_in_shuangbai: Patient, signed_in_client: Any, persona: str
) -> None:
    user = personas.all()[persona]
    response = signed_in_client(user).get(f"/patients/{patient_in_shuangbai.pk}/")
    assert response.status_code == 403
    assert AuditEvent.objects.filter(
        actor_user_id=user.pk, action="patient.read", outcome="failure"
    ).exists()
