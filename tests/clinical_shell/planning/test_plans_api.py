"""`/api/v1/planning`: a surgeon plans screws on a patient's CT case, checks each one while
placing it, and approves the plan; stale edits, bad geometry and the wrong people are refused
with problem details and leave nothing behind."""

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from planning_cases import LumbarCase, medial_shift, register_case
from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging.models import SimulationCase
from clinical_shell.planning.models import Plan, PlanElement
from clinical_shell.records import services as records

API = "/api/v1/planning"
SCREW = "pedicle_screw_6.5x45"


def _send(client: Client, method: str, url: str, body: Any = None) -> Any:
    send = getattr(client, method)
    if body is None:
        return send(url)
    # allow_nan: NaN and Infinity are sent as the bare words a careless client would send
    return send(url, json.dumps(body, allow_nan=True), content_type="application/json")


def _screw(lumbar: LumbarCase, shift: list[float] | None = None, **kw: Any) -> dict[str, Any]:
    shift = shift or [0.0, 0.0, 0.0]
    entry = lumbar.marks["L4_pedicle_entry_left"]
    target = lumbar.marks["L4_pedicle_target_left"]
    return {
        "kind": "pedicle_screw",
        "label": "L4 左",
        "entry_mm": [a + b for a, b in zip(entry, shift, strict=True)],
        "target_mm": [a + b for a, b in zip(target, shift, strict=True)],
        "implant_id": SCREW,
        **kw,
    }


@pytest.fixture
def surgeon(personas: Personas, signed_in_client: Callable[[User], Client]) -> Client:
    return signed_in_client(personas.county_surgeon)


def _plan(client: Client, case: SimulationCase) -> dict[str, Any]:
    response = _send(
        client,
        "post",
        f"{API}/plans",
        {"patient_id": case.patient_id, "case_id": case.pk, "title": "L4 椎弓根螺钉"},
    )
    assert response.status_code == 201, response.content
    return dict(response.json())


def test_a_surgeon_plans_a_screw_and_its_checks_are_stored(
    surgeon: Client, lumbar_case: SimulationCase, lumbar_bundle: LumbarCase
) -> None:
    plan = _plan(surgeon, lumbar_case)
    assert plan["status"] == "draft" and plan["version"] == 1 and plan["elements"] == []

    added = _send(
        surgeon,
        "post",
        f"{API}/plans/{plan['id']}/elements",
        {"version": 1, "element": _screw(lumbar_bundle)},
    )
    assert added.status_code == 201, added.content
    body = added.json()
    assert body["version"] == 2
    (element,) = body["elements"]
    assert element["checks"]["gr_grade"] == "A"
    assert element["checks"]["breach_mm"] == 0.0
    assert element["checks"]["implant_id"] == SCREW
    assert element["checks"]["flags"] == []
    row = PlanElement.objects.get()
    assert row.checks == element["checks"] and row.label == "L4 左"

    # the same screw moved into the canal: a breach the planner sees, graded as the simulator
    moved = _screw(lumbar_bundle, medial_shift(lumbar_bundle.marks, 5.0))
    changed = _send(
        surgeon,
        "put",
        f"{API}/plans/{plan['id']}/elements/{element['id']}",
        {"version": 2, "element": moved},
    )
    assert changed.status_code == 200, changed.content
    checks = changed.json()["elements"][0]["checks"]
    assert checks["gr_grade"] in ("C", "D", "E")
    assert checks["zones"]["nerve"]["clearance_mm"] <= 0
    assert "protected_zone_contact" in checks["flags"]
    assert changed.json()["version"] == 3

    got = surgeon.get(f"{API}/plans/{plan['id']}").json()
    assert got["elements"][0]["checks"] == checks
    actions = list(
        AuditEvent.objects.filter(action__startswith="plan.").values_list("action", flat=True)
    )
    assert actions == ["plan.create", "plan.element.add", "plan.element.update"]
    # every read went through the patient's door
    assert AuditEvent.objects.filter(
        action="patient.read", patient_id=lumbar_case.patient_id, outcome="success"
    ).exists()

    deleted = surgeon.delete(f"{API}/plans/{plan['id']}/elements/{element['id']}?version=3")
    assert deleted.status_code == 200, deleted.content
    assert deleted.json()["elements"] == [] and deleted.json()["version"] == 4
    assert not PlanElement.objects.exists()


def test_checking_an_element_being_placed_writes_nothing(
    surgeon: Client, lumbar_case: SimulationCase, lumbar_bundle: LumbarCase
) -> None:
    plan = _plan(surgeon, lumbar_case)
    checked = _send(
        surgeon,
        "post",
        f"{API}/plans/{plan['id']}/check",
        {"element": _screw(lumbar_bundle, implant_id="pedicle_screw_6.5x55")},
    )
    assert checked.status_code == 200, checked.content
    assert checked.json()["span_length_mm"] == 55.0
    assert not PlanElement.objects.exists()
    assert Plan.objects.get().version == 1


def test_a_stale_version_is_a_conflict_and_changes_nothing(
    surgeon: Client, lumbar_case: SimulationCase, lumbar_bundle: LumbarCase
) -> None:
    plan = _plan(surgeon, lumbar_case)
    url = f"{API}/plans/{plan['id']}/elements"
    first = _send(surgeon, "post", url, {"version": 1, "element": _screw(lumbar_bundle)})
    assert first.status_code == 201
    # a second editor still at version 1
    stale = _send(surgeon, "post", url, {"version": 1, "element": _screw(lumbar_bundle)})
    assert stale.status_code == 409
    assert stale["Content-Type"] == "application/problem+json"
    assert stale.json()["code"] == "plan_version_conflict"
    assert "版本" in stale.json()["detail"]
    assert PlanElement.objects.count() == 1 and Plan.objects.get().version == 2

    english = Client(headers={"accept-language": "en"})
    english.force_login(
        User.objects.get(pk=lumbar_case.created_by_id),
        backend="clinical_shell.accounts.backends.LockoutModelBackend",
    )
    stale_en = _send(english, "post", url, {"version": 1, "element": _screw(lumbar_bundle)})
    assert stale_en.status_code == 409
    assert "version" in stale_en.json()["detail"]


def test_approving_supersedes_the_earlier_plan_and_makes_both_read_only(
    surgeon: Client, lumbar_case: SimulationCase, lumbar_bundle: LumbarCase, personas: Personas
) -> None:
    first = _plan(surgeon, lumbar_case)
    url = f"{API}/plans/{first['id']}"
    element = _send(
        surgeon, "post", f"{url}/elements", {"version": 1, "element": _screw(lumbar_bundle)}
    ).json()["elements"][0]
    approved = _send(surgeon, "post", f"{url}/approve", {"version": 2})
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "approved"
    assert approved.json()["approved_by"] == personas.county_surgeon.get_username()

    refused = _send(
        surgeon,
        "put",
        f"{url}/elements/{element['id']}",
        {"version": 3, "element": _screw(lumbar_bundle, label="L4 右")},
    )
    assert refused.status_code == 409 and refused.json()["code"] == "plan_not_draft"
    assert PlanElement.objects.get().label == "L4 左"

    second = _plan(surgeon, lumbar_case)
    url2 = f"{API}/plans/{second['id']}"
    _send(surgeon, "post", f"{url2}/elements", {"version": 1, "element": _screw(lumbar_bundle)})
    assert _send(surgeon, "post", f"{url2}/approve", {"version": 2}).status_code == 200
    statuses = dict(Plan.objects.values_list("pk", "status"))
    assert statuses == {first["id"]: "superseded", second["id"]: "approved"}
    again = _send(surgeon, "post", f"{url}/approve", {"version": 4})
    assert again.status_code == 409 and again.json()["code"] == "plan_not_draft"
    assert AuditEvent.objects.filter(action="plan.approve").count() == 2


def test_an_empty_plan_cannot_be_approved(surgeon: Client, lumbar_case: SimulationCase) -> None:
    plan = _plan(surgeon, lumbar_case)
    refused = _send(surgeon, "post", f"{API}/plans/{plan['id']}/approve", {"version": 1})
    assert refused.status_code == 409 and refused.json()["code"] == "plan_empty"
    assert Plan.objects.get().status == "draft"


def _bad(lumbar: LumbarCase) -> list[tuple[dict[str, Any], int, str]]:
    nan = float("nan")
    return [
        (_screw(lumbar, [500.0, 0.0, 0.0]), 422, "point_outside_volume"),
        (_screw(lumbar, [nan, 0.0, 0.0]), 422, "non_finite_point"),
        (_screw(lumbar, [0.0, float("inf"), 0.0]), 422, "non_finite_point"),
        (
            _screw(lumbar, target_mm=lumbar.marks["L4_pedicle_entry_left"]),
            422,
            "zero_length_path",
        ),
        (_screw(lumbar, implant_id="pedicle_screw_9x90"), 422, "unknown_implant"),
        (_screw(lumbar, implant_id=""), 422, "implant_required"),
        (_screw(lumbar, implant_id="k_wire_2.0"), 422, "implant_kind_mismatch"),
        (_screw(lumbar, kind="osteotomy_plane", implant_id=""), 422, "plane_normal_required"),
        (_screw(lumbar, kind="burr_region", implant_id="", radius_mm=-1), 422, "radius_required"),
        (_screw(lumbar, entry_mm=[1.0, 2.0]), 422, "validation_failed"),
    ]


def test_bad_geometry_is_refused_and_nothing_is_written(
    surgeon: Client, lumbar_case: SimulationCase, lumbar_bundle: LumbarCase
) -> None:
    plan = _plan(surgeon, lumbar_case)
    for element, status, code in _bad(lumbar_bundle):
        for method, url, body in (
            ("post", f"{API}/plans/{plan['id']}/elements", {"version": 1, "element": element}),
            ("post", f"{API}/plans/{plan['id']}/check", {"element": element}),
        ):
            response = _send(surgeon, method, url, body)
            assert response.status_code == status, (code, response.content)
            assert response.json()["code"] == code
            assert response["Content-Type"] == "application/problem+json"
    assert not PlanElement.objects.exists()
    assert Plan.objects.get().version == 1
    assert not AuditEvent.objects.filter(action__startswith="plan.element").exists()


def test_other_element_kinds_are_planned_with_their_own_sizes(
    surgeon: Client, lumbar_case: SimulationCase, lumbar_bundle: LumbarCase
) -> None:
    plan = _plan(surgeon, lumbar_case)
    url = f"{API}/plans/{plan['id']}/elements"
    kinds = [
        _screw(lumbar_bundle, kind="k_wire", implant_id="k_wire_2.0"),
        _screw(lumbar_bundle, kind="guide_wire", implant_id="guide_wire_3.2"),
        _screw(lumbar_bundle, kind="drill_hole", implant_id="drill_bit_3.2"),
        _screw(lumbar_bundle, kind="drill_hole", implant_id=""),
        _screw(lumbar_bundle, kind="osteotomy_plane", implant_id="", plane_normal=[0, 0, 1]),
        _screw(lumbar_bundle, kind="burr_region", implant_id="", radius_mm=2.0),
    ]
    for version, element in enumerate(kinds, start=1):
        response = _send(surgeon, "post", url, {"version": version, "element": element})
        assert response.status_code == 201, response.content
    radii = [e.checks["radius_mm"] for e in PlanElement.objects.order_by("id")]
    assert radii == [1.0, 1.6, 1.6, 0.0, 0.0, 2.0]
    assert all(e.checks["gr_grade"] is None for e in PlanElement.objects.all())


def test_a_plan_needs_a_case_of_its_own_patient(
    surgeon: Client,
    lumbar_case: SimulationCase,
    lumbar_bundle: LumbarCase,
    shell_network: Network,
    personas: Personas,
) -> None:
    other = records.register_patient(
        actor=personas.county_surgeon,
        institution=shell_network.shuangbai,
        name="李四",
        sex="F",
        birth_date=date(1970, 5, 1),
        resident_id="",
    )
    others_case = register_case(lumbar_bundle, other, shell_network, personas, n=2)
    refused = _send(
        surgeon,
        "post",
        f"{API}/plans",
        {"patient_id": lumbar_case.patient_id, "case_id": others_case.pk, "title": "错配"},
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "case_of_another_patient"
    missing = _send(
        surgeon,
        "post",
        f"{API}/plans",
        {"patient_id": lumbar_case.patient_id, "case_id": 999999, "title": "无病例"},
    )
    assert missing.status_code == 404 and missing.json()["code"] == "case_not_found"
    assert not Plan.objects.exists()


def test_people_without_the_patient_can_neither_read_nor_plan(
    surgeon: Client,
    lumbar_case: SimulationCase,
    lumbar_bundle: LumbarCase,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
) -> None:
    plan = _plan(surgeon, lumbar_case)
    _send(
        surgeon,
        "post",
        f"{API}/plans/{plan['id']}/elements",
        {"version": 1, "element": _screw(lumbar_bundle)},
    )
    outsider = signed_in_client(personas.outsider)
    attempts = [
        ("get", f"{API}/plans?patient_id={lumbar_case.patient_id}", None),
        ("get", f"{API}/plans/{plan['id']}", None),
        (
            "post",
            f"{API}/plans",
            {"patient_id": lumbar_case.patient_id, "case_id": lumbar_case.pk, "title": "x"},
        ),
        ("post", f"{API}/plans/{plan['id']}/check", {"element": _screw(lumbar_bundle)}),
        (
            "post",
            f"{API}/plans/{plan['id']}/elements",
            {"version": 2, "element": _screw(lumbar_bundle)},
        ),
        ("post", f"{API}/plans/{plan['id']}/approve", {"version": 2}),
    ]
    for method, url, body in attempts:
        response = _send(outsider, method, url, body)
        assert response.status_code == 403, (url, response.content)
        assert response.json()["code"] == "patient_forbidden"
    assert Plan.objects.count() == 1 and PlanElement.objects.count() == 1
    assert Plan.objects.get().version == 2
    refusals = AuditEvent.objects.filter(
        actor_user_id=personas.outsider.pk, outcome="failure", patient_id=lumbar_case.patient_id
    )
    assert refusals.count() == len(attempts)
    anonymous = Client().get(f"{API}/plans/{plan['id']}")
    assert anonymous.status_code == 401


def test_the_plan_list_pins_its_query_count(surgeon: Client, lumbar_case: SimulationCase) -> None:
    for _ in range(3):
        _plan(surgeon, lumbar_case)
    url = f"{API}/plans?patient_id={lumbar_case.patient_id}"
    with CaptureQueriesContext(connection) as queries:
        listed = surgeon.get(url)
    assert listed.status_code == 200 and listed.json()["count"] == 3
    assert len(queries) <= 12, [q["sql"] for q in queries]
    unknown = surgeon.get(f"{API}/plans/999999")
    assert unknown.status_code == 404 and unknown.json()["code"] == "plan_not_found"


def test_the_implant_catalog_is_listed(surgeon: Client) -> None:
    implants = surgeon.get(f"{API}/implants").json()
    assert {"id": SCREW, "kind": "pedicle_screw"}.items() <= implants[
        [i["id"] for i in implants].index(SCREW)
    ].items()
    assert {i["kind"] for i in implants} == {"pedicle_screw", "k_wire", "guide_wire", "drill_bit"}


def test_a_case_the_user_may_not_read_cannot_be_planned_on(
    surgeon: Client,
    lumbar_case: SimulationCase,
    lumbar_bundle: LumbarCase,
    personas: Personas,
    signed_in_client: Callable[[User], Client],
) -> None:
    # the township doctor treats the patient, but the CT was uploaded at the county hospital
    # and not shared with the township centre
    township = signed_in_client(personas.township_doctor)
    body = {"patient_id": lumbar_case.patient_id, "case_id": lumbar_case.pk, "title": "x"}
    refused = _send(township, "post", f"{API}/plans", body)
    assert refused.status_code == 403 and refused.json()["code"] == "study_not_shared"
    assert not Plan.objects.exists()

    # the radiologist reads the plan but may not change the record
    plan = _plan(surgeon, lumbar_case)
    radiologist = signed_in_client(personas.radiologist)
    assert radiologist.get(f"{API}/plans/{plan['id']}").status_code == 200
    element = {"version": 1, "element": _screw(lumbar_bundle)}
    write = _send(radiologist, "post", f"{API}/plans/{plan['id']}/elements", element)
    assert write.status_code == 403 and write.json()["code"] == "patient_forbidden"
    assert not PlanElement.objects.exists()
