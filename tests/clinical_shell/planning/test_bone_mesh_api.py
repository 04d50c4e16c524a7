"""`GET /api/v1/planning/plans/{id}/bone-mesh`: the plan's case bones as binary glTF, built once
per case content and kept on disk, revalidated by ETag; read through the case's access rule and
audited, refused to people without the patient, and a case whose files are not the registered
ones is a conflict that writes nothing."""

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from planning_cases import LumbarCase
from pytest_django.fixtures import Settings as SettingsWrapper
from shell_personas import Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging.models import SimulationCase
from clinical_shell.planning import bone_mesh
from clinical_shell.planning import services as planning
from clinical_shell.planning.models import Plan
from sim_core.case.glb import FACE_BUDGET, read_glb

API = "/api/v1/planning"


@pytest.fixture
def mesh_root(settings: SettingsWrapper, tmp_path: Path) -> Path:
    root = tmp_path / "planner-meshes"
    settings.OSTEON_PLANNER_MESH_ROOT = str(root)
    return root


@pytest.fixture
def plan(lumbar_case: SimulationCase, personas: Personas) -> Plan:
    return planning.create_plan(
        actor=personas.county_surgeon,
        patient=lumbar_case.patient,
        case=lumbar_case,
        title="L4 椎弓根螺钉",
    )


def _reads(patient_id: int, outcome: str = "success") -> int:
    return AuditEvent.objects.filter(
        action="patient.read", patient_id=patient_id, outcome=outcome
    ).count()


def test_the_surgeon_gets_the_bones_once_built_then_a_304_for_the_same_content(
    plan: Plan,
    mesh_root: Path,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    surgeon = signed_in_client(personas.county_surgeon)
    url = f"{API}/plans/{plan.pk}/bone-mesh"
    before = _reads(plan.patient_id)

    response = surgeon.get(url)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "model/gltf-binary"
    assert response["Cache-Control"] == "private, no-cache"
    etag = response["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    doc = read_glb(response.content)
    assert doc.gltf["scenes"][0]["extras"]["content_hash"] == plan.case.content_hash
    triangles = sum(
        doc.gltf["accessors"][m["primitives"][0]["indices"]]["count"] // 3
        for m in doc.gltf["meshes"]
    )
    assert 0 < triangles <= FACE_BUDGET
    # kept on disk under the content's key, nothing half-written beside it
    key = bone_mesh.mesh_key(plan.case)
    assert sorted(p.name for p in mesh_root.iterdir()) == [f"{key}.glb", f"{key}.glb.gz"]
    assert _reads(plan.patient_id) == before + 1

    # the second reader gets the file from disk: building again would fail here
    def no_rebuild(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("the cached mesh was built again")

    monkeypatch.setattr(bone_mesh, "bone_glb", no_rebuild)
    again = surgeon.get(url)
    assert again.status_code == 200 and again.content == response.content

    # the browser's copy is still good: 304, no body, and the read is checked and audited
    not_modified = surgeon.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified["ETag"] == etag
    assert _reads(plan.patient_id) == before + 3
    # another ETag (an older mesh format, another case): the whole file
    assert surgeon.get(url, headers={"If-None-Match": '"other"'}).status_code == 200

    # a browser that takes gzip gets the same bytes in about half, under its own ETag
    zipped = surgeon.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert zipped.status_code == 200 and zipped["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped["Vary"] and zipped["ETag"] != etag
    assert gzip.decompress(zipped.content) == response.content
    assert len(zipped.content) < 0.8 * len(response.content)
    assert (
        surgeon.get(
            url, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped["ETag"]}
        ).status_code
        == 304
    )
    refused_gzip = surgeon.get(url, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused_gzip and refused_gzip.content == response.content


def test_people_without_the_patient_get_no_bones_and_their_try_is_audited(
    plan: Plan,
    mesh_root: Path,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
) -> None:
    url = f"{API}/plans/{plan.pk}/bone-mesh"
    outsider = signed_in_client(personas.outsider)
    before = _reads(plan.patient_id, "failure")
    refused = outsider.get(url)
    assert refused.status_code == 403
    assert refused["Content-Type"].startswith("application/problem+json")
    assert refused.json()["code"] == "patient_forbidden"
    # an ETag does not open the door either
    etag = f'"{bone_mesh.mesh_key(plan.case)}"'
    assert outsider.get(url, headers={"If-None-Match": etag}).status_code == 403
    assert _reads(plan.patient_id, "failure") == before + 2
    assert AuditEvent.objects.filter(
        actor_user_id=personas.outsider.pk, outcome="failure", patient_id=plan.patient_id
    ).exists()
    assert not mesh_root.exists()

    assert Client().get(url).status_code == 401
    missing = signed_in_client(personas.county_surgeon).get(f"{API}/plans/999999/bone-mesh")
    assert missing.status_code == 404 and missing.json()["code"] == "plan_not_found"


def test_a_case_whose_files_are_not_the_registered_ones_is_a_conflict(
    plan: Plan,
    mesh_root: Path,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
    tmp_path: Path,
) -> None:
    surgeon = signed_in_client(personas.county_surgeon)
    url = f"{API}/plans/{plan.pk}/bone-mesh"
    case = plan.case
    # registered with another content than the bundle on disk holds
    SimulationCase.objects.filter(pk=case.pk).update(content_hash="sha256:" + "0" * 64)
    refused = surgeon.get(url)
    assert refused.status_code == 409 and refused.json()["code"] == "case_unavailable"
    # a bundle that is gone
    SimulationCase.objects.filter(pk=case.pk).update(
        content_hash=case.content_hash, path=str(tmp_path / "gone")
    )
    refused = surgeon.get(url)
    assert refused.status_code == 409 and refused.json()["code"] == "case_unavailable"
    # nothing written for either, not even a temporary file
    assert not mesh_root.exists() or list(mesh_root.iterdir()) == []


def test_the_plan_page_carries_the_3d_view(
    plan: Plan,
    lumbar_bundle: LumbarCase,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
) -> None:
    page = signed_in_client(personas.county_surgeon).get(f"/planning/{plan.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="planner-3d"' in html
    assert f'data-mesh-url="{API}/plans/{plan.pk}/bone-mesh"' in html
    assert f'data-plan-url="{API}/plans/{plan.pk}"' in html
    assert "planning/planner/planner" in html and 'id="planner-set-entry"' in html
    assert "正在载入三维骨模型" in html


def test_the_route_is_in_the_openapi_document(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    schema = signed_in_client(personas.county_surgeon).get("/api/v1/openapi.json").json()
    operation = schema["paths"][f"{API}/plans/{{plan_id}}/bone-mesh"]["get"]
    assert "model/gltf-binary" in operation["responses"]["200"]["content"]
