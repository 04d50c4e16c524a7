"""Demo referrals in every state, made through the services by the demo's own staff (so each has
its events, audit and notifications). Skipped when referrals exist or the region lacks staff."""

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from clinical_shell.network.models import Institution, Membership, Role
from clinical_shell.records.models import CareRelationship, Document
from clinical_shell.referrals import services
from clinical_shell.referrals.models import Direction, Referral, Urgency

HANDOVER = {
    "discharge_summary": "右股骨颈骨折，全髋关节置换术后第6天，切口愈合良好",
    "operation_note": "后外侧入路全髋关节置换，出血约 300 ml",
    "implants": "生物型髋臼杯 52 mm，股骨柄 3 号，陶瓷股骨头 36 mm",
    "rehab_plan": "术后 6 周内助行器下部分负重，每日髋外展与股四头肌训练",
    "medication_plan": "利伐沙班 10 mg 每日一次至术后 35 天；塞来昔布 200 mg 每日一次 2 周",
    "follow_up": "术后 2 周拆线，6 周、3 个月复查 X 线",
    "warning_signs": "小腿肿痛、胸痛气促、切口渗液发热、髋部脱位感：立即上转",
}


def _member(institution: Institution, role: str, *, skip: int = 0) -> User | None:
    rows = Membership.objects.filter(institution=institution, role=role, active=True).order_by("pk")
    row = rows.select_related("person__user")[skip : skip + 1].first()
    return row.person.user if row is not None else None


def _patients(institution: Institution, count: int) -> list[int]:
    return list(
        CareRelationship.objects.filter(institution=institution)
        .order_by("patient_id")
        .values_list("patient_id", flat=True)
        .distinct()[:count]
    )


def load_referral_demo() -> int:
    """Referrals of one township, its county and the center, one or more in each state."""
    if Referral.objects.exists():
        return 0
    # the township (with a township doctor) that has the most patients
    doctor_row = max(
        Membership.objects.filter(role=Role.TOWNSHIP_DOCTOR, active=True)
        .select_related("institution__parent", "person__user")
        .order_by("pk"),
        key=lambda m: CareRelationship.objects.filter(institution=m.institution_id).count(),
        default=None,
    )
    center = Institution.objects.filter(level=Institution.Level.CENTER).order_by("pk").first()
    if doctor_row is None or center is None or doctor_row.institution.parent is None:
        return 0
    township, county = doctor_row.institution, doctor_row.institution.parent
    doctor = doctor_row.person.user
    county_surgeon = _member(county, Role.SURGEON)
    center_surgeon = _member(center, Role.SURGEON)
    if county_surgeon is None or center_surgeon is None:
        return 0
    patients = _patients(township, 12)
    if len(patients) < 12:
        return 0
    made = 0

    def up(patient_id: int, urgency: str = Urgency.URGENT, to: Institution = county) -> Referral:
        nonlocal made
        made += 1
        referral = services.create_draft(
            actor=doctor,
            patient_id=patient_id,
            direction=Direction.UP,
            from_institution=township,
            to_institution=to,
            urgency=urgency,
            reason="跌倒后髋部疼痛，不能行走，X 线示股骨颈骨折",
            criteria=["up_hip_fracture_elderly"],
        )
        # the township shares its own note (another institution's is not its to send)
        document = (
            Document.objects.filter(patient_id=patient_id, institution=township)
            .order_by("pk")
            .first()
        )
        if document is not None:
            services.share(
                actor=doctor, referral_id=referral.pk, kind="document", object_id=document.pk
            )
        return referral

    def send(r: Referral) -> Referral:
        return services.send(actor=doctor, referral_id=r.pk)

    by = county_surgeon
    up(patients[0])  # draft
    send(up(patients[1]))  # sent, answer due
    services.accept(actor=by, referral_id=send(up(patients[2])).pk)  # accepted
    arrived = send(up(patients[3]))
    services.accept(actor=by, referral_id=arrived.pk)
    services.arrive(actor=by, referral_id=arrived.pk)  # arrived
    done = send(up(patients[4]))
    for step in (services.accept, services.arrive, services.complete):
        step(actor=by, referral_id=done.pk)  # completed
    returned = send(up(patients[5]))
    services.accept(actor=by, referral_id=returned.pk)
    services.return_referral(actor=by, referral_id=returned.pk, reason="非手术指征，建议保守治疗")
    services.cancel(actor=doctor, referral_id=send(up(patients[6])).pk, reason="家属要求暂缓")
    services.decline(  # declined on to the center (a new referral, sent)
        actor=by,
        referral_id=send(up(patients[7])).pk,
        reason="本院暂无老年髋部骨折共管条件",
        onward_to=center,
    )
    made += 1
    send(up(patients[8], Urgency.EMERGENCY))  # emergency, pre-notified
    late = send(up(patients[9], Urgency.ROUTINE))  # overdue: escalated by the periodic task
    Referral.objects.filter(pk=late.pk).update(
        sent_at=timezone.now() - timedelta(days=3),
        answer_due_at=timezone.now() - timedelta(days=1),
    )
    services.escalate_overdue()
    made += _down_and_out(center, center_surgeon, county, township, county_surgeon, patients)
    return made


def _down_and_out(
    center: Institution,
    center_surgeon: User,
    county: Institution,
    township: Institution,
    county_surgeon: User,
    patients: list[int],
) -> int:
    """A down-referral from the center with its handover, and transfers out of the region."""
    made = 0
    centered = _patients(center, 1)
    if centered:
        down = services.create_draft(
            actor=center_surgeon,
            patient_id=centered[0],
            direction=Direction.DOWN,
            from_institution=center,
            to_institution=county,
            reason="术后病情稳定，回县医院康复",
            criteria=["down_stable_post_op", "down_rehabilitation"],
            handover=HANDOVER,
        )
        services.send(actor=center_surgeon, referral_id=down.pk)
        made += 1
    out_args: dict[str, Any] = {
        "actor": county_surgeon,
        "direction": Direction.OUT,
        "from_institution": county,
        "to_institution": None,
        "outside_hospital": "昆明医科大学第一附属医院",
        "reason": "骨盆骨折合并髋臼骨折，需省级医院手术",
        "criteria": ["up_severe_trauma"],
    }
    county_patients = _patients(county, 2)
    for number, patient_id in enumerate(county_patients):
        out = services.create_draft(patient_id=patient_id, **out_args)
        services.send(actor=county_surgeon, referral_id=out.pk)
        made += 1
        if number == 1:  # approved by the center; the other waits for its decision
            services.decide_transfer(
                actor=center_surgeon, referral_id=out.pk, approve=True, note="同意转往省级医院"
            )
    return made
