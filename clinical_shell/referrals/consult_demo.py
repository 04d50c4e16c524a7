"""Demo teleconsultations and one MDT meeting, made through the services by the demo's staff.
Skipped when consultations exist or the region lacks the staff and patients it needs."""

from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from clinical_shell.imaging.models import Study
from clinical_shell.network.models import Institution, Membership, Role
from clinical_shell.records import services as records
from clinical_shell.records.models import CareRelationship, Document, Patient
from clinical_shell.referrals import consult_services as consult
from clinical_shell.referrals.consult_models import Consultation


def _member(institution: Institution, role: str, skip: int = 0) -> User | None:
    row = (
        Membership.objects.filter(institution=institution, role=role, active=True)
        .select_related("person__user")
        .order_by("pk")[skip : skip + 1]
        .first()
    )
    return row.person.user if row is not None else None


def _with_document(doctor: User, institution: Institution, count: int) -> list[int]:
    """Patients in care at `institution`, each with a first-visit note to attach."""
    ids = list(
        CareRelationship.objects.filter(institution=institution)
        .order_by("patient_id")
        .values_list("patient_id", flat=True)
        .distinct()[:count]
    )
    for patient in Patient.objects.filter(pk__in=ids):
        own = Document.objects.filter(patient=patient, institution=institution)
        if not own.filter(deleted_at__isnull=True).exists():
            records.add_document(
                actor=doctor,
                patient=patient,
                institution=institution,
                title="首诊记录",
                kind="note",
                body="跌倒后髋部疼痛，患肢短缩外旋，不能站立",
            )
    return ids


def _request(doctor: User, township: Institution, patient_id: int, **extra: object) -> Consultation:
    # what the township shares is its own note: another institution's is not its to send
    document = (
        Document.objects.filter(patient_id=patient_id, institution=township).order_by("pk").first()
    )
    assert document is not None
    data = {
        "priority": "routine",
        "specialty": "orthopedics",
        "question": "髋部骨折是否需要手术？能否在县级医院完成？",
        "history": "高龄女性，跌倒后髋部疼痛、不能站立",
        "findings": "患肢短缩外旋，X 线示股骨颈骨折",
        "diagnosis_treatment": "股骨颈骨折；皮牵引、镇痛、预防血栓",
        "consent_by": "患者本人",
        "consent_relationship": "本人",
        "consent_at": timezone.now() - timedelta(hours=1),
        "consent_signature": "患者手写签名（扫描件存档）",
        **extra,
    }
    return consult.request_consultation(
        actor=doctor,
        patient_id=patient_id,
        requesting_institution_id=township.pk,
        data=data,
        document_ids=[document.pk],
    )


def load_consult_demo() -> int:
    """Four consultations (answered and signed, closed, emergency overdue, waiting) and an MDT."""
    if Consultation.objects.exists():
        return 0
    doctor_row = (
        Membership.objects.filter(role=Role.TOWNSHIP_DOCTOR, active=True)
        .select_related("institution", "person__user")
        .order_by("pk")
        .first()
    )
    center = Institution.objects.filter(level=Institution.Level.CENTER).order_by("pk").first()
    if doctor_row is None or center is None:
        return 0
    township, doctor = doctor_row.institution, doctor_row.person.user
    expert, colleague = _member(center, Role.SURGEON), _member(center, Role.SURGEON, skip=1)
    patients = _with_document(doctor, township, 4)
    if expert is None or colleague is None or len(patients) < 4:
        return 0
    now = timezone.now()
    slots = [
        consult.publish_slot(
            actor=expert,
            institution_id=center.pk,
            specialty="orthopedics",
            starts_at=now + timedelta(days=1, hours=h),
        )
        for h in (1, 2, 3)
    ]
    consult.publish_slot(
        actor=colleague,
        institution_id=center.pk,
        specialty="spine",
        starts_at=now + timedelta(days=2),
    )
    answered = _request(doctor, township, patients[0], slot_id=slots[0].pk)
    consult.answer(
        actor=expert,
        consultation_id=answered.pk,
        opinion="移位型股骨颈骨折（Garden IV），高龄，宜行人工股骨头置换",
        recommendations="建议上转至州骨科中心手术；转运前皮牵引、镇痛",
        recommend_up_referral=True,
    )
    closed = _request(doctor, township, patients[1], slot_id=slots[1].pk)
    consult.answer(
        actor=expert,
        consultation_id=closed.pk,
        opinion="无移位骨折，可保守治疗",
        recommendations="卧床 4 周，6 周复查 X 线",
    )
    consult.close(actor=doctor, consultation_id=closed.pk)
    overdue = _request(doctor, township, patients[2], priority="emergency")
    Consultation.objects.filter(pk=overdue.pk).update(answer_due_at=now - timedelta(minutes=5))
    consult.escalate_overdue(now)
    _request(
        doctor, township, patients[3], specialty="spine", question="腰痛伴下肢麻木是否需要手术？"
    )

    center_patients = list(
        CareRelationship.objects.filter(institution=center)
        .order_by("patient_id")
        .values_list("patient_id", flat=True)
        .distinct()[:2]
    )
    if len(center_patients) == 2:
        participants = [u.pk for u in (colleague, _member(center, Role.RADIOLOGIST)) if u]
        meeting = consult.create_meeting(
            actor=expert,
            institution_id=center.pk,
            title="高龄髋部骨折多学科讨论",
            scheduled_at=now + timedelta(hours=4),
            specialties=["orthopedics", "anesthesia", "geriatrics", "radiology"],
            participant_ids=participants,
        )
        for i, patient_id in enumerate(center_patients):
            studies = list(
                Study.objects.filter(patient_id=patient_id).values_list("pk", flat=True)[:1]
            )
            case = consult.add_case(
                actor=expert,
                meeting_id=meeting.pk,
                patient_id=patient_id,
                summary="髋部骨折合并心肺疾病，评估手术时机与麻醉方式",
                study_ids=studies,
            )
            if i == 0:
                consult.decide_case(
                    actor=expert,
                    case_id=case.pk,
                    decision="48 小时内行人工股骨头置换；腰硬联合麻醉；术后老年科共管",
                )
        consult.save_minutes(
            actor=expert, meeting_id=meeting.pk, minutes="骨科、麻醉科、老年医学科、影像科参加。"
        )
    return Consultation.objects.count()
