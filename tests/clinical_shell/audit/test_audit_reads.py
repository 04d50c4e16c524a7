"""Every read that returns patient data leaves an audit event naming the patients returned, and
every refusal is on record: the API is walked from its OpenAPI description, the pages by URL."""

import re
from datetime import date
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from shell_personas import Network, Personas

from clinical_shell.api import api
from clinical_shell.audit import services as audit
from clinical_shell.audit.models import AuditEvent
from clinical_shell.errors import PermissionDeniedError
from clinical_shell.imaging.models import Study
from clinical_shell.records import services as records
from clinical_shell.records.models import DuplicateCandidate, Patient


def _events_after(last_id: int, user: User) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(id__gt=last_id, actor_user_id=user.pk))


def _named(events: list[AuditEvent]) -> set[int]:
    named: set[int] = set()
    for event in events:
        if event.patient_id is not None:
            named.add(event.patient_id)
        named.update(int(i) for i in event.detail.get("patient_ids", []))
    return named


def _last_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.fixture
def world(
    personas: Personas, shell_network: Network, patient_in_shuangbai: Patient
) -> dict[str, Any]:
    # a second 张三丰 with the same demographics: a duplicate pair in the review queue
    twin = records.register_patient(
        actor=personas.county_surgeon,
        institution=shell_network.shuangbai,
        name="张三丰",
        sex="M",
        birth_date=date(1958, 3, 14),
    )
    candidate = DuplicateCandidate.objects.get(patient=twin)
    linked = Study.objects.create(
        study_uid="1.2.3.4.1",
        patient=patient_in_shuangbai,
        linked_by=Study.LinkedBy.RESIDENT_ID,
        uploaded_at=shell_network.shuangbai,
        uploaded_by=personas.county_surgeon,
        dicom_patient_name="ZHANG^SANFENG",
    )
    waiting = Study.objects.create(
        study_uid="1.2.3.4.2",
        linked_by=Study.LinkedBy.NONE,
        unlinked_reason=Study.UnlinkedReason.NO_PATIENT_IN_CARE,
        uploaded_at=shell_network.shuangbai,
        uploaded_by=personas.county_surgeon,
        dicom_patient_name="LI^SI",
        dicom_patient_id="OUT-77",
    )
    return {
        "patient": patient_in_shuangbai,
        "twin": twin,
        "candidate": candidate,
        "study": linked,
        "waiting": waiting,
    }


def _patients_in(body: Any, world: dict[str, Any]) -> set[int]:
    """The patients whose data a JSON response shows: a patient object (its name with its id),
    or a row that names a patient by `patient_id` / `other_id`."""
    ours = {world["patient"].pk, world["twin"].pk}
    shown: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("name") == "张三丰" and node.get("id") in ours:
                shown.add(node["id"])
            for key in ("patient_id", "other_id"):
                if node.get(key) in ours:
                    shown.add(node[key])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body)
    return shown


def test_every_patient_returning_api_names_the_patients_in_its_audit_event(
    personas: Personas, world: dict[str, Any], signed_in_client: Any
) -> None:
    user = personas.county_surgeon
    client: Client = signed_in_client(user)
    values = {
        "patient_id": world["patient"].pk,
        "study_id": world["study"].pk,
        "candidate_id": world["candidate"].pk,
    }
    walked: list[str] = []
    for path, operations in api.get_openapi_schema()["paths"].items():
        get = operations.get("get")
        if get is None:
            continue
        names = {p["name"] for p in get.get("parameters", []) if p.get("required")}
        if not names <= values.keys():
            continue  # an object this test does not make (stations, jobs, ...)
        url = re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)
        query = {n: values[n] for n in names if f"{{{n}}}" not in path}
        if "/patients" in path and not names:
            query["q"] = "张"
        before = _last_id()
        response = client.get(url, query)
        if response.status_code != 200:
            continue
        shown = _patients_in(response.json(), world)
        if not shown:
            continue
        walked.append(path)
        named = _named(_events_after(before, user))
        assert shown <= named, f"{path}: shows patients {shown}, audit names {named}"
    # the walk reached the list and detail reads of patients and imaging
    for expected in (
        "/api/v1/patients",
        "/api/v1/patients/duplicates",
        "/api/v1/patients/{patient_id}",
        "/api/v1/patients/{patient_id}/encounters",
        "/api/v1/imaging/studies",
        "/api/v1/imaging/studies/{study_id}",
    ):
        assert expected in walked, (expected, walked)


def test_list_pages_name_the_patients_they_show(
    personas: Personas, world: dict[str, Any], signed_in_client: Any
) -> None:
    user = personas.county_surgeon
    client: Client = signed_in_client(user)
    both = {world["patient"].pk, world["twin"].pk}
    for url, params, expected in (
        ("/patients/", {"q": "张"}, both),
        ("/patients/duplicates/", {}, both),
        (f"/patients/{world['patient'].pk}/", {}, {world["patient"].pk}),
        (f"/imaging/patients/{world['patient'].pk}/", {}, {world["patient"].pk}),
    ):
        before = _last_id()
        response = client.get(url, params)
        assert response.status_code == 200, url
        assert expected <= _named(_events_after(before, user)), url
    # the imaging work list (studies not yet linked, with their DICOM names) names its studies
    before = _last_id()
    assert "LI^SI" in client.get("/imaging/").content.decode()
    (event,) = [e for e in _events_after(before, user) if e.action == "imaging.worklist"]
    assert world["waiting"].pk in event.detail["study_ids"]


def test_a_refusal_whose_own_audit_event_was_rolled_back_is_still_on_record(
    personas: Personas, rf: Any
) -> None:
    user = personas.outsider
    request = rf.get("/patients/999/")
    request.user = user
    before = _last_id()
    # a service that audits its refusal inside the transaction the refusal rolls back
    with pytest.raises(PermissionDeniedError), transaction.atomic():
        audit.record(actor=user, action="patient.read", success=False, patient_id=999)
        raise PermissionDeniedError("patient_access_denied", "no")
    assert not _events_after(before, user)
    audit.record_refusal_if_missing(request, PermissionDeniedError("patient_access_denied", "x"))
    (event,) = _events_after(before, user)
    assert (event.action, event.outcome) == ("request.refused", "failure")
    assert event.detail["code"] == "patient_access_denied"


def test_refusals_over_http_are_audited_once(
    personas: Personas, world: dict[str, Any], signed_in_client: Any
) -> None:
    user = personas.outsider
    client: Client = signed_in_client(user)
    for url in (f"/api/v1/patients/{world['patient'].pk}", f"/patients/{world['patient'].pk}/"):
        before = _last_id()
        assert client.get(url).status_code == 403
        events = _events_after(before, user)
        assert [e.outcome for e in events] == ["failure"], url  # the access layer's, no double
    # revoking someone else's token: refused with 404 and on record
    before = _last_id()
    response = client.delete("/api/v1/accounts/tokens/123456")
    assert response.status_code == 404
    assert any(e.outcome == "failure" for e in _events_after(before, user))


def test_a_wrong_old_password_at_password_change_is_on_record(personas: Personas) -> None:
    from clinical_shell.accounts import passwords
    from clinical_shell.errors import DomainError

    user = personas.county_surgeon
    before = _last_id()
    with pytest.raises(DomainError):
        passwords.change_password(
            user=user, old_password="not-the-password", new_password="Another-Long-Pass-2026"
        )
    (event,) = _events_after(before, user)
    assert (event.action, event.outcome) == ("auth.password_change", "failure")
