"""A simulation case for the planning tests (fixtures re-exported by conftest.py): the
lumbar CT phantom built by the real case builder (tests/sim_core/synthetic_cases.py, once per
test session), registered as a case of `patient_in_shuangbai` whose CT the 双柏 county hospital
uploaded."""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from shell_personas import Network, Personas

from clinical_shell.imaging.models import Series, SimulationCase, Study
from clinical_shell.records.models import Patient
from sim_core.case.bundle import load_bundle

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sim_core"))
from synthetic_cases import phantom_case


@dataclass(frozen=True)
class LumbarCase:
    path: Path
    content_hash: str
    spacing_mm: float
    # case-frame points [mm] of the phantom's landmarks (L4_pedicle_entry_left, ...)
    marks: dict[str, list[float]]


@pytest.fixture(scope="session")
def lumbar_bundle(tmp_path_factory: pytest.TempPathFactory) -> LumbarCase:
    path = phantom_case("lumbar", tmp_path_factory.mktemp("planning-case"))
    bundle = load_bundle(path)
    marks = {
        m["name"]: [float(x) for x in bundle.case_from_patient_mm(m["lps_mm"])]
        for m in bundle.meta["landmarks"]
    }
    return LumbarCase(path, bundle.content_hash, bundle.spacing_mm, marks)


def register_case(
    lumbar_bundle: LumbarCase, patient: Patient, network: Network, personas: Personas, n: int = 1
) -> SimulationCase:
    study = Study.objects.create(
        study_uid=f"1.2.826.0.77.{n}",
        patient=patient,
        linked_by=Study.LinkedBy.UPLOADER,
        uploaded_at=network.shuangbai,
        uploaded_by=personas.county_surgeon,
        description="腰椎 CT",
    )
    series = Series.objects.create(
        study=study, series_uid=f"1.2.826.0.78.{n}", modality="CT", number=1
    )
    return SimulationCase.objects.create(
        patient=patient,
        series=series,
        path=str(lumbar_bundle.path),
        content_hash=lumbar_bundle.content_hash,
        spacing_mm=lumbar_bundle.spacing_mm,
        created_by=personas.county_surgeon,
    )


@pytest.fixture(scope="session")
def hip_bundle(tmp_path_factory: pytest.TempPathFactory) -> LumbarCase:
    """The hip phantom's case (femoral landmarks: lateral_cortex_entry, femoral_head_apex) in
    the demo's field of view on 1 mm voxels: the small phantom's field leaves the lateral
    cortex, where a guide wire is planned to enter, outside the volume."""
    from sim_core.case.build import build_case
    from sim_core.ct.anatomy import anatomy
    from sim_core.ct.phantom import make_phantom, write_phantom

    root = tmp_path_factory.mktemp("planning-hip")
    pixel_mm = anatomy("hip").pixel_mm * 4
    write_phantom(
        make_phantom("hip", seed=1, slices=80, matrix=128, pixel_mm=pixel_mm), root / "ct"
    )
    build_case(root / "ct", root / "case", spacing_mm=1.0)
    bundle = load_bundle(root / "case")
    marks = {
        m["name"]: [float(x) for x in bundle.case_from_patient_mm(m["lps_mm"])]
        for m in bundle.meta["landmarks"]
    }
    return LumbarCase(root / "case", bundle.content_hash, bundle.spacing_mm, marks)


@pytest.fixture
def lumbar_case(
    lumbar_bundle: LumbarCase,
    patient_in_shuangbai: Patient,
    shell_network: Network,
    personas: Personas,
) -> SimulationCase:
    return register_case(lumbar_bundle, patient_in_shuangbai, shell_network, personas)


def medial_shift(marks: dict[str, list[float]], mm: float) -> list[float]:
    """A shift of `mm` across the L4 left pedicle's axis, towards the canal."""
    entry = np.asarray(marks["L4_pedicle_entry_left"])
    axis = np.asarray(marks["L4_pedicle_target_left"]) - entry
    towards = np.asarray(marks["L4_canal_centre"]) - entry
    across = towards - axis * np.dot(towards, axis) / np.dot(axis, axis)
    return [float(x) for x in mm * across / np.linalg.norm(across)]


@pytest.fixture(scope="session")
def bare_lumbar_bundle(tmp_path_factory: pytest.TempPathFactory) -> LumbarCase:
    """The lumbar phantom built after its truth sidecar was removed, as any real CT is built:
    no landmarks, no nerve or vessel in the case. ``marks`` holds the phantom's truth (case
    frame), for the test to plan and draw with as a surgeon would."""
    import json

    from sim_core.case.build import build_case
    from sim_core.ct.phantom import TRUTH_JSON, TRUTH_NPZ, make_phantom, write_phantom

    root = tmp_path_factory.mktemp("planning-bare")
    series = root / "series"
    write_phantom(make_phantom("lumbar", seed=1, slices=80, matrix=128), series)
    truth = json.loads((series / TRUTH_JSON).read_text(encoding="utf-8"))
    (series / TRUTH_JSON).unlink()
    (series / TRUTH_NPZ).unlink()
    build_case(series, root / "case")
    bundle = load_bundle(root / "case")
    assert not bundle.meta.get("landmarks")
    marks = {
        m["name"]: [float(x) for x in bundle.case_from_patient_mm(m["lps_mm"])]
        for m in truth["landmarks"]
    }
    return LumbarCase(root / "case", bundle.content_hash, bundle.spacing_mm, marks)
