"""Demo quality data: 12 months of orthopedic admissions that fit the indicators (hip fractures
in the elderly, hip/knee replacements, spinal operations, severe trauma), with the clinical facts
the indicators read, at realistic rates; then every indicator is computed and the warnings of the
last month raised. One county hospital is made late to operate on hip fractures (an alarm), the
network's orthogeriatric assessment drifts under its warning line, one replacement patient dies
within 30 days and one emergency override is booked: at least one warning of each kind.

Rows are written in bulk (thousands of them; the services would take minutes): the demo's own
patients, their diagnoses and procedures are consistent with the encounter they belong to.
Skipped when clinical facts exist."""

import random
from collections import deque
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from clinical_shell.network.models import Institution, Membership, Role
from clinical_shell.quality import periods, services
from clinical_shell.quality.models import ClinicalFact
from clinical_shell.records.models import (
    CareRelationship,
    Diagnosis,
    Encounter,
    Patient,
    Procedure,
)

HIP_DX = [
    ("S72.0", "股骨颈骨折", "31B2"),
    ("S72.1", "股骨转子间骨折", "31A2"),
    ("S72.2", "股骨转子下骨折", "32A1"),
]
HIP_OP = {
    "S72.0": ("81.52", "人工股骨头置换术"),
    "S72.1": ("79.35", "股骨骨折切开复位内固定术"),
    "S72.2": ("79.35", "股骨骨折切开复位内固定术"),
}
REPLACEMENT = [
    ("M16.1", "原发性髋关节病", "81.51", "全髋关节置换术"),
    ("M17.1", "原发性膝关节病", "81.54", "全膝关节置换术"),
]
SPINE = [
    ("M48.0", "椎管狭窄", "03.09", "椎板切除减压术"),
    ("M43.1", "腰椎滑脱", "81.08", "腰椎后路融合术"),
]
TRAUMA = [
    ("S32.8", "骨盆骨折", "79.39", "骨盆骨折切开复位内固定术"),
    ("S82.2", "胫骨干骨折", "79.36", "胫骨骨折切开复位内固定术"),
]


def _aware(day: date, hour: int) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)), timezone.get_default_timezone())


class _Pool:
    """Patients handed out so that nobody has two operations within weeks of each other: each
    draw takes the next patient in turn whose operations (the region's records and this
    demo's) are all at least GAP away. A demo smaller than its workload reuses someone: never
    within a week at another hospital (one hospital does a patient's operation), else the one
    whose nearest operation is farthest away."""

    GAP = timedelta(days=60)
    # a week between two hospitals, plus the two days an admission may wait for its operation
    WEEK = timedelta(days=9)

    def __init__(self, ids: list[int], rng: random.Random) -> None:
        shuffled = list(ids)
        rng.shuffle(shuffled)
        self.queue = deque(shuffled)
        self.done: dict[int, list[tuple[datetime, int]]] = {p: [] for p in shuffled}
        for patient_id, at, site_id in Procedure.objects.filter(
            encounter__patient_id__in=ids
        ).values_list("encounter__patient_id", "performed_at", "encounter__institution_id"):
            self.done[patient_id].append((at, site_id))

    def _fit(self, patient_id: int, when: datetime, site_id: int) -> tuple[bool, timedelta]:
        gaps = [(abs(when - at), site) for at, site in self.done[patient_id]]
        nearest = min((gap for gap, _site in gaps), default=self.GAP)
        safe = all(site == site_id or gap >= self.WEEK for gap, site in gaps)
        return safe, nearest

    def take(self, when: datetime, site_id: int) -> int:
        for _ in range(len(self.queue)):
            patient_id = self.queue[0]
            self.queue.rotate(-1)
            if self._fit(patient_id, when, site_id)[1] >= self.GAP:
                break
        else:
            patient_id = max(self.queue, key=lambda p: self._fit(p, when, site_id))
        self.done[patient_id].append((when, site_id))
        return patient_id


class _Builder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.encounters: list[Encounter] = []
        self.pending: list[
            tuple[int, str, str, str, str, str, int, list[tuple[str, timedelta]]]
        ] = []

    def add(
        self,
        patient: Patient,
        institution: Institution,
        surgeon_id: int | None,
        start: datetime,
        dx: tuple[str, str, str],
        op: tuple[str, str] | None,
        op_after: timedelta,
        facts: list[tuple[str, timedelta]],
    ) -> None:
        encounter = Encounter(
            patient=patient,
            institution=institution,
            kind="inpatient",
            started_at=start,
            attending_id=surgeon_id,
            chief_complaint=dx[1],
        )
        self.encounters.append(encounter)
        self.pending.append(
            (
                len(self.encounters) - 1,
                dx[0],
                dx[1],
                dx[2],
                op[0] if op else "",
                op[1] if op else "",
                int(op_after.total_seconds()),
                facts,
            )
        )

    def save(self, surgeons: dict[int, int | None]) -> int:
        created = Encounter.objects.bulk_create(self.encounters)
        diagnoses, procedures, facts, cares = [], [], [], set()
        for index, icd10, text, ao, icd9, op_text, op_after, fact_list in self.pending:
            encounter = created[index]
            cares.add((encounter.patient_id, encounter.institution_id))
            diagnoses.append(
                Diagnosis(
                    encounter=encounter,
                    icd10_code=icd10,
                    description=text,
                    ao_ota_code=ao,
                    primary=True,
                )
            )
            if icd9:
                procedures.append(
                    Procedure(
                        encounter=encounter,
                        icd9cm3_code=icd9,
                        description=op_text,
                        performed_at=encounter.started_at + timedelta(seconds=op_after),
                        surgeon_id=surgeons.get(encounter.institution_id),
                    )
                )
            for kind, after in fact_list:
                facts.append(
                    ClinicalFact(
                        encounter=encounter, kind=kind, occurred_at=encounter.started_at + after
                    )
                )
        Diagnosis.objects.bulk_create(diagnoses)
        Procedure.objects.bulk_create(procedures)
        self._bookings(procedures, surgeons)
        ClinicalFact.objects.bulk_create(facts)
        CareRelationship.objects.bulk_create(
            [CareRelationship(patient_id=p, institution_id=i, kind="encounter") for p, i in cares],
            ignore_conflicts=True,
        )
        return len(created)

    def _bookings(self, procedures: list[Procedure], surgeons: dict[int, int | None]) -> None:
        """The operation bookings behind grade 3-4 operations (credentialing coverage): booked
        under privilege, except a few whose privilege lapsed before the day (flagged)."""
        from clinical_shell.network.models import Person
        from clinical_shell.scheduling.models import Booking

        users = dict(
            Person.objects.filter(pk__in=[p for p in surgeons.values() if p]).values_list(
                "pk", "user_id"
            )
        )
        bookings = []
        for procedure in procedures:
            grade = OPERATION_GRADE.get(procedure.icd9cm3_code[:4])
            user_id = users.get(procedure.surgeon_id or 0)
            if grade is None or user_id is None:
                continue
            encounter = procedure.encounter
            flagged = self.rng.random() < 0.01
            bookings.append(
                Booking(
                    patient_id=encounter.patient_id,
                    procedure_name=procedure.description,
                    procedure_code=procedure.icd9cm3_code,
                    grade=grade,
                    surgeon_id=user_id,
                    institution_id=encounter.institution_id,
                    scheduled_on=timezone.localtime(procedure.performed_at).date(),
                    state=Booking.State.FLAGGED if flagged else Booking.State.PERFORMED,
                    flag_code="privilege_expired" if flagged else "",
                    flag_reason="术前授权已过期(演示数据)" if flagged else "",
                    booked_by_id=user_id,
                )
            )
        Booking.objects.bulk_create(bookings)


# 手术分级 of the demo's operations (ICD-9-CM-3 prefix): replacements and fusions are grade 4,
# decompression and fracture fixation grade 3 (illustrative, as the demo's licences)
OPERATION_GRADE = {
    "81.5": 4,
    "81.0": 4,
    "03.0": 3,
    "79.3": 3,
}


def _hip_facts(
    rng: random.Random, late_share: float, assessed: float
) -> tuple[list[tuple[str, timedelta]], timedelta]:
    surgery = timedelta(
        hours=rng.uniform(38, 80) if rng.random() < late_share else rng.uniform(6, 34)
    )
    facts: list[tuple[str, timedelta]] = [("arrival", timedelta(0))]
    if rng.random() < 0.04:
        facts.append(("non_operative", timedelta(hours=2)))
        return facts, surgery
    facts.append(("surgery_start", surgery))
    if rng.random() < assessed:
        facts.append(("orthogeriatric_assessment", timedelta(hours=rng.uniform(4, 70))))
    if rng.random() < 0.8:
        facts.append(("mobilised", surgery + timedelta(hours=rng.uniform(12, 34))))
    if rng.random() < 0.07:
        facts.append(("death_30d", surgery + timedelta(days=rng.uniform(2, 28))))
    return facts, surgery


def load_quality_demo(*, seed: int = 2026, month_count: int = 12) -> dict[str, Any]:
    if ClinicalFact.objects.exists():
        return {"skipped": True}
    center = Institution.objects.filter(level=Institution.Level.CENTER).first()
    counties = list(Institution.objects.filter(level=Institution.Level.COUNTY).order_by("code"))
    if center is None or not counties:
        return {"skipped": True}
    rng = random.Random(seed)
    sites = [center, *counties]
    surgeons: dict[int, int | None] = {}
    for site in sites:
        row = (
            Membership.objects.filter(institution=site, role=Role.SURGEON, active=True)
            .order_by("pk")
            .first()
        )
        surgeons[site.pk] = row.person_id if row else None
    elderly = list(
        Patient.objects.filter(
            birth_date__lte=date(1961, 1, 1), deleted_at__isnull=True
        ).values_list("pk", flat=True)
    )
    adults = list(
        Patient.objects.filter(
            birth_date__lte=date(2004, 1, 1), deleted_at__isnull=True
        ).values_list("pk", flat=True)
    )
    if not elderly or not adults:
        return {"skipped": True}
    patients = {p.pk: p for p in Patient.objects.filter(pk__in=set(elderly) | set(adults))}
    this_month = periods.month_start(timezone.localdate())
    last = periods.add_months(this_month, -1)
    months = periods.last_months(last, month_count)
    late_county = counties[0]  # operates late on hip fractures: the alarm of the demo
    builder = _Builder(rng)
    # the elderly are also adults: one pool each would let a person be drawn by both, so the
    # adults' pool holds only those under 65
    old_people = _Pool(elderly[2:] or elderly, rng)  # the first two: the death and override
    grown_ups = _Pool(sorted(set(adults) - set(elderly)) or adults, rng)
    for month in months:
        recent = month == last
        for site in sites:
            hips = rng.randint(22, 28) if site == center else rng.randint(2, 5)
            if site == late_county:
                hips = 22 if recent else rng.randint(3, 6)
            late = 0.62 if site == late_county else 0.15
            for _ in range(hips):
                dx = rng.choice(HIP_DX)
                facts, surgery = _hip_facts(rng, late, 0.68 if recent else 0.88)
                start = _aware(month + timedelta(days=rng.randrange(27)), rng.randint(0, 23))
                builder.add(
                    patients[old_people.take(start, site.pk)],
                    site,
                    surgeons[site.pk],
                    start,
                    dx,
                    HIP_OP[dx[0]] if any(k == "surgery_start" for k, _ in facts) else None,
                    surgery,
                    facts,
                )
            for _ in range(rng.randint(10, 16) if site == center else rng.randint(1, 4)):
                code, text, icd9, op_text = rng.choice(REPLACEMENT)
                op = timedelta(hours=rng.uniform(18, 40))
                facts = [("clean_incision", op)]
                if rng.random() < 0.85:
                    facts.append(("rehab_first_session", op + timedelta(hours=rng.uniform(6, 44))))
                elif rng.random() < 0.5:
                    facts.append(("rehab_first_session", op + timedelta(hours=rng.uniform(50, 90))))
                if rng.random() < 0.012:
                    facts.append(("ssi_30d", op + timedelta(days=rng.uniform(5, 25))))
                if rng.random() < 0.015:
                    facts.append(("unplanned_reoperation", op + timedelta(days=rng.uniform(2, 20))))
                start = _aware(month + timedelta(days=rng.randrange(27)), 9)
                builder.add(
                    patients[old_people.take(start, site.pk)],
                    site,
                    surgeons[site.pk],
                    start,
                    (code, text, ""),
                    (icd9, op_text),
                    op,
                    facts,
                )
            for _ in range(rng.randint(3, 6) if site == center else rng.randint(0, 1)):
                code, text, icd9, op_text = rng.choice(SPINE)
                op = timedelta(hours=rng.uniform(20, 48))
                facts = [("clean_incision", op)]
                if rng.random() < 0.02:
                    facts.append(("unplanned_reoperation", op + timedelta(days=3)))
                start = _aware(month + timedelta(days=rng.randrange(27)), 10)
                builder.add(
                    patients[grown_ups.take(start, site.pk)],
                    site,
                    surgeons[site.pk],
                    start,
                    (code, text, ""),
                    (icd9, op_text),
                    op,
                    facts,
                )
            for _ in range(rng.randint(3, 6) if site == center else rng.randint(0, 2)):
                code, text, icd9, op_text = rng.choice(TRAUMA)
                op = timedelta(minutes=rng.uniform(70, 420))
                facts = [
                    ("severe_trauma", timedelta(minutes=10)),
                    ("arrival", timedelta(0)),
                    ("surgery_start", op),
                ]
                start = _aware(month + timedelta(days=rng.randrange(27)), rng.randint(0, 23))
                builder.add(
                    patients[grown_ups.take(start, site.pk)],
                    site,
                    surgeons[site.pk],
                    start,
                    (code, text, ""),
                    (icd9, op_text),
                    op,
                    facts,
                )
    # one replacement patient at the center dies within 30 days: an event warning
    death_day = last + timedelta(days=3)
    op = timedelta(hours=24)
    builder.add(
        patients[elderly[0]],
        center,
        surgeons[center.pk],
        _aware(death_day, 9),
        ("M16.1", "原发性髋关节病", ""),
        ("81.51", "全髋关节置换术"),
        op,
        [("clean_incision", op), ("death_30d", op + timedelta(days=9))],
    )
    with transaction.atomic():
        count = builder.save(surgeons)
        override = _override(center, counties, patients[elderly[1]], last)
    results = 0
    for month in months:
        results += services.recompute_month(month, raise_warnings=month == last)
    return {"encounters": count, "results": results, "override": override}


def _override(
    center: Institution, counties: list[Institution], patient: Patient, month: date
) -> bool:
    from clinical_shell.scheduling.models import Booking

    if Booking.objects.filter(emergency_override=True).exists():
        return False
    site = counties[-1]
    member = (
        Membership.objects.filter(institution=site, role=Role.SURGEON, active=True)
        .select_related("person__user")
        .first()
    )
    if member is None:
        return False
    user = member.person.user
    booking = Booking.objects.create(
        patient=patient,
        procedure_name="股骨颈骨折人工股骨头置换术",
        procedure_code="81.52",
        grade=3,
        surgeon=user,
        institution=site,
        scheduled_on=month + timedelta(days=5),
        state=Booking.State.PERFORMED,
        emergency_override=True,
        override_reason="夜间急诊，患者血流动力学不稳定，无法转运至州医院",
        overridden_code="grade_above_privilege",
        overridden_reason="三级手术超出本人授权(二级)",
        booked_by=user,
    )
    Booking.objects.filter(pk=booking.pk).update(created_at=_aware(month + timedelta(days=5), 2))
    return True
