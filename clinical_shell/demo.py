"""Deterministic demo region: the Chuxiong network, ~200 staff, thousands of patients with records.

Idempotent: if the network is already there nothing is written and the sign-ins are printed again.
Rows go in with bulk_create. Staff of one role share one demo password, but every account has its
own salt and hash (argon2 at a low cost, see _DemoArgon2; upgraded at the first sign-in).

Demo accounts have published passwords, so the loader writes them only where OSTEON_DEMO is set
and only into a database it created itself: an empty one, which it marks with an
`accounts.DemoDatabase` row, or one already so marked. Anything else is refused (DemoRefusedError).

A few patients referred to the center also get a CT phantom study (sim_core's phantoms: lumbar,
hip, knee; 60 slices of 256 x 256), uploaded through the imaging import service, and a simulation
case built from it by the same job code the "build case" button runs (in this process, so the
cases exist when the loader returns). These are added whenever no simulation case exists yet.
"""

import os
import random
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher, make_password
from django.contrib.auth.models import User
from django.db import transaction

from clinical_shell.accounts import passwords
from clinical_shell.accounts.models import DemoDatabase
from clinical_shell.audit import services as audit
from clinical_shell.demo_data import (
    COMPLAINTS_BY_DIAGNOSIS,
    GIVEN_FEMALE,
    GIVEN_MALE,
    SURNAMES,
    diagnoses_fitting,
)
from clinical_shell.imaging import services as imaging
from clinical_shell.imaging.models import Series, SimulationCase
from clinical_shell.network import chuxiong
from clinical_shell.network.models import Department, Institution, Membership, Person, Role
from clinical_shell.network.services import build_chuxiong_network
from clinical_shell.records.identity import (
    check_char,
    pinyin_full,
    pinyin_initials,
    pinyin_sort_key,
    resident_id_digest,
)
from clinical_shell.records.models import (
    CareRelationship,
    Diagnosis,
    DuplicateCandidate,
    Encounter,
    Patient,
    Procedure,
    RecordVersion,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
# fixed reference time: the demo is the same whatever day it is loaded
DEMO_NOW = datetime(2026, 10, 1, 9, 0, tzinfo=SHANGHAI)

# role -> (demo password, title)
ROLE_PASSWORDS: dict[str, str] = {
    Role.SURGEON: "Demo-surgeon-2026",
    Role.RESIDENT: "Demo-resident-2026",
    Role.NURSE: "Demo-nurse-2026",
    Role.RADIOLOGIST: "Demo-radiology-2026",
    Role.TOWNSHIP_DOCTOR: "Demo-township-2026",
    Role.QUALITY_MANAGER: "Demo-quality-2026",
    Role.COMMITTEE_MEMBER: "Demo-committee-2026",
    Role.ADMINISTRATOR: "Demo-admin-2026",
}
TITLES: dict[str, tuple[str, ...]] = {
    Role.SURGEON: ("chief", "associate_chief", "attending", "attending"),
    Role.RESIDENT: ("resident",),
    Role.NURSE: ("nurse", "charge_nurse"),
    Role.RADIOLOGIST: ("attending", "associate_chief"),
    Role.TOWNSHIP_DOCTOR: ("assistant", "attending"),
    Role.QUALITY_MANAGER: ("none",),
    Role.COMMITTEE_MEMBER: ("chief",),
    Role.ADMINISTRATOR: ("none",),
}
USERNAME_PREFIX: dict[str, str] = {
    Role.SURGEON: "surgeon",
    Role.RESIDENT: "resident",
    Role.NURSE: "nurse",
    Role.RADIOLOGIST: "radiologist",
    Role.TOWNSHIP_DOCTOR: "township",
    Role.QUALITY_MANAGER: "quality",
    Role.COMMITTEE_MEMBER: "committee",
    Role.ADMINISTRATOR: "admin",
}
# staff per institution level: role -> count
STAFFING: dict[str, dict[str, int]] = {
    Institution.Level.CENTER: {
        Role.SURGEON: 16,
        Role.RESIDENT: 8,
        Role.NURSE: 8,
        Role.RADIOLOGIST: 4,
        Role.QUALITY_MANAGER: 2,
        Role.COMMITTEE_MEMBER: 5,
        Role.ADMINISTRATOR: 2,
    },
    Institution.Level.COUNTY: {
        Role.SURGEON: 6,
        Role.RESIDENT: 3,
        Role.NURSE: 3,
        Role.RADIOLOGIST: 1,
    },
    Institution.Level.TOWNSHIP: {Role.TOWNSHIP_DOCTOR: 1},
}


@dataclass(frozen=True)
class SignIn:
    role: str
    username: str
    password: str
    where: str


@dataclass
class DemoResult:
    created: bool
    institutions: int = 0
    staff: int = 0
    patients: int = 0
    encounters: int = 0
    ct_cases: int = 0
    seconds: float = 0.0
    sign_ins: list[SignIn] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if not self.created:
            if self.ct_cases:
                return (
                    f"演示数据已存在，补充了 {self.ct_cases} 个 CT 仿真病例 / demo data present, "
                    f"added {self.ct_cases} CT studies with simulation cases"
                )
            return "演示数据已存在，未改动 / demo data already present, nothing written"
        return (
            f"已载入演示数据 / demo loaded: {self.institutions} institutions, {self.staff} staff, "
            f"{self.patients} patients, {self.encounters} encounters, {self.ct_cases} CT studies "
            f"with simulation cases in {self.seconds:.1f} s"
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = self.summary
        return data


def _sign_ins() -> list[SignIn]:
    """The first account of each role at each institution level (usernames are deterministic)."""
    rows = Membership.objects.select_related("person__user", "institution").order_by(
        "person__user__username"
    )
    seen: dict[tuple[str, str], SignIn] = {}
    shown: set[str] = set()
    for m in rows:
        key = (m.role, m.institution.level)
        if key not in seen and m.person.user.username not in shown:
            shown.add(m.person.user.username)
            seen[key] = SignIn(
                m.role, m.person.user.username, ROLE_PASSWORDS[m.role], m.institution.name
            )
    return sorted(seen.values(), key=lambda s: (list(ROLE_PASSWORDS).index(s.role), s.username))


class DemoRefusedError(Exception):
    """The database is not a demo database (or OSTEON_DEMO is not set): nothing was written."""


def ensure_demo_database() -> None:
    """Refuse unless OSTEON_DEMO is set and the database is empty of accounts or a marked demo."""
    if not settings.OSTEON_DEMO:
        raise DemoRefusedError(
            "OSTEON_DEMO 未设置：演示账号的密码是公开的，只能载入演示数据库 / OSTEON_DEMO is not "
            "set: demo accounts have published passwords and load into a demo database only"
        )
    with transaction.atomic():
        if DemoDatabase.objects.exists():
            return
        if User.objects.exists():
            raise DemoRefusedError(
                "该数据库已有账户且不是演示数据库，拒绝载入 / this database has accounts and is "
                "not a demo database: refused"
            )
        DemoDatabase.objects.create()


def load_demo(*, patients: int = 5000, seed: int = 20260, ct_cases: int = 3) -> DemoResult:
    for pw in ROLE_PASSWORDS.values():
        passwords.validate(pw)  # the demo's passwords meet the policy like any other
    ensure_demo_database()
    started = time.perf_counter()
    if Institution.objects.filter(code=chuxiong.CENTER_CODE).exists():
        result = DemoResult(created=False)
    else:
        result = _load(patients=patients, rng=random.Random(seed))
    # the phantoms' landmarks (patient LPS) by the case built from each: the shell's build reads
    # only the DICOM, so the demo plans take their points from the phantom's truth
    landmarks: dict[int, list[dict[str, Any]]] = {}
    if ct_cases and not SimulationCase.objects.exists():
        result.ct_cases, landmarks = _load_ct_cases(count=ct_cases)
    # training and credentialing: modules on the built demo case, a resident cohort with
    # learning curves, a pending application (skipped when present or the case is not built)
    from clinical_shell.credentialing.demo import load_training_demo

    load_training_demo()
    from clinical_shell.planning.demo import load_planning_demo

    load_planning_demo(landmarks)  # draft plans on the demo cases (skipped when any plan exists)
    from clinical_shell.referrals.demo import load_referral_demo

    load_referral_demo()  # referrals in every state (skipped when present)
    from clinical_shell.referrals.consult_demo import load_consult_demo

    load_consult_demo()  # teleconsultations and one MDT meeting (skipped when present)
    from clinical_shell.quality.demo import load_quality_demo

    load_quality_demo()  # 12 months of indicator data and warnings (skipped when present)
    from clinical_shell.live.demo import load_live_demo

    load_live_demo()  # a simulator teaching session on the demo relay (skipped when present)
    result.seconds = time.perf_counter() - started
    result.sign_ins = _sign_ins()
    return result


# (phantom region, seed) of the demo CT studies, in the order patients get them
CT_PHANTOMS = (("lumbar", 1), ("hip", 2), ("knee", 3), ("lumbar", 4), ("hip", 5))
CT_SLICES = 60
CT_MATRIX = 256


def _load_ct_cases(*, count: int) -> tuple[int, dict[int, list[dict[str, Any]]]]:
    """CT phantom studies and built cases for the first `count` patients referred to the center;
    how many were built, and each built case's phantom landmarks (patient LPS mm)."""
    from sim_core.ct.phantom import make_phantom, write_phantom

    center = Institution.objects.get(code=chuxiong.CENTER_CODE)
    surgeon = (
        Membership.objects.filter(institution=center, role=Role.SURGEON)
        .select_related("person__user")
        .order_by("person__user__username")
        .first()
    )
    if surgeon is None:
        return 0, {}
    actor = surgeon.person.user
    patient_ids = list(
        CareRelationship.objects.filter(institution=center, patient__merged_into__isnull=True)
        .order_by("patient_id")
        .values_list("patient_id", flat=True)
        .distinct()[: min(count, len(CT_PHANTOMS))]
    )
    built = 0
    landmarks: dict[int, list[dict[str, Any]]] = {}
    for patient_id, (region, seed) in zip(patient_ids, CT_PHANTOMS, strict=False):
        patient = Patient.objects.get(pk=patient_id)
        work = Path(tempfile.mkdtemp(prefix="osteon-demo-ct-"))
        phantom = make_phantom(region, seed=seed, slices=CT_SLICES, matrix=CT_MATRIX)
        try:
            files = write_phantom(phantom, work / "series")
            handles = [(f.name, f.open("rb")) for f in files]
            try:
                report = imaging.import_upload(
                    actor=actor, institution=center, files=handles, patient=patient
                )
            finally:
                for _, handle in handles:
                    handle.close()
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if report.refused or not report.stored:
            continue
        series = Series.objects.get(instances__sop_uid=report.stored[0]["sop_uid"])
        job = imaging.request_case_build(actor=actor, series=series, run_in_background=False)
        finished = imaging.run_case_build(job.pk)
        if finished is not None and finished.status == finished.Status.DONE:
            built += 1
            if finished.case_id is not None:
                landmarks[finished.case_id] = list(phantom.truth["landmarks"])
    return built, landmarks


def _person_name(rng: random.Random, sex: str) -> str:
    given = GIVEN_MALE if sex == "M" else GIVEN_FEMALE
    return rng.choice(SURNAMES) + "".join(rng.choice(given) for _ in range(rng.choice((1, 2, 2))))


def _resident_id(area: str, born: date, sequence: int, sex: str) -> str:
    # the 17th digit is odd for men and even for women (GB 11643)
    seq = sequence % 500 * 2 + (1 if sex == "M" else 0)
    body = f"{area}{born:%Y%m%d}{seq:03d}"
    return body + check_char(body)


class _DemoArgon2(Argon2PasswordHasher):
    """argon2 at a low cost for demo accounts only: their passwords are published, so the cost
    protects nothing, and 200 full-cost hashes took minutes on two busy cores. Verified by the
    ordinary argon2 hasher (parameters are in the hash) and rehashed at full cost at the first
    sign-in (Django upgrades a hash whose parameters differ)."""

    time_cost = 1
    memory_cost = 4096  # KiB
    parallelism = 1


def _hash_each(raw: list[str]) -> list[str]:
    """One hash per account, each with its own salt (argon2-cffi hashes outside the GIL)."""
    hasher = _DemoArgon2()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(lambda pw: make_password(pw, hasher=hasher), raw))


SENIORITY = ("chief", "associate_chief", "attending", "resident", "assistant")


def _name_department_heads() -> None:
    """Each orthopedic department's head (科主任) is its most senior surgeon; a township centre's
    general department is headed by its most senior doctor: escalations reach a named person."""
    heads = []
    for department in Department.objects.filter(code__in=("ORTHO", "GENERAL")):
        role = Role.SURGEON if department.code == "ORTHO" else Role.TOWNSHIP_DOCTOR
        staff = Membership.objects.filter(
            institution_id=department.institution_id, role=role, active=True
        ).values_list("person_id", "person__title")
        ranked = sorted(
            staff,
            key=lambda row: (SENIORITY.index(row[1]) if row[1] in SENIORITY else 9, row[0]),
        )
        if ranked:
            department.head_id = ranked[0][0]
            heads.append(department)
    Department.objects.bulk_update(heads, ["head"])


@transaction.atomic
def _load(*, patients: int, rng: random.Random) -> DemoResult:
    institutions = build_chuxiong_network(actor=None)
    insts = sorted(institutions.values(), key=lambda i: i.code)
    area_by_county = {c.name: c.area_code for c in chuxiong.COUNTIES}
    area_by_county.setdefault("楚雄市", "532301")
    ortho = {d.institution_id: d for d in Department.objects.filter(code="ORTHO")}

    plan: list[tuple[Institution, str, int]] = []
    for inst in insts:
        for role, count in STAFFING[inst.level].items():
            plan.extend((inst, role, i) for i in range(count))
    numbers: dict[str, int] = {}
    usernames = []
    for _, role, _ in plan:
        numbers[role] = numbers.get(role, 0) + 1
        usernames.append(f"{USERNAME_PREFIX[role]}{numbers[role]:03d}")
    hashes = _hash_each([ROLE_PASSWORDS[role] for _, role, _ in plan])
    users = User.objects.bulk_create(
        User(username=username, password=hashed)
        for username, hashed in zip(usernames, hashes, strict=True)
    )
    people = Person.objects.bulk_create(
        Person(
            user=user, full_name=_person_name(rng, rng.choice("MF")), title=rng.choice(TITLES[role])
        )
        for user, (inst, role, _) in zip(users, plan, strict=True)
    )
    memberships = [
        Membership(
            person=person,
            institution=inst,
            role=role,
            department=ortho.get(inst.pk) if role == Role.SURGEON else None,
        )
        for person, (inst, role, _) in zip(people, plan, strict=True)
    ]
    # some center surgeons also hold sessions at county hospitals (several institutions)
    counties = [i for i in insts if i.level == Institution.Level.COUNTY]
    center_surgeons = [
        p
        for p, (inst, role, _) in zip(people, plan, strict=True)
        if inst.level == Institution.Level.CENTER and role == Role.SURGEON
    ]
    memberships += [
        Membership(person=p, institution=counties[k % len(counties)], role=Role.SURGEON)
        for k, p in enumerate(center_surgeons[:6])
    ]
    Membership.objects.bulk_create(memberships)
    _name_department_heads()
    surgeons_at: dict[int, list[int]] = {}
    for m in memberships:
        if m.role in (Role.SURGEON, Role.TOWNSHIP_DOCTOR):
            surgeons_at.setdefault(m.institution.pk, []).append(m.person.pk)

    # patients, registered at a township centre or a county hospital
    registering = [i for i in insts if i.level != Institution.Level.CENTER]
    center = institutions[chuxiong.CENTER_CODE]
    patient_rows: list[Patient] = []
    for n in range(patients):
        sex = rng.choice("MF")
        inst = rng.choice(registering)
        born = date(1935, 1, 1) + timedelta(days=rng.randrange(0, 365 * 80))
        name = _person_name(rng, sex)
        rid = _resident_id(area_by_county[inst.county], born, n, sex) if rng.random() < 0.95 else ""
        patient_rows.append(
            Patient(
                resident_id=rid,
                resident_id_digest=resident_id_digest(rid) if rid else "",
                resident_id_suffix=rid[-6:],
                name=name,
                name_pinyin=pinyin_full(name),
                name_pinyin_initials=pinyin_initials(name),
                name_sort_key=pinyin_sort_key(name),
                sex=sex,
                birth_date=born,
                registered_at=inst,
                address=f"云南省楚雄彝族自治州{inst.county}",
            )
        )
    saved = Patient.objects.bulk_create(patient_rows, batch_size=1000)

    care: set[tuple[int, int, str]] = set()
    encounters: list[Encounter] = []
    codes: list[tuple[int, tuple[str, str, str, tuple[str, str] | None], bool]] = []
    for patient in saved:
        home = patient.registered_at
        care.add((patient.pk, home.pk, CareRelationship.Kind.REGISTRATION))
        # the patient's path: home institution, maybe the county hospital, maybe the center
        path = [home]
        if (
            home.parent is not None
            and home.level == Institution.Level.TOWNSHIP
            and rng.random() < 0.5
        ):
            path.append(home.parent)
        if rng.random() < 0.2:
            path.append(center)
            care.add((patient.pk, center.pk, CareRelationship.Kind.REFERRAL))
        when = DEMO_NOW - timedelta(days=rng.randrange(30, 3 * 365))
        # a diagnosis that fits the patient's age and sex (no hip replacement at twelve)
        age = (when.date() - patient.birth_date).days // 365
        dx = rng.choice(diagnoses_fitting(age, patient.sex))
        complaint = rng.choice(COMPLAINTS_BY_DIAGNOSIS[dx[0]])
        # the operation is done once, where the patient ended up (the last hospital of the path)
        operated = max(
            (step for step, inst in enumerate(path) if inst.level != Institution.Level.TOWNSHIP),
            default=None,
        )
        for step, inst in enumerate(path):
            kind = (
                Encounter.Kind.EMERGENCY
                if step == 0 and rng.random() < 0.3
                else Encounter.Kind.INPATIENT
                if inst.level != Institution.Level.TOWNSHIP
                else Encounter.Kind.OUTPATIENT
            )
            staff = surgeons_at.get(inst.pk, [])
            encounters.append(
                Encounter(
                    patient=patient,
                    institution=inst,
                    department_id=ortho[inst.pk].pk if inst.pk in ortho else None,
                    kind=kind,
                    started_at=when + timedelta(days=step * rng.randrange(1, 10)),
                    attending_id=rng.choice(staff) if staff else None,
                    # later steps are transfers of the same complaint
                    chief_complaint=complaint if step == 0 else f"{complaint}（转入）",
                )
            )
            codes.append((len(encounters) - 1, dx, step == operated))
            care.add((patient.pk, inst.pk, CareRelationship.Kind.ENCOUNTER))
    saved_encounters = Encounter.objects.bulk_create(encounters, batch_size=1000)
    Diagnosis.objects.bulk_create(
        (
            Diagnosis(
                encounter=saved_encounters[i],
                icd10_code=dx[0],
                description=dx[1],
                ao_ota_code=dx[2],
                primary=True,
            )
            for i, dx, _operated in codes
        ),
        batch_size=2000,
    )
    Procedure.objects.bulk_create(
        (
            Procedure(
                encounter=saved_encounters[i],
                icd9cm3_code=dx[3][0],
                description=dx[3][1],
                performed_at=saved_encounters[i].started_at + timedelta(days=1),
            )
            for i, dx, operated in codes
            if operated
            and dx[3] is not None
            and saved_encounters[i].kind != Encounter.Kind.OUTPATIENT
        ),
        batch_size=2000,
    )
    CareRelationship.objects.bulk_create(
        (CareRelationship(patient_id=p, institution_id=i, kind=k) for p, i, k in sorted(care)),
        batch_size=2000,
    )
    RecordVersion.objects.bulk_create(
        [
            RecordVersion(
                model_label="records.patient",
                object_id=p.pk,
                version=1,
                snapshot={"name": p.name, "sex": p.sex, "birth_date": p.birth_date.isoformat()},
                reason="demo load",
            )
            for p in saved
        ]
        + [
            RecordVersion(
                model_label="records.encounter",
                object_id=e.pk,
                version=1,
                snapshot={"patient": e.patient_id, "institution": e.institution_id},
                reason="demo load",
            )
            for e in saved_encounters
        ],
        batch_size=2000,
    )
    # a few deliberate duplicates for the review queue: same person registered twice elsewhere
    twins = []
    for original in saved[:5]:
        twins.append(
            Patient(
                name=original.name,
                name_pinyin=original.name_pinyin,
                name_pinyin_initials=original.name_pinyin_initials,
                name_sort_key=original.name_sort_key,
                sex=original.sex,
                birth_date=original.birth_date,
                registered_at=center,
            )
        )
    twins = Patient.objects.bulk_create(twins)
    CareRelationship.objects.bulk_create(
        CareRelationship(patient=t, institution=center, kind=CareRelationship.Kind.REGISTRATION)
        for t in twins
    )
    DuplicateCandidate.objects.bulk_create(
        DuplicateCandidate(patient=t, other=o, reason=DuplicateCandidate.Reason.SAME_DEMOGRAPHICS)
        for t, o in zip(twins, saved[:5], strict=True)
    )
    audit.record(
        actor=None,
        action="demo.load",
        detail={
            "patients": len(saved) + len(twins),
            "encounters": len(saved_encounters),
            "staff": len(users),
        },
    )
    return DemoResult(
        created=True,
        institutions=len(insts),
        staff=len(users),
        patients=len(saved) + len(twins),
        encounters=len(saved_encounters),
    )
