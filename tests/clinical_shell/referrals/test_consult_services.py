"""Teleconsultation and MDT rules: minimum content, consent, attachments of this patient only,
the expert's reading bounded by the open consultation, signed opinions and MDT decisions, and
the emergency time limit's escalation."""

from datetime import timedelta

import pytest
from consult_fixtures import expert_slot, full_request, hip_patient, note_of, study_of
from django.utils import timezone
from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.errors import DomainError, PermissionDeniedError
from clinical_shell.notifications.models import Notification
from clinical_shell.referrals import consult_services as consult
from clinical_shell.referrals.consult_models import ConsultState, OpinionReport

pytestmark = pytest.mark.django_db


def test_every_missing_field_is_listed_and_consent_is_required(
    shell_network: Network, personas: Personas
) -> None:
    patient = hip_patient(shell_network, personas)
    study = study_of(patient, shell_network, personas.township_doctor, "1.2.3.10")
    with pytest.raises(consult.ConsultFormError) as refused:
        consult.request_consultation(
            actor=personas.township_doctor,
            patient_id=patient.pk,
            requesting_institution_id=shell_network.tuodian.pk,
            data={"specialty": "orthopedics", "question": " "},
            study_ids=[study.pk],
        )
    assert set(refused.value.errors) == set(consult.REQUIRED_FIELDS)
    assert refused.value.status == 422
    # everything but the consent signature: still refused, naming the consent
    with pytest.raises(consult.ConsultFormError) as no_consent:
        consult.request_consultation(
            actor=personas.township_doctor,
            patient_id=patient.pk,
            requesting_institution_id=shell_network.tuodian.pk,
            data=full_request(consent_signature=""),
            study_ids=[study.pk],
        )
    assert set(no_consent.value.errors) == {"consent_signature"}


def test_attachment_of_another_patient_is_refused_and_audited(
    shell_network: Network, personas: Personas
) -> None:
    patient = hip_patient(shell_network, personas)
    other = hip_patient(shell_network, personas, name="李四")
    foreign = study_of(other, shell_network, personas.township_doctor, "1.2.3.11")
    with pytest.raises(consult.ConsultFormError) as refused:
        consult.request_consultation(
            actor=personas.township_doctor,
            patient_id=patient.pk,
            requesting_institution_id=shell_network.tuodian.pk,
            data=full_request(),
            study_ids=[foreign.pk],
        )
    assert set(refused.value.errors) == {"attachments"}
    assert AuditEvent.objects.filter(
        action="consultation.attach", outcome="failure", patient_id=patient.pk
    ).exists()


def test_expert_reads_attachments_only_while_open_and_signs_opinion(
    shell_network: Network, personas: Personas
) -> None:
    net = shell_network
    patient = hip_patient(net, personas)
    study = study_of(patient, net, personas.township_doctor, "1.2.3.12")
    note = note_of(patient, personas)
    unshared = note_of(patient, personas)
    slot = expert_slot(net, personas)
    c = consult.request_consultation(
        actor=personas.township_doctor,
        patient_id=patient.pk,
        requesting_institution_id=net.tuodian.pk,
        data=full_request(slot_id=slot.pk),
        study_ids=[study.pk],
        document_ids=[note.pk],
    )
    assert c.expert_id == personas.center_surgeon.pk and c.slot_id == slot.pk
    assert Notification.objects.filter(
        recipient=personas.center_surgeon, kind="consultation.request"
    ).exists()
    # the expert reads exactly what was attached, not the chart
    items = consult.read_attachments(personas.center_surgeon, c)
    assert [s.pk for s in items["studies"]] == [study.pk]
    assert [d.pk for d in items["documents"]] == [note.pk]
    assert unshared.pk not in [d.pk for d in items["documents"]]
    # an outsider is not a party
    with pytest.raises(PermissionDeniedError):
        consult.access_consultation(personas.outsider, c.pk)

    report = consult.answer(
        actor=personas.center_surgeon,
        consultation_id=c.pk,
        opinion="移位型股骨颈骨折，高龄，建议人工股骨头置换",
        recommendations="建议上转至州骨科中心手术",
        recommend_up_referral=True,
    )
    assert consult.verify_opinion(report)
    changed = OpinionReport.objects.get(pk=report.pk)
    changed.recommendations = "可在乡镇卫生院保守治疗"
    assert not consult.verify_opinion(changed)
    assert Notification.objects.filter(
        recipient=personas.township_doctor, kind="consultation.answer"
    ).exists()

    closed = consult.close(actor=personas.township_doctor, consultation_id=c.pk)
    assert closed.state == ConsultState.CLOSED
    with pytest.raises(PermissionDeniedError):
        consult.read_attachments(personas.center_surgeon, closed)
    assert AuditEvent.objects.filter(
        action="consultation.attachments.read",
        outcome="failure",
        actor_user_id=personas.center_surgeon.pk,
    ).exists()
    # both sides keep the record: the expert still opens the consultation and its opinion
    assert consult.access_consultation(personas.center_surgeon, c.pk).opinion.pk == report.pk
    assert consult.read_attachments(personas.township_doctor, closed)["studies"]


def test_emergency_time_limit_escalates_once(shell_network: Network, personas: Personas) -> None:
    net = shell_network
    patient = hip_patient(net, personas)
    study = study_of(patient, net, personas.township_doctor, "1.2.3.13")
    expert_slot(net, personas)
    c = consult.request_consultation(
        actor=personas.township_doctor,
        patient_id=patient.pk,
        requesting_institution_id=net.tuodian.pk,
        data=full_request(priority="emergency", specialty="orthopedics"),
        study_ids=[study.pk],
    )
    minutes = (c.answer_due_at - c.created_at).total_seconds() / 60
    assert 29 <= minutes <= 31  # the seeded emergency limit
    assert consult.escalate_overdue(timezone.now() + timedelta(minutes=10)) == 0
    assert consult.escalate_overdue(timezone.now() + timedelta(minutes=31)) == 1
    assert consult.escalate_overdue(timezone.now() + timedelta(minutes=60)) == 0
    assert Notification.objects.filter(
        recipient=personas.center_surgeon, kind="consultation.overdue"
    ).exists()
    assert Notification.objects.filter(
        recipient=personas.township_doctor, kind="consultation.overdue"
    ).exists()


def test_mdt_decision_signed_per_patient_by_the_chair(
    shell_network: Network, personas: Personas
) -> None:
    net = shell_network
    first = hip_patient(net, personas)
    second = hip_patient(net, personas, name="王芳")
    study = study_of(first, net, personas.township_doctor, "1.2.3.14")
    meeting = consult.create_meeting(
        actor=personas.township_doctor,
        institution_id=net.tuodian.pk,
        title="高龄髋部骨折 MDT",
        scheduled_at=timezone.now() + timedelta(hours=1),
        specialties=["orthopedics", "anesthesia", "geriatrics"],
        participant_ids=[personas.center_surgeon.pk, personas.county_surgeon.pk],
    )
    case1 = consult.add_case(
        actor=personas.township_doctor,
        meeting_id=meeting.pk,
        patient_id=first.pk,
        summary="股骨颈骨折",
        study_ids=[study.pk],
    )
    case2 = consult.add_case(
        actor=personas.township_doctor,
        meeting_id=meeting.pk,
        patient_id=second.pk,
        summary="转子间骨折",
        study_ids=[],
    )
    assert consult.shared_study(personas.center_surgeon, meeting.pk, study.pk).pk == study.pk
    with pytest.raises(PermissionDeniedError):
        consult.shared_study(personas.outsider, meeting.pk, study.pk)
    with pytest.raises(PermissionDeniedError):
        consult.decide_case(actor=personas.center_surgeon, case_id=case1.pk, decision="手术")
    signed = consult.decide_case(
        actor=personas.township_doctor, case_id=case1.pk, decision="48 小时内行人工股骨头置换"
    )
    assert consult.verify_case(signed)
    with pytest.raises(DomainError):
        consult.end_meeting(actor=personas.township_doctor, meeting_id=meeting.pk)
    consult.decide_case(actor=personas.township_doctor, case_id=case2.pk, decision="PFNA 内固定")
    signed.decision = "保守治疗"
    assert not consult.verify_case(signed)
    assert consult.end_meeting(actor=personas.township_doctor, meeting_id=meeting.pk).ended_at


def test_only_specialists_offer_slots(shell_network: Network, personas: Personas) -> None:
    # a slot makes its publisher an expert who reads requests to the specialty
    with pytest.raises(PermissionDeniedError):
        consult.publish_slot(
            actor=personas.township_doctor,
            institution_id=shell_network.tuodian.pk,
            specialty="orthopedics",
            starts_at=timezone.now() + timedelta(hours=1),
        )
    assert expert_slot(shell_network, personas).expert_id == personas.center_surgeon.pk
