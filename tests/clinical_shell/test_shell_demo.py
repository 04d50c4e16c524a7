"""The demo loader: the whole Chuxiong network, valid records, working sign-ins, idempotent."""

import itertools
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from clinical_shell.accounts.services import check_sign_in
from clinical_shell.audit.selectors import verify_chain
from clinical_shell.demo import load_demo
from clinical_shell.demo_data import COMPLAINTS_BY_DIAGNOSIS
from clinical_shell.imaging.models import CaseBuildJob, SimulationCase
from clinical_shell.network.models import Department, Institution, Membership, Person
from clinical_shell.planning.models import Plan
from clinical_shell.quality import periods
from clinical_shell.quality.selectors import indicator_results
from clinical_shell.records.identity import normalize_resident_id, pinyin_initials
from clinical_shell.records.models import (
    CareRelationship,
    Diagnosis,
    DuplicateCandidate,
    Encounter,
    Patient,
    Procedure,
)
from clinical_shell.stations.models import SessionResult


@pytest.mark.django_db
def test_demo_builds_the_network_with_valid_records_and_is_idempotent(
    settings: object, tmp_path: Path
) -> None:
    settings.OSTEON_DICOM_ROOT = tmp_path / "dicom"  # type: ignore[attr-defined]
    settings.OSTEON_CASE_ROOT = tmp_path / "cases"  # type: ignore[attr-defined]
    settings.OSTEON_DEMO = True  # type: ignore[attr-defined]
    result = load_demo(patients=300, seed=7, ct_cases=1)
    assert result.created and result.ct_cases == 1
    assert Institution.objects.filter(level="center").get().name == "楚雄彝族自治州人民医院"
    counties = set(Institution.objects.filter(level="county").values_list("county", flat=True))
    assert len(counties) == 10 and {"双柏县", "永仁县", "禄丰市"} <= counties
    assert Institution.objects.filter(level="township").count() == 20
    assert 180 <= Person.objects.count() <= 220
    assert Membership.objects.values("person").distinct().count() < Membership.objects.count()
    assert Patient.objects.count() == 305
    for patient in Patient.objects.exclude(resident_id="")[:200]:
        assert normalize_resident_id(patient.resident_id).startswith("5323")
        assert patient.name_pinyin_initials == pinyin_initials(patient.name)
        # found by the last digits of the ID, as clinicians search
        assert patient.resident_id_suffix == patient.resident_id[-6:]
    # every encounter's institution has a care relationship with its patient
    for e in Encounter.objects.all()[:200]:
        assert CareRelationship.objects.filter(patient=e.patient_id, institution=e.institution_id)
    # clinically coherent: the complaint fits the diagnosis, each patient operated on once
    for d in Diagnosis.objects.select_related("encounter")[:300]:
        told = d.encounter.chief_complaint.removesuffix("（转入）")
        assert told in COMPLAINTS_BY_DIAGNOSIS[d.icd10_code], (told, d.icd10_code)
    # never the same operation twice within a week at two hospitals (one hospital operates)
    done: dict[tuple[int, str], list[tuple[datetime, int]]] = defaultdict(list)
    for patient_id, code, at, where in Procedure.objects.values_list(
        "encounter__patient_id", "icd9cm3_code", "performed_at", "encounter__institution_id"
    ):
        done[(patient_id, code)].append((at, where))
    assert done
    for key, times in done.items():
        times.sort()
        for (t0, i0), (t1, i1) in itertools.pairwise(times):
            assert i0 == i1 or t1 - t0 >= timedelta(days=7), (key, t0, t1, times)
    assert DuplicateCandidate.objects.filter(status="open").count() == 5
    assert verify_chain().intact
    # a patient referred to the center has a CT phantom study and a case built from it
    case = SimulationCase.objects.get()
    assert CareRelationship.objects.filter(patient=case.patient_id, institution__level="center")
    assert case.series.modality == "CT" and case.series.instances.count() == 60
    assert CaseBuildJob.objects.get().status == "done"
    assert (Path(case.path) / "case.json").is_file()
    # the demo's lumbar case carries a draft plan of both L4 screws, by the case's surgeon
    plan = Plan.objects.get(case=case)
    assert plan.status == "draft" and plan.created_by == case.created_by
    assert sorted(plan.elements.values_list("label", flat=True)) == ["L4 右", "L4 左"]
    # built from its DICOM alone, the case has no nerve; the demo confirmed the phantom's canal
    # as a nerve tube, so the station can build the plan's rehearsal (it refuses without one)
    from clinical_shell.imaging.annotation_selectors import confirmed_annotations
    from sim_core.case.bundle import load_bundle
    from sim_core.rehearsal import rehearsal_model
    from sim_core.scenarios import ScenarioError

    number, annotations = confirmed_annotations(case.pk) or (0, None)
    assert number == 1 and annotations is not None
    assert [(t.name, t.kind) for t in annotations.zones] == [("椎管", "nerve")]
    left = plan.elements.get(label="L4 左")
    path = {
        "entry_mm": tuple(left.entry_mm),
        "target_mm": tuple(left.target_mm),
        "diameter_mm": 6.5,
    }
    bundle = load_bundle(case.path)
    with pytest.raises(ScenarioError, match="nerve"):
        rehearsal_model(bundle, "pedicle_pilot_hole", **path)
    rehearsal_model(bundle, "pedicle_pilot_hole", tubes=annotations.zones, **path)

    # every orthopedic department is headed by one of its surgeons (escalations reach them)
    for ortho in Department.objects.filter(code="ORTHO"):
        assert ortho.head is not None
        assert ortho.head.memberships.filter(institution=ortho.institution, role="surgeon")
    # the indicators fed by training and credentialing have values in the demo
    last = periods.add_months(periods.month_start(timezone.localdate()), -1)
    shown = {f.code: f for f in indicator_results(month=last, period_kind="rolling12")}
    coverage = shown["credentialing-coverage"]
    assert coverage.denominator > 50 and 0.9 < (coverage.value or 0) < 1.0
    if SessionResult.objects.filter(verification="verified").exists():
        assert shown["training-pass-rate"].denominator > 0

    again = load_demo(patients=300, seed=7, ct_cases=1)
    assert not again.created and Patient.objects.count() == 305
    assert again.ct_cases == 0 and SimulationCase.objects.count() == 1
    assert Plan.objects.count() == 1
    roles = {s.role for s in again.sign_ins}
    assert {"surgeon", "township_doctor", "quality_manager", "administrator"} <= roles
    for sign_in in again.sign_ins[:3]:
        assert check_sign_in(username=sign_in.username, password=sign_in.password).is_active
