"""The referral state machine, who may move it, what travels with it and for how long."""

from datetime import date, timedelta

import pytest
from django.utils import timezone
from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.errors import DomainError, PermissionDeniedError
from clinical_shell.network.models import Institution
from clinical_shell.notifications.models import Notification
from clinical_shell.records import services as records
from clinical_shell.records.models import Patient
from clinical_shell.referrals import selectors, services
from clinical_shell.referrals.models import Direction, Referral, State, TransferApproval

pytestmark = pytest.mark.django_db

HANDOVER = {
    "discharge_summary": "右股骨颈骨折，全髋关节置换术后第5天",
    "operation_note": "后外侧入路全髋关节置换",
    "implants": "生物型髋臼杯 52 mm，股骨柄 3 号",
    "rehab_plan": "术后 6 周内部分负重，每日髋外展训练",
    "medication_plan": "利伐沙班 10 mg qd 至术后 35 天",
    "follow_up": "术后 2 周拆线，6 周复查 X 线",
    "warning_signs": "小腿肿痛、呼吸困难、伤口渗液、髋部脱位感",
}


@pytest.fixture
def hip_patient(shell_network: Network, personas: Personas) -> Patient:
    return records.register_patient(
        actor=personas.township_doctor,
        institution=shell_network.tuodian,
        name="杨秀英",
        sex="F",
        birth_date=date(1944, 6, 2),
    )


def _up(personas: Personas, net: Network, patient: Patient, to: Institution) -> Referral:
    return services.create_draft(
        actor=personas.township_doctor,
        patient_id=patient.pk,
        direction=Direction.UP,
        from_institution=net.tuodian,
        to_institution=to,
        urgency="urgent",
        reason="跌倒后右髋疼痛，不能行走，X 线示股骨颈骨折",
        criteria=["up_hip_fracture_elderly"],
    )


def test_up_referral_declined_onward_accepted_arrived_completed(
    shell_network: Network, personas: Personas, hip_patient: Patient
) -> None:
    net = shell_network
    note = records.add_document(
        actor=personas.township_doctor,
        patient=hip_patient,
        institution=net.tuodian,
        title="首诊记录",
        kind="note",
        body="右髋外旋短缩畸形",
    )
    draft = _up(personas, net, hip_patient, net.shuangbai)
    services.share(
        actor=personas.township_doctor, referral_id=draft.pk, kind="document", object_id=note.pk
    )
    sent = services.send(actor=personas.township_doctor, referral_id=draft.pk)
    assert sent.state == State.SENT and sent.answer_due_at is not None
    assert Notification.objects.filter(
        recipient=personas.county_surgeon, kind="referral.incoming"
    ).exists()
    # the county reads what travels with it, and nothing of the patient beyond
    items = selectors.shared_items(personas.county_surgeon, sent)
    assert [(i.kind, i.object_id) for i in items] == [("document", note.pk)]

    declined, onward = services.decline(
        actor=personas.county_surgeon,
        referral_id=draft.pk,
        reason="本院无老年髋部骨折共管条件",
        onward_to=net.center,
    )
    assert declined.state == State.DECLINED and onward is not None
    assert onward.state == State.SENT and onward.from_institution_id == net.tuodian.pk
    assert selectors.shared_items(personas.county_surgeon, declined) == []  # ended: no more
    assert [i.object_id for i in selectors.shared_items(personas.center_surgeon, onward)] == [
        note.pk
    ]

    for action in (services.accept, services.arrive):
        action(actor=personas.center_surgeon, referral_id=onward.pk)
    done = services.complete(actor=personas.center_surgeon, referral_id=onward.pk)
    assert done.state == State.COMPLETED and done.ended_at is not None
    assert list(done.events.values_list("to_state", flat=True)) == [
        "sent",
        "accepted",
        "arrived",
        "completed",
    ]
    assert selectors.shared_items(personas.center_surgeon, done) == []
    assert AuditEvent.objects.filter(action="referral.complete", patient_id=hip_patient.pk).exists()


@pytest.mark.parametrize(
    ("action", "state"),
    [("accept", State.DRAFT), ("arrive", State.SENT), ("complete", State.ACCEPTED)],
)
def test_illegal_transitions_are_refused_and_change_nothing(
    shell_network: Network, personas: Personas, hip_patient: Patient, action: str, state: str
) -> None:
    referral = _up(personas, shell_network, hip_patient, shell_network.shuangbai)
    Referral.objects.filter(pk=referral.pk).update(state=state)
    with pytest.raises(DomainError) as refused:
        getattr(services, action)(actor=personas.county_surgeon, referral_id=referral.pk)
    assert refused.value.code == "illegal_transition" and refused.value.status == 409
    referral.refresh_from_db()
    assert referral.state == state and not referral.events.exists()


def test_only_the_right_side_moves_it(
    shell_network: Network, personas: Personas, hip_patient: Patient
) -> None:
    referral = _up(personas, shell_network, hip_patient, shell_network.shuangbai)
    services.send(actor=personas.township_doctor, referral_id=referral.pk)
    for intruder in (personas.township_doctor, personas.outsider, personas.center_surgeon):
        with pytest.raises(PermissionDeniedError):
            services.accept(actor=intruder, referral_id=referral.pk)
    assert AuditEvent.objects.filter(action="referral.accept", outcome="failure").count() == 3
    with pytest.raises(PermissionDeniedError):
        services.cancel(actor=personas.county_surgeon, referral_id=referral.pk)


def test_a_stale_version_is_a_conflict(
    shell_network: Network, personas: Personas, hip_patient: Patient
) -> None:
    referral = _up(personas, shell_network, hip_patient, shell_network.shuangbai)
    services.send(actor=personas.township_doctor, referral_id=referral.pk, version=1)
    with pytest.raises(DomainError) as conflict:
        services.accept(actor=personas.county_surgeon, referral_id=referral.pk, version=1)
    assert conflict.value.code == "referral_changed"


def test_form_errors_all_at_once_and_direction_checked(
    shell_network: Network, personas: Personas, hip_patient: Patient
) -> None:
    with pytest.raises(services.ReferralFormError) as bad:
        services.create_draft(
            actor=personas.township_doctor,
            patient_id=hip_patient.pk,
            direction=Direction.DOWN,
            from_institution=shell_network.tuodian,
            to_institution=shell_network.center,
            urgency="whenever",
            reason=" ",
            criteria=["up_hip_fracture_elderly"],
        )
    assert set(bad.value.errors) == {"to_institution", "urgency", "reason", "criteria"}
    assert not Referral.objects.exists()


def test_referral_for_a_patient_the_user_may_not_see_is_refused(
    shell_network: Network, personas: Personas, hip_patient: Patient
) -> None:
    with pytest.raises(PermissionDeniedError):
        services.create_draft(
            actor=personas.outsider,
            patient_id=hip_patient.pk,
            direction=Direction.UP,
            from_institution=shell_network.yongren,
            to_institution=shell_network.center,
            reason="x",
            criteria=["up_hip_fracture_elderly"],
        )
    assert not Referral.objects.exists()


def test_attachment_from_another_patient_is_refused(
    shell_network: Network, personas: Personas, hip_patient: Patient, patient_in_shuangbai: Patient
) -> None:
    other = records.add_document(
        actor=personas.township_doctor,
        patient=patient_in_shuangbai,
        institution=shell_network.tuodian,
        title="他人文书",
        kind="note",
        body="",
    )
    referral = _up(personas, shell_network, hip_patient, shell_network.shuangbai)
    with pytest.raises(DomainError) as refused:
        services.share(
            actor=personas.township_doctor,
            referral_id=referral.pk,
            kind="document",
            object_id=other.pk,
        )
    assert refused.value.code == "share_not_this_patient"
    assert not referral.shares.exists()


def test_down_referral_needs_its_handover_documents(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    referral = services.create_draft(
        actor=personas.county_surgeon,
        patient_id=patient_in_shuangbai.pk,
        direction=Direction.DOWN,
        from_institution=shell_network.shuangbai,
        to_institution=shell_network.tuodian,
        reason="术后稳定，回乡镇康复",
        criteria=["down_rehabilitation"],
        handover={"discharge_summary": HANDOVER["discharge_summary"]},
    )
    with pytest.raises(services.ReferralFormError) as missing:
        services.send(actor=personas.county_surgeon, referral_id=referral.pk)
    assert (
        "warning_signs" in missing.value.errors and "discharge_summary" not in missing.value.errors
    )
    Referral.objects.filter(pk=referral.pk).update(handover=HANDOVER)
    assert services.send(actor=personas.county_surgeon, referral_id=referral.pk).state == State.SENT


def test_transfer_out_cannot_complete_without_the_center(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    referral = services.create_draft(
        actor=personas.county_surgeon,
        patient_id=patient_in_shuangbai.pk,
        direction=Direction.OUT,
        from_institution=shell_network.shuangbai,
        to_institution=None,
        outside_hospital="昆明医科大学第一附属医院",
        reason="骨肿瘤疑诊，需省级专科",
        criteria=["up_operative_fracture"],
    )
    services.send(actor=personas.county_surgeon, referral_id=referral.pk)
    services.accept(actor=personas.county_surgeon, referral_id=referral.pk)
    with pytest.raises(DomainError) as blocked:
        services.arrive(actor=personas.county_surgeon, referral_id=referral.pk)
    assert blocked.value.code == "transfer_not_approved"
    with pytest.raises(PermissionDeniedError):  # a county surgeon is not a center approver
        services.decide_transfer(
            actor=personas.county_surgeon, referral_id=referral.pk, approve=True
        )
    services.decide_transfer(actor=personas.center_surgeon, referral_id=referral.pk, approve=True)
    assert referral.approval.decision == TransferApproval.Decision.APPROVED or (
        TransferApproval.objects.get(referral=referral).decision == "approved"
    )
    services.arrive(actor=personas.county_surgeon, referral_id=referral.pk)
    assert (
        services.complete(actor=personas.county_surgeon, referral_id=referral.pk).state
        == State.COMPLETED
    )


def test_overdue_answers_escalate_once_to_the_receiving_heads(
    shell_network: Network, personas: Personas, hip_patient: Patient
) -> None:
    referral = _up(personas, shell_network, hip_patient, shell_network.center)
    services.send(actor=personas.township_doctor, referral_id=referral.pk)
    later = timezone.now() + timedelta(hours=5)  # urgent: 4 h to answer
    assert services.escalate_overdue(later) == 1
    assert services.escalate_overdue(later) == 0
    overdue = Notification.objects.filter(kind="referral.overdue")
    assert [n.recipient_id for n in overdue] == [personas.center_surgeon.pk]  # a chief physician


def test_inboxes_and_their_audit(
    shell_network: Network, personas: Personas, hip_patient: Patient
) -> None:
    referral = _up(personas, shell_network, hip_patient, shell_network.shuangbai)
    assert not selectors.inbox(personas.county_surgeon, selectors.InboxFilter()).exists()  # a draft
    services.send(actor=personas.township_doctor, referral_id=referral.pk)
    incoming = list(selectors.inbox(personas.county_surgeon, selectors.InboxFilter(q="杨")))
    assert incoming == [referral]
    # by a word of the reason, by pinyin initials in either case, and a miss
    for q, found in (("股骨颈", [referral]), ("YXY", [referral]), ("yx", [referral]), ("王", [])):
        box = selectors.inbox(personas.county_surgeon, selectors.InboxFilter(q=q))
        assert list(box) == found, q
    outgoing = selectors.inbox(personas.township_doctor, selectors.InboxFilter(box="outgoing"))
    assert list(outgoing) == [referral]
    assert not selectors.inbox(personas.outsider, selectors.InboxFilter()).exists()
