"""The demo region's records are clinically coherent: each diagnosis fits the patient it is
given (no hip replacement for a twelve-year-old, no postmenopausal osteoporosis in a man), the
complaint fits the diagnosis, and no patient has the same operation at two hospitals on
consecutive days. Checked over the generated data, not the word lists alone."""

import itertools
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from clinical_shell.demo import load_demo
from clinical_shell.demo_data import (
    COMPLAINTS_BY_DIAGNOSIS,
    DEMO_YOUNGEST,
    DIAGNOSIS_FITS,
    ORTHO_DIAGNOSES,
    diagnoses_fitting,
)
from clinical_shell.records.models import Diagnosis, Procedure


def test_every_patient_of_any_age_and_sex_has_a_fitting_diagnosis() -> None:
    assert set(DIAGNOSIS_FITS) == {dx[0] for dx in ORTHO_DIAGNOSES}
    for age in range(DEMO_YOUNGEST, 111):
        for sex in "MF":
            assert diagnoses_fitting(age, sex), (age, sex)
    # the rules themselves: the elderly's fractures and arthritis, a woman's osteoporosis
    codes_at_12 = {dx[0] for dx in diagnoses_fitting(12, "M")}
    assert not codes_at_12 & {"S72.0", "S72.1", "M16.1", "M17.1", "M80.0"}
    assert "M80.0" not in {dx[0] for dx in diagnoses_fitting(70, "M")}
    assert "M80.0" in {dx[0] for dx in diagnoses_fitting(70, "F")}
    assert "S83.5" not in {dx[0] for dx in diagnoses_fitting(80, "F")}


@pytest.mark.django_db
def test_the_generated_records_fit_their_patients(settings: object, tmp_path: Path) -> None:
    settings.OSTEON_DICOM_ROOT = tmp_path / "dicom"  # type: ignore[attr-defined]
    settings.OSTEON_CASE_ROOT = tmp_path / "cases"  # type: ignore[attr-defined]
    settings.OSTEON_DEMO = True  # type: ignore[attr-defined]
    load_demo(patients=400, seed=20260, ct_cases=0)
    checked = 0
    for d in Diagnosis.objects.select_related("encounter__patient"):
        told = d.encounter.chief_complaint.removesuffix("（转入）")
        if told not in COMPLAINTS_BY_DIAGNOSIS.get(d.icd10_code, ()):
            # the quality dashboards' own cohort (clinical_shell/quality/demo.py), not this list
            continue
        patient = d.encounter.patient
        age = (d.encounter.started_at.date() - patient.birth_date).days // 365
        youngest, oldest, sexes = DIAGNOSIS_FITS[d.icd10_code]
        assert youngest <= age <= oldest and patient.sex in sexes, (
            d.icd10_code,
            d.description,
            age,
            patient.sex,
        )
        checked += 1
    assert checked > 400  # every region patient has at least one encounter
    # never the same operation on consecutive days (or within a week) at two hospitals
    done: dict[tuple[int, str], list[tuple[datetime, int]]] = defaultdict(list)
    for patient_id, code, at, where in Procedure.objects.values_list(
        "encounter__patient_id", "icd9cm3_code", "performed_at", "encounter__institution_id"
    ):
        done[(patient_id, code)].append((at, where))
    assert done
    for key, times in done.items():
        times.sort()
        for (t0, i0), (t1, i1) in itertools.pairwise(times):
            assert i0 == i1 or t1 - t0 >= timedelta(days=7), (key, t0, t1)
