"""Confirming a real-CT case's parts: the proposal, versions of the annotations, conflicts,
refusals, audit, and the plan checks measuring the confirmed canal tube."""

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging.annotation_models import CaseAnnotationVersion
from clinical_shell.imaging.models import Series, SimulationCase, Study
from clinical_shell.records.models import Patient
from sim_core.case.bundle import CaseBundle

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "sim_core" / "case"))
from test_propose import build_without_sidecar

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def real_ct_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[CaseBundle, dict[str, Any]]:
    return build_without_sidecar(tmp_path_factory.mktemp("annot-case"))


@pytest.fixture
def case(
    real_ct_case: tuple[CaseBundle, dict[str, Any]],
    patient_in_shuangbai: Patient,
    shell_network: Network,
    personas: Personas,
) -> SimulationCase:
    bundle, _ = real_ct_case
    study = Study.objects.create(
        study_uid="1.2.826.0.91.1",
        patient=patient_in_shuangbai,
        linked_by=Study.LinkedBy.UPLOADER,
        uploaded_at=shell_network.shuangbai,
        uploaded_by=personas.county_surgeon,
        description="腰椎 CT",
    )
    series = Series.objects.create(study=study, series_uid="1.2.826.0.92.1", modality="CT")
    return SimulationCase.objects.create(
        patient=patient_in_shuangbai,
        series=series,
        path=str(bundle.path),
        content_hash=bundle.content_hash,
        spacing_mm=bundle.spacing_mm,
        bones=bundle.meta["bones"],
        created_by=personas.county_surgeon,
    )


@pytest.fixture
def surgeon(personas: Personas, signed_in_client: Callable[[User], Client]) -> Client:
    return signed_in_client(personas.county_surgeon)


def _url(case: SimulationCase, tail: str = "") -> str:
    return f"/api/v1/imaging/cases/{case.pk}/annotations{tail}"


def _post(client: Client, case: SimulationCase, body: dict[str, Any]) -> Any:
    # allow_nan: NaN is sent as the bare word a careless client would send
    return client.post(
        _url(case), json.dumps(body, allow_nan=True), content_type="application/json"
    )


def _content(proposal: dict[str, Any], radius_mm: float | None = None) -> dict[str, Any]:
    canal = proposal["canal"]
    return {
        "levels": [
            {"name": name, "centre_mm": lv["centre_mm"], "bone_ids": lv["bone_ids"]}
            for name, lv in zip(("L3", "L4", "L5"), proposal["levels"], strict=True)
        ],
        "bones": [{"id": 1, "name": "L3"}, {"id": 2, "name": "L4"}, {"id": 3, "name": "L5"}],
        "landmarks": [{"name": "L4 左椎弓根入点", "point_mm": [58.0, 60.0, 30.0]}],
        "zones": [
            {
                "name": "椎管",
                "kind": "nerve",
                "radius_mm": radius_mm or canal["radius_mm"],
                "points_mm": canal["points_mm"],
            }
        ],
    }


def _proposal(client: Client, case: SimulationCase) -> dict[str, Any]:
    response = client.get(_url(case, "/proposal"))
    assert response.status_code == 200, response.content
    return dict(response.json())


def test_the_proposal_is_read_through_the_patients_door_and_audited(
    surgeon: Client, case: SimulationCase
) -> None:
    before = AuditEvent.objects.filter(patient_id=case.patient_id).count()
    proposal = _proposal(surgeon, case)
    assert [lv["name"] for lv in proposal["levels"]] == ["V1", "V2", "V3"]
    assert proposal["canal"]["confidence"] < 1.0 and proposal["canal"]["reason"]
    assert len(proposal["components"]) == 3
    assert AuditEvent.objects.filter(patient_id=case.patient_id).count() > before
    empty = surgeon.get(_url(case)).json()
    assert (empty["version"], empty["content"], empty["versions"]) == (0, None, [])


def test_each_save_is_a_new_version_and_a_stale_one_is_a_conflict(
    surgeon: Client, case: SimulationCase, personas: Personas
) -> None:
    proposal = _proposal(surgeon, case)
    body = {"patient_id": case.patient_id, "base_version": 0, **_content(proposal)}
    first = _post(surgeon, case, body | {"note": "确认"})
    assert first.status_code == 201, first.content
    assert first.json()["version"] == 1
    assert first.json()["content"]["levels"][1]["name"] == "L4"
    # a second browser that also started from "nothing saved" is refused, nothing changes
    stale = _post(surgeon, case, body | {"zones": []})
    assert stale.status_code == 409
    assert stale.json()["code"] == "annotation_version_conflict"
    assert CaseAnnotationVersion.objects.filter(case=case).count() == 1
    second = _post(surgeon, case, body | {"base_version": 1, "zones": []})
    assert second.status_code == 201 and second.json()["version"] == 2
    # versions are kept: the first still holds its canal
    kept = CaseAnnotationVersion.objects.get(case=case, number=1)
    assert kept.content["zones"][0]["name"] == "椎管"
    assert [v["number"] for v in surgeon.get(_url(case)).json()["versions"]] == [2, 1]
    events = AuditEvent.objects.filter(action="case_annotation.save", patient_id=case.patient_id)
    assert events.count() == 2
    assert {e.actor_user_id for e in events} == {personas.county_surgeon.pk}


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        (
            lambda c: c["landmarks"][0].update(point_mm=[1e4, 0, 0]),
            "point_outside_volume",
            "landmarks[0].point_mm",
        ),
        (
            lambda c: c["landmarks"][0].update(point_mm=[float("nan"), 0, 0]),
            "non_finite_point",
            "landmarks[0].point_mm",
        ),
        (lambda c: c["zones"][0].update(radius_mm=-2.0), "invalid_radius", "zones[0].radius_mm"),
        (lambda c: c["levels"][1].update(name="L3"), "duplicate_level", "levels[1].name"),
    ],
)
def test_bad_input_is_problem_details_and_changes_nothing(
    surgeon: Client,
    case: SimulationCase,
    change: Callable[[dict[str, Any]], None],
    code: str,
    field: str,
) -> None:
    content = _content(_proposal(surgeon, case))
    change(content)
    response = _post(surgeon, case, {"patient_id": case.patient_id, "base_version": 0, **content})
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert (problem["code"], problem["errors"][0]["field"]) == (code, field)
    assert not CaseAnnotationVersion.objects.filter(case=case).exists()


def test_another_patients_case_and_outsiders_are_refused(
    surgeon: Client,
    case: SimulationCase,
    personas: Personas,
    shell_network: Network,
    signed_in_client: Callable[[User], Client],
) -> None:
    from datetime import date

    from clinical_shell.records import services as records

    other = records.register_patient(
        actor=personas.county_surgeon,
        institution=shell_network.shuangbai,
        name="李四",
        sex="F",
        birth_date=date(1970, 1, 1),
    )
    content = _content(_proposal(surgeon, case))
    wrong = _post(surgeon, case, {"patient_id": other.pk, "base_version": 0, **content})
    assert wrong.status_code == 400 and wrong.json()["code"] == "case_of_another_patient"
    outsider = signed_in_client(personas.outsider)
    assert outsider.get(_url(case, "/proposal")).status_code == 403
    refused = _post(outsider, case, {"patient_id": case.patient_id, "base_version": 0, **content})
    assert refused.status_code == 403
    assert AuditEvent.objects.filter(
        actor_user_id=personas.outsider.pk, patient_id=case.patient_id, outcome="failure"
    ).exists()
    # the radiologist reads the record but does not change it
    radiologist = signed_in_client(personas.radiologist)
    assert radiologist.get(_url(case)).status_code == 200
    assert (
        _post(radiologist, case, {"patient_id": case.patient_id, "base_version": 0, **content})
    ).status_code == 403
    assert not CaseAnnotationVersion.objects.filter(case=case).exists()


def test_the_plan_checks_measure_the_confirmed_canal(
    surgeon: Client, case: SimulationCase, real_ct_case: tuple[CaseBundle, dict[str, Any]]
) -> None:
    bundle, truth = real_ct_case
    marks = {
        m["name"]: [float(x) for x in bundle.case_from_patient_mm(m["lps_mm"])]
        for m in truth["landmarks"]
    }
    plan = surgeon.post(
        "/api/v1/planning/plans",
        {"patient_id": case.patient_id, "case_id": case.pk, "title": "L4"},
        content_type="application/json",
    ).json()
    element = {
        "kind": "pedicle_screw",
        "label": "L4 左",
        "entry_mm": marks["L4_pedicle_entry_left"],
        "target_mm": marks["L4_pedicle_target_left"],
        "implant_id": "pedicle_screw_6.5x45",
    }

    def check() -> dict[str, Any]:
        response = surgeon.post(
            f"/api/v1/planning/plans/{plan['id']}/check",
            {"element": element},
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
        return dict(response.json()["zones"]["nerve"])

    # no sidecar, nothing confirmed: no nerve anywhere
    assert check()["clearance_mm"] is None
    content = _content(_proposal(surgeon, case))
    saved = _post(surgeon, case, {"patient_id": case.patient_id, "base_version": 0, **content})
    assert saved.status_code == 201
    nerve = check()
    # a grade A trajectory down the pedicle passes lateral to the bony canal: a few mm clear
    assert nerve["clearance_mm"] is not None and 0.0 < nerve["clearance_mm"] < 10.0, nerve
    # a screw aimed into the canal touches it
    element["target_mm"] = marks["L4_canal_centre"]
    assert check()["clearance_mm"] <= 0.0
