"""Builders of hand-made cohorts for the quality-indicator tests (import as quality_cohorts)."""

from datetime import date, datetime, timedelta
from itertools import count
from zoneinfo import ZoneInfo

from django.contrib.auth.models import User

from clinical_shell.network.models import Institution, Person
from clinical_shell.quality.indicators import engine
from clinical_shell.quality.models import ClinicalFact, IndicatorDefinition
from clinical_shell.quality.periods import month_window, rolling12_window
from clinical_shell.records.models import Diagnosis, Encounter, Patient, Procedure

TZ = ZoneInfo("Asia/Shanghai")
_serial = count(1)


def at(year: int, month: int, day: int, hour: int = 8) -> datetime:
    return datetime(year, month, day, hour, tzinfo=TZ)


def patient(institution: Institution, born: date) -> Patient:
    n = next(_serial)
    return Patient.objects.create(
        name=f"患者{n}",
        name_pinyin=f"huanzhe{n}",
        name_pinyin_initials="hz",
        name_sort_key=f"huanzhe{n}",
        sex="F",
        birth_date=born,
        registered_at=institution,
    )


def encounter(
    institution: Institution,
    started: datetime,
    *,
    who: Patient | None = None,
    born: date = date(1940, 1, 1),
    kind: str = "inpatient",
    icd10: str = "",
    icd9: str = "",
    surgeon: Person | None = None,
    facts: dict[str, datetime] | None = None,
) -> Encounter:
    found = Encounter.objects.create(
        patient=who or patient(institution, born),
        institution=institution,
        kind=kind,
        started_at=started,
        chief_complaint="test",
    )
    if icd10:
        Diagnosis.objects.create(encounter=found, icd10_code=icd10, description="dx", primary=True)
    if icd9:
        Procedure.objects.create(
            encounter=found,
            icd9cm3_code=icd9,
            description="op",
            performed_at=started + timedelta(hours=24),
            surgeon=surgeon,
        )
    for kind_, when in (facts or {}).items():
        ClinicalFact.objects.create(encounter=found, kind=kind_, occurred_at=when)
    return found


def surgeon(username: str) -> Person:
    user = User.objects.create_user(username=username)
    return Person.objects.create(user=user, full_name=username)


def figures(
    code: str, month: date, level: str = "prefecture", rolling: bool = False
) -> dict[str, engine.Figure]:
    definition = IndicatorDefinition.objects.get(code=code)
    window = rolling12_window(month) if rolling else month_window(month)
    found = engine.compute(definition.spec, definition.aggregate, window, level)
    return {figure.key: figure for figure in found}


def referral(
    patient_: Patient,
    source: Institution,
    target: Institution,
    *,
    direction: str,
    sent: datetime,
    answered: datetime | None = None,
    by: User,
) -> None:
    from clinical_shell.referrals.models import Referral

    Referral.objects.create(
        patient=patient_,
        direction=direction,
        state="accepted" if answered else "sent",
        from_institution=source,
        to_institution=target,
        reason="test",
        created_by=by,
        sent_at=sent,
        answered_at=answered,
    )


def consultation(
    patient_: Patient,
    institution: Institution,
    requested: datetime,
    signed: datetime | None,
    by: User,
) -> None:
    from clinical_shell.referrals.consult_models import Consultation, OpinionReport

    found = Consultation.objects.create(
        patient=patient_,
        requesting_institution=institution,
        requested_by=by,
        specialty="orthopedics",
        question="q",
        history="h",
        findings="f",
        diagnosis_treatment="d",
        consent_by="x",
        consent_relationship="self",
        consent_at=requested,
        consent_signature="s",
        answer_due_at=requested + timedelta(days=2),
    )
    Consultation.objects.filter(pk=found.pk).update(created_at=requested)
    if signed is not None:
        OpinionReport.objects.create(
            consultation=found,
            author=by,
            opinion="o",
            recommendations="r",
            payload="{}",
            signature="00",
            signed_at=signed,
        )


def override(
    patient_: Patient, institution: Institution, surgeon_user: User, when: datetime
) -> int:
    from clinical_shell.scheduling.models import Booking

    booking = Booking.objects.create(
        patient=patient_,
        procedure_name="股骨颈骨折全髋关节置换",
        procedure_code="81.51",
        grade=4,
        surgeon=surgeon_user,
        institution=institution,
        scheduled_on=when.date(),
        emergency_override=True,
        override_reason="急诊",
        booked_by=surgeon_user,
    )
    Booking.objects.filter(pk=booking.pk).update(created_at=when)
    return booking.pk
