"""Duplicate review pages: the queue, side by side, merge request after a confirmation, dismiss."""

from datetime import date
from typing import Any

import pytest
from django.db import connection
from shell_personas import SHUANGBAI_MAN_ID, Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.records import services as records
from clinical_shell.records.models import DuplicateCandidate, Patient


@pytest.fixture
def twin(shell_network: Network, personas: Personas, patient_in_shuangbai: Patient) -> Patient:
    """A second record of 张三丰 at the township centre (same name, sex and birth date)."""
    return records.register_patient(
        actor=personas.township_doctor,
        institution=shell_network.tuodian,
        name="张三丰",
        sex="M",
        birth_date=date(1958, 3, 14),
        phone="13800000000",
    )


def _candidate(twin: Patient) -> DuplicateCandidate:
    return DuplicateCandidate.objects.get(patient=twin)


def test_the_queue_lists_pairs_at_the_users_institutions_only(
    personas: Personas, twin: Patient, signed_in_client: Any, django_assert_num_queries: Any
) -> None:
    client = signed_in_client(personas.township_doctor)
    client.get("/patients/duplicates/")  # warm the session and the role cache
    # the query count does not grow with the queue (a third record adds two pairs); the warm
    # session is not written again within a minute (LAST_SEEN_WRITE_STEP_SECONDS); the header's
    # unread-notification count is one of them
    expected = 11 + (1 if connection.vendor == "postgresql" else 0)
    with django_assert_num_queries(expected):
        html = client.get("/patients/duplicates/").content.decode()
    assert "疑似重复患者" in html and "姓名、出生日期、性别相同" in html
    assert f"/patients/duplicates/{_candidate(twin).pk}/" in html
    event = AuditEvent.objects.filter(
        action="patient.duplicates_list", actor_user_id=personas.township_doctor.pk
    ).last()
    assert event is not None and event.detail["shown"] == [_candidate(twin).pk]
    # the twin is in care at the township centre only: the county hospital above it, the
    # center and the other county see no pair, and may not open it
    for outsider in (personas.county_surgeon, personas.outsider, personas.center_surgeon):
        other = signed_in_client(outsider)
        assert "张三丰" not in other.get("/patients/duplicates/").content.decode()
        assert other.get(f"/patients/duplicates/{_candidate(twin).pk}/").status_code == 403
    # a reading role (radiologist) or none (quality manager) may not review
    for reader in (personas.radiologist, personas.quality_manager, personas.committee_member):
        html = signed_in_client(reader).get("/patients/duplicates/").content.decode()
        assert "无法审核重复档案" in html
    records.register_patient(
        actor=personas.township_doctor,
        institution=twin.registered_at,
        name="张三丰",
        sex="M",
        birth_date=date(1958, 3, 14),
    )
    with django_assert_num_queries(expected):
        html = client.get("/patients/duplicates/").content.decode()
    assert html.count("/patients/duplicates/") >= 4


def test_the_pair_is_shown_side_by_side_and_each_read_audited(
    personas: Personas, patient_in_shuangbai: Patient, twin: Patient, signed_in_client: Any
) -> None:
    candidate = _candidate(twin)
    response = signed_in_client(personas.township_doctor).get(
        f"/patients/duplicates/{candidate.pk}/"
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert (
        f'data-patient="{patient_in_shuangbai.pk}"' in html and f'data-patient="{twin.pk}"' in html
    )
    assert SHUANGBAI_MAN_ID in html and "13800000000" in html
    # the first record's encounter was written at the county hospital: the township reviewer
    # compares identities, and sees that an encounter exists, not what the county wrote
    assert "S72.0" not in html
    reads = AuditEvent.objects.filter(
        action="patient.read", actor_user_id=personas.township_doctor.pk, reason="duplicate review"
    )
    assert {e.patient_id for e in reads} == {patient_in_shuangbai.pk, twin.pk}


def test_a_merge_needs_a_reason_and_a_confirmation_then_keeps_history(
    personas: Personas, patient_in_shuangbai: Patient, twin: Patient, signed_in_client: Any
) -> None:
    candidate = _candidate(twin)
    url = f"/patients/duplicates/{candidate.pk}/"
    client = signed_in_client(personas.township_doctor)
    # no reason: refused inline, nothing merged
    refused = client.post(url, {"action": "merge", "survivor": patient_in_shuangbai.pk})
    assert refused.status_code == 422 and "合并须说明原因" in refused.content.decode()
    # a survivor outside the pair is refused too
    stranger = client.post(url, {"action": "merge", "survivor": 999999, "reason": "同一人"})
    assert stranger.status_code == 422
    # with a reason: the confirmation step, still nothing merged
    asked = client.post(
        url, {"action": "merge", "survivor": patient_in_shuangbai.pk, "reason": "本人到院核实"}
    )
    assert asked.status_code == 200 and 'data-role="confirm"' in asked.content.decode()
    twin.refresh_from_db()
    assert twin.merged_into_id is None
    assert not AuditEvent.objects.filter(action="patient.merge").exists()
    # confirmed: a merge request, still nothing merged (a second reviewer decides:
    # test_merge_approval.py)
    done = client.post(
        url,
        {
            "action": "merge",
            "survivor": patient_in_shuangbai.pk,
            "reason": "本人到院核实",
            "confirmed": "on",
        },
    )
    assert done.status_code == 302 and done["Location"] == url
    twin.refresh_from_db()
    assert twin.merged_into_id is None
    assert 'data-role="awaiting-second-person"' in client.get(url).content.decode()
    event = AuditEvent.objects.get(action="patient.merge_request")
    assert event.actor_user_id == personas.township_doctor.pk and event.reason == "本人到院核实"
    assert event.detail["merged_id"] == twin.pk


def test_the_outsider_cannot_merge_or_dismiss(
    personas: Personas, patient_in_shuangbai: Patient, twin: Patient, signed_in_client: Any
) -> None:
    url = f"/patients/duplicates/{_candidate(twin).pk}/"
    client = signed_in_client(personas.outsider)
    for data in (
        {"action": "merge", "survivor": twin.pk, "reason": "x", "confirmed": "on"},
        {"action": "dismiss"},
    ):
        assert client.post(url, data).status_code == 403
    twin.refresh_from_db()
    assert twin.merged_into_id is None
    assert _candidate(twin).status == DuplicateCandidate.Status.OPEN


def test_dismiss_closes_the_pair_without_merging(
    personas: Personas, twin: Patient, signed_in_client: Any
) -> None:
    candidate = _candidate(twin)
    client = signed_in_client(personas.township_doctor)
    response = client.post(
        f"/patients/duplicates/{candidate.pk}/", {"action": "dismiss", "reason": "同名同生日"}
    )
    assert response.status_code == 302 and response["Location"] == "/patients/duplicates/"
    candidate.refresh_from_db()
    assert candidate.status == DuplicateCandidate.Status.DISMISSED
    twin.refresh_from_db()
    assert twin.merged_into_id is None
    event = AuditEvent.objects.get(action="patient.duplicate_dismiss")
    assert event.reason == "同名同生日" and event.actor_user_id == personas.township_doctor.pk
    assert "张三丰" not in client.get("/patients/duplicates/").content.decode()


def test_the_review_page_switches_to_english(
    personas: Personas, twin: Patient, signed_in_client: Any
) -> None:
    client = signed_in_client(personas.township_doctor)
    client.post("/i18n/setlang/", {"language": "en", "next": "/patients/duplicates/"})
    html = client.get(f"/patients/duplicates/{_candidate(twin).pk}/").content.decode()
    assert (
        "Review possible duplicate" in html and "Merge…" in html and "Not the same person" in html
    )
