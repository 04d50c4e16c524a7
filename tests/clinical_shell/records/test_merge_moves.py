"""A merge moves the patient's whole care to the record kept, in every app: not only visits and
documents but imaging, cases, plans, referrals, bookings and live sessions (they were left on
the merged record, which nobody opens any more)."""

from datetime import date

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from shell_personas import Network, Personas, make_persona

from clinical_shell.audit.models import AuditEvent
from clinical_shell.errors import DomainError
from clinical_shell.live import services as live
from clinical_shell.live.models import LiveSession
from clinical_shell.network.models import Role
from clinical_shell.records import merge_moves
from clinical_shell.records import services as records
from clinical_shell.records.models import DuplicateCandidate, MergeRequest, Patient
from clinical_shell.referrals.consult_models import MdtCase, MdtMeeting


def test_every_table_of_care_with_a_patient_key_is_moved() -> None:
    moved = {ref.model._meta.label for ref in merge_moves.patient_references()}
    for label in (
        "records.Encounter",
        "records.Document",
        "imaging.Study",
        "imaging.SimulationCase",
        "planning.Plan",
        "referrals.Referral",
        "referrals.Consultation",
        "scheduling.Booking",
        "live.LiveSession",
    ):
        assert label in moved, label
    # the records' own bookkeeping stays where it is
    assert not moved & {"records.Patient", "records.DuplicateCandidate", "records.MergeRequest"}


def _merge(requester: User, approver: User, survivor: Patient, merged: Patient) -> Patient:
    candidate = DuplicateCandidate.objects.get(patient=merged)
    request = records.request_merge(
        actor=requester, candidate=candidate, survivor=survivor, merged=merged, reason="本人核实"
    )
    return records.approve_merge(
        actor=approver, merge_request=MergeRequest.objects.get(pk=request.pk)
    )


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
    user: User = make_persona(
        "he.township", "何乡医", "assistant", (shell_network.tuodian, Role.TOWNSHIP_DOCTOR)
    )
    return user


@pytest.mark.django_db
def test_a_live_session_of_the_merged_record_moves_and_the_confirmation_counts_it(
    personas: Personas, patient_in_shuangbai: Patient, twin: Patient, second_reviewer: User
) -> None:
    session = live.create_live_session(
        actor=personas.county_surgeon,
        data=live.LiveSessionIn(
            title="右髋 空心钉", room="or-1", streams=["field"], patient=twin, consent_recorded=True
        ),
    )
    listed = {m.label: m.count for m in merge_moves.what_moves(twin.pk)}
    assert listed["live.LiveSession.patient"] == 1
    assert listed["records.Encounter.patient"] == 0  # the care record's own tables always listed

    _merge(personas.township_doctor, second_reviewer, patient_in_shuangbai, twin)

    assert LiveSession.objects.get(pk=session.pk).patient_id == patient_in_shuangbai.pk
    assert merge_moves.what_moves(twin.pk) == [
        m for m in merge_moves.what_moves(twin.pk) if m.count == 0
    ]
    event = AuditEvent.objects.get(action="patient.merge")
    assert event.detail["moved"] == {"live.LiveSession.patient": 1}


@pytest.mark.django_db
def test_rows_that_cannot_coexist_refuse_the_merge_and_nothing_moves(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    twin: Patient,
    second_reviewer: User,
) -> None:
    # both records on one MDT meeting's list: one of them has to go first
    ref = next(r for r in merge_moves.patient_references() if r.model is MdtCase)
    meeting = MdtMeeting.objects.create(
        title="髋部骨折 MDT",
        institution=shell_network.center,
        chair=personas.center_surgeon,
        scheduled_at=timezone.now(),
    )
    MdtCase.objects.create(meeting=meeting, patient=patient_in_shuangbai, summary="股骨颈骨折")
    MdtCase.objects.create(meeting=meeting, patient=twin, summary="股骨颈骨折")
    with pytest.raises(DomainError) as refused:
        _merge(personas.township_doctor, second_reviewer, patient_in_shuangbai, twin)
    assert refused.value.code == "merge_conflict" and ref.name in refused.value.message
    twin.refresh_from_db()
    assert twin.merged_into_id is None
