"""What the planning pages' browser tests start from: a surgeon of the prefecture center with a
patient whose CT became a simulation case (the lumbar phantom, built by the real case builder),
in committed rows the shell server sees."""

import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from django.contrib.auth.models import User

from clinical_shell.imaging.models import Series, SimulationCase, Study
from clinical_shell.network import services as network
from clinical_shell.network.models import Institution, Role
from clinical_shell.records import services as records
from sim_core.case.bundle import load_bundle

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim_core"))
from synthetic_cases import phantom_case

PASSWORD = "Osteon-e2e-2026!"


@dataclass(frozen=True)
class LumbarPatient:
    center: Institution
    surgeon: User
    case: SimulationCase
    path: Path  # the case bundle
    marks: dict[str, list[float]]  # the phantom's landmarks in case millimetres


def surgeon_with_lumbar_case(root: Path, *, username: str, uid_root: str) -> LumbarPatient:
    path = phantom_case("lumbar", root)
    bundle = load_bundle(path)
    marks = {
        m["name"]: [float(x) for x in bundle.case_from_patient_mm(m["lps_mm"])]
        for m in bundle.meta["landmarks"]
    }
    center = network.create_institution(
        actor=None, code="CX-CENTER", name="楚雄彝族自治州人民医院", level="center", county="楚雄市"
    )
    person = network.create_person(
        actor=None, username=username, password=PASSWORD, full_name="王县医", title="attending"
    )
    network.add_membership(actor=None, person=person, institution=center, role=Role.SURGEON)
    surgeon = person.user
    patient = records.register_patient(
        actor=surgeon, institution=center, name="张三丰", sex="M", birth_date=date(1958, 3, 14)
    )
    study = Study.objects.create(
        study_uid=f"{uid_root}.1",
        patient=patient,
        linked_by=Study.LinkedBy.UPLOADER,
        uploaded_at=center,
        uploaded_by=surgeon,
        description="腰椎 CT",
    )
    series = Series.objects.create(study=study, series_uid=f"{uid_root}.2", modality="CT", number=1)
    case = SimulationCase.objects.create(
        patient=patient,
        series=series,
        path=str(path),
        content_hash=bundle.content_hash,
        spacing_mm=bundle.spacing_mm,
        created_by=surgeon,
    )
    return LumbarPatient(center=center, surgeon=surgeon, case=case, path=path, marks=marks)
