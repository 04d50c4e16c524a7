"""Separation of duties: a patient merge needs a second person's approval, and is audited.

One reviewer requests (survivor + reason), nothing moves; the same reviewer cannot approve,
through the page, the API or the service (and the database refuses it too); a second reviewer
with write access to both records approves (the merge runs) or rejects with a note (nothing
moves, the pair stays open). Each step is audited and the requester is notified.
"""

from datetime import date
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from shell_personas import Network, Personas, make_persona

from clinical_shell.audit.models import AuditEvent
from clinical_shell.errors import DomainError, PermissionDeniedError
from clinical_shell.network.models import Role
from clinical_shell.notifications.models import Notification
from clinical_shell.records import services as records
from clinical_shell.records.models import DuplicateCandidate, MergeRequest, Patient


@pytest.fixture
def twin(shell_network: Network, personas: Personas, patient_in_shuangbai: Patient) -> Patient:
    return records.register_patient(
        actor=personas.township_doctor,
        institution=shell_network.tuodian,
        name="张三丰",
        sex="M",
        birth_date=date(1958, 3, 14),
    )


@pytest.fixture
def second_reviewer(shell_network: Network) -> User:
    """Another doctor at the township centre: may change both records, as the first may."""
    user: User = make_persona(
        "he.township", "何乡医", "assistant", (shell_network.tuodian, Role.TOWNSHIP_DOCTOR)
    )
    return user


def _request(client: Any, url: str, survivor: Patient) -> Any:
    return client.post(
        url,
        {"action": "merge", "survivor": survivor.pk, "reason": "本人到院核实", "confirmed": "on"},
    )


def test_a_merge_waits_for_a_second_person_who_approves_it(
    personas: Personas,
    patient_in_shuangbai: Patient,
    twin: Patient,
    second_reviewer: User,
    signed_in_client: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    candidate = DuplicateCandidate.objects.get(patient=twin)
    url = f"/patients/duplicates/{candidate.pk}/"
    first = signed_in_client(personas.township_doctor)
    assert _request(first, url, patient_in_shuangbai).status_code == 302
    twin.refresh_from_db()
    assert twin.merged_into_id is None  # requested, not merged
    # the requester sees it waiting, with no approve button; approving anyway is refused
    page = first.get(url).content.decode()
    assert 'data-role="awaiting-second-person"' in page and "approve-merge" not in page
    own = first.post(url, {"action": "approve"})
    assert own.status_code == 403
    twin.refresh_from_db()
    assert twin.merged_into_id is None
    refusal = AuditEvent.objects.get(
        action="patient.merge_approve", actor_user_id=personas.township_doctor.pk
    )
    assert refusal.outcome == AuditEvent.Outcome.FAILURE
    # a second reviewer sees the request with the decision buttons, and approves
    second = signed_in_client(second_reviewer)
    assert 'data-action="approve-merge"' in second.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        done = second.post(url, {"action": "approve", "note": "核对身份证复印件"})
    assert done.status_code == 302 and done["Location"] == f"/patients/{patient_in_shuangbai.pk}/"
    twin.refresh_from_db()
    assert twin.merged_into_id == patient_in_shuangbai.pk
    merge_request = MergeRequest.objects.get()
    assert merge_request.status == MergeRequest.Status.APPROVED
    assert merge_request.requested_by_id == personas.township_doctor.pk
    assert merge_request.decided_by_id == second_reviewer.pk
    # audited: who asked, who approved, the merge itself naming both
    asked = AuditEvent.objects.get(action="patient.merge_request")
    assert asked.actor_user_id == personas.township_doctor.pk
    approved = AuditEvent.objects.get(
        action="patient.merge_approve", outcome=AuditEvent.Outcome.SUCCESS
    )
    assert approved.actor_user_id == second_reviewer.pk and approved.reason == "核对身份证复印件"
    merged = AuditEvent.objects.get(action="patient.merge")
    assert merged.actor_user_id == second_reviewer.pk
    assert merged.detail["requested_by"] == personas.township_doctor.pk
    # the requester is told (after commit)
    assert Notification.objects.filter(recipient=personas.township_doctor).exists()


def test_a_second_person_can_reject_with_a_note_and_nothing_moves(
    personas: Personas,
    patient_in_shuangbai: Patient,
    twin: Patient,
    second_reviewer: User,
    signed_in_client: Any,
) -> None:
    candidate = DuplicateCandidate.objects.get(patient=twin)
    url = f"/patients/duplicates/{candidate.pk}/"
    _request(signed_in_client(personas.township_doctor), url, patient_in_shuangbai)
    second = signed_in_client(second_reviewer)
    # a rejection says why
    assert second.post(url, {"action": "reject"}).status_code == 422
    rejected = second.post(url, {"action": "reject", "note": "出生地不同"})
    assert rejected.status_code == 302
    twin.refresh_from_db()
    assert twin.merged_into_id is None
    candidate.refresh_from_db()
    assert candidate.status == DuplicateCandidate.Status.OPEN  # open for another decision
    assert MergeRequest.objects.get().status == MergeRequest.Status.REJECTED
    event = AuditEvent.objects.get(action="patient.merge_reject")
    assert event.actor_user_id == second_reviewer.pk and event.reason == "出生地不同"


def test_the_service_and_the_database_refuse_a_self_approval(
    personas: Personas, patient_in_shuangbai: Patient, twin: Patient
) -> None:
    merge_request = records.request_merge(
        actor=personas.township_doctor,
        candidate=DuplicateCandidate.objects.get(patient=twin),
        survivor=patient_in_shuangbai,
        merged=twin,
        reason="同一人",
    )
    with pytest.raises(PermissionDeniedError) as refused:
        records.approve_merge(actor=personas.township_doctor, merge_request=merge_request)
    assert refused.value.code == "second_person_required"
    with pytest.raises(PermissionDeniedError):
        records.reject_merge(actor=personas.township_doctor, merge_request=merge_request, note="x")
    # written around the service, the row is still refused by the database's constraint
    merge_request.decided_by = personas.township_doctor
    with pytest.raises(IntegrityError), transaction.atomic():
        merge_request.save(update_fields=["decided_by"])
    # one pending request per pair
    with pytest.raises(DomainError) as again:
        records.request_merge(
            actor=personas.county_surgeon,
            candidate=DuplicateCandidate.objects.get(patient=twin),
            survivor=twin,
            merged=patient_in_shuangbai,
            reason="同一人",
        )
    assert again.value.code == "merge_pending"
