"""`GET /api/v1/planning/plans/{id}/slices`, `.../slices/{view}/{index}` and `.../zone-mesh`:
the planner's slice views (the case's CT grid, bone window, PNG) and protected zones (glTF),
read through the plan's access rule and audited on every request, a 304 included; people
without the patient are refused (audited); bad input is a problem document."""

import io
from collections.abc import Callable

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.test import Client
from PIL import Image
from planning_cases import LumbarCase
from shell_personas import Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging.models import SimulationCase
from clinical_shell.planning import services as planning
from clinical_shell.planning.models import Plan
from sim_core.case.bundle import TISSUE_NERVE, load_bundle
from sim_core.case.glb import read_glb

API = "/api/v1/planning"


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


def test_the_surgeon_gets_the_geometry_and_slices_of_the_case_grid(
    plan: Plan,
    lumbar_bundle: LumbarCase,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
) -> None:
    surgeon = signed_in_client(personas.county_surgeon)
    bundle = load_bundle(lumbar_bundle.path)
    before = _reads(plan.patient_id)

    geometry = surgeon.get(f"{API}/plans/{plan.pk}/slices")
    assert geometry.status_code == 200, geometry.content[:300]
    body = geometry.json()
    assert body["shape"] == list(bundle.hu.shape)
    assert body["spacing_mm"] == bundle.spacing_mm
    views = body["views"]
    # the phantom's case axes run S, P, L: axial looks along axis 0, R on the left, A on top
    assert views["axial"]["normal_axis"] == 0 and views["axial"]["count"] == bundle.hu.shape[0]
    assert views["axial"]["letters"] == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert views["sagittal"]["letters"] == {"left": "A", "right": "P", "top": "S", "bottom": "I"}
    assert views["coronal"]["letters"] == {"left": "R", "right": "L", "top": "S", "bottom": "I"}

    # a slice: a PNG of the view's size, the bone window of the grid's own slice
    axial = views["axial"]
    index = axial["count"] // 2
    url = f"{API}/plans/{plan.pk}/slices/axial/{index}"
    response = surgeon.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, no-cache"
    image = np.asarray(Image.open(io.BytesIO(response.content)))
    assert image.shape == (axial["height"], axial["width"]) and image.dtype == np.uint8
    hu = bundle.hu[index].astype(np.float64)
    expected = np.clip((hu - (400.0 - 1000.0)) * 255.0 / 2000.0, 0, 255).astype(np.uint8)
    assert np.array_equal(image, expected)
    # sagittal: superior up (the case's axis 0 flipped)
    sagittal = surgeon.get(
        f"{API}/plans/{plan.pk}/slices/sagittal/{views['sagittal']['count'] // 2}"
    )
    picture = np.asarray(Image.open(io.BytesIO(sagittal.content)))
    assert picture.shape == (views["sagittal"]["height"], views["sagittal"]["width"])

    # the browser's copy: 304, still checked and audited
    again = surgeon.get(url, headers={"If-None-Match": response["ETag"]})
    assert again.status_code == 304 and again.content == b""
    assert _reads(plan.patient_id) == before + 4


def test_the_zones_are_the_case_nerve_labels_as_a_mesh(
    plan: Plan,
    lumbar_bundle: LumbarCase,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
) -> None:
    surgeon = signed_in_client(personas.county_surgeon)
    before = _reads(plan.patient_id)
    response = surgeon.get(f"{API}/plans/{plan.pk}/zone-mesh")
    assert response.status_code == 200 and response["Content-Type"] == "model/gltf-binary"
    doc = read_glb(response.content)
    assert doc.gltf["scenes"][0]["extras"]["zones"] == ["nerve"]  # the phantom has no vessel
    positions = doc.accessor(doc.gltf["meshes"][0]["primitives"][0]["attributes"]["POSITION"])
    # the surface lies on the labelled voxels (case mm, within a voxel and a step)
    bundle = load_bundle(lumbar_bundle.path)
    nerve = np.argwhere(bundle.tissue == TISSUE_NERVE) * bundle.spacing_mm
    assert np.all(positions.min(axis=0) >= nerve.min(axis=0) - 1.0)
    assert np.all(positions.max(axis=0) <= nerve.max(axis=0) + 1.0)
    assert (
        surgeon.get(
            f"{API}/plans/{plan.pk}/zone-mesh", headers={"If-None-Match": response["ETag"]}
        ).status_code
        == 304
    )
    assert _reads(plan.patient_id) == before + 2


def test_bad_slices_are_problem_documents(
    plan: Plan, personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    surgeon = signed_in_client(personas.county_surgeon)
    count = surgeon.get(f"{API}/plans/{plan.pk}/slices").json()["views"]["coronal"]["count"]
    for index in (count, 100000):
        refused = surgeon.get(f"{API}/plans/{plan.pk}/slices/coronal/{index}")
        assert refused.status_code == 422, refused.content
        assert refused["Content-Type"].startswith("application/problem+json")
        assert refused.json()["code"] == "slice_out_of_range"
    # an ETag does not answer for a slice that does not exist
    assert (
        surgeon.get(
            f"{API}/plans/{plan.pk}/slices/coronal/{count}", headers={"If-None-Match": "*"}
        ).status_code
        == 422
    )
    assert surgeon.get(f"{API}/plans/{plan.pk}/slices/coronal/-1").status_code == 422
    unknown = surgeon.get(f"{API}/plans/{plan.pk}/slices/oblique/3")
    assert unknown.status_code == 422
    assert unknown["Content-Type"].startswith("application/problem+json")
    missing = surgeon.get(f"{API}/plans/999999/slices/axial/3")
    assert missing.status_code == 404 and missing.json()["code"] == "plan_not_found"


def test_people_without_the_patient_get_no_slices_and_their_tries_are_audited(
    plan: Plan, personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    # the outsider (another county's surgeon) asks for this patient's case through its plan
    outsider = signed_in_client(personas.outsider)
    before = _reads(plan.patient_id, "failure")
    for url in (
        f"{API}/plans/{plan.pk}/slices",
        f"{API}/plans/{plan.pk}/slices/axial/10",
        f"{API}/plans/{plan.pk}/zone-mesh",
    ):
        refused = outsider.get(url, headers={"If-None-Match": "*"})
        assert refused.status_code == 403, url
        assert refused.json()["code"] == "patient_forbidden"
        assert Client().get(url).status_code == 401
    assert _reads(plan.patient_id, "failure") == before + 3


def test_the_routes_are_in_the_openapi_document(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    paths = signed_in_client(personas.county_surgeon).get("/api/v1/openapi.json").json()["paths"]
    image = paths[f"{API}/plans/{{plan_id}}/slices/{{view}}/{{index}}"]["get"]
    assert "image/png" in image["responses"]["200"]["content"]
    assert f"{API}/plans/{{plan_id}}/slices" in paths
    assert f"{API}/plans/{{plan_id}}/zone-mesh" in paths


def test_the_zones_carry_the_tubes_the_surgeon_confirmed(
    plan: Plan,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
) -> None:
    from clinical_shell.imaging.annotation_services import save_case_annotations

    surgeon = signed_in_client(personas.county_surgeon)
    url = f"{API}/plans/{plan.pk}/zone-mesh"
    before = surgeon.get(url)
    # a vessel drawn on the case: a 3 mm tube along the first case axis
    points = [[20.0, 40.0, 40.0], [60.0, 40.0, 40.0]]
    save_case_annotations(
        actor=personas.county_surgeon,
        patient_id=plan.patient_id,
        case_id=plan.case_id,
        base_number=0,
        content={
            "levels": [],
            "bones": [],
            "landmarks": [],
            "zones": [
                {"name": "髂总动脉", "kind": "vessel", "radius_mm": 3.0, "points_mm": points}
            ],
        },
    )
    after = surgeon.get(url, headers={"If-None-Match": before["ETag"]})
    assert after.status_code == 200 and after["ETag"] != before["ETag"]
    doc = read_glb(after.content)
    extras = doc.gltf["scenes"][0]["extras"]
    assert extras["zones"] == ["nerve", "vessel"] and extras["annotations"]
    vessel = next(m for m in doc.gltf["meshes"] if m["name"] == "vessel")
    positions = doc.accessor(vessel["primitives"][0]["attributes"]["POSITION"])
    # the tube's surface: within its radius (and a voxel) of the drawn line
    assert positions[:, 0].min() >= 20.0 - 4.0 and positions[:, 0].max() <= 60.0 + 4.0
    off_axis = np.linalg.norm(positions[:, 1:] - np.array([40.0, 40.0]), axis=1)
    assert off_axis.max() <= 3.0 + 1.0
