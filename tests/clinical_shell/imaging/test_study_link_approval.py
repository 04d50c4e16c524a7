"""Separation of duties for imaging identity: linking a waiting study to a patient needs a
second person. One proposes (patient + reason), the study still waits; the proposer cannot
approve; another surgeon at the institution approves (the study joins the record) or rejects
with a note (it keeps waiting). Each step audited."""

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from dicom_samples import ct_series
from django.contrib.auth.models import User
from django.test import Client
from shell_personas import Network, Personas, make_persona

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging.models import Study, StudyLinkRequest
from clinical_shell.network.models import Role
from clinical_shell.records.models import Patient


@pytest.fixture(autouse=True)
def dicom_root(settings: object, tmp_path: Path) -> Path:
    root = tmp_path / "dicom"
    settings.OSTEON_DICOM_ROOT = root  # type: ignore[attr-defined]
    return root


@pytest.fixture
def waiting_study(
    shell_network: Network, personas: Personas, signed_in_client: Callable[[User], Client]
) -> Study:
    handle = io.BytesIO(ct_series(1, patient_id="RIS-0042")[0])
    handle.name = "x.dcm"
    response = signed_in_client(personas.county_surgeon).post(
        "/imaging/upload/",
        {"institution": str(shell_network.shuangbai.pk), "files": [handle]},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200, response.content
    study = Study.objects.get()
    assert study.patient_id is None
    return study


@pytest.fixture
def second_surgeon(shell_network: Network) -> User:
    user: User = make_persona(
        "chen.county", "陈县医", "attending", (shell_network.shuangbai, Role.SURGEON)
    )
    return user


def test_a_study_link_waits_for_a_second_person_who_approves_it(
    personas: Personas,
    patient_in_shuangbai: Patient,
    waiting_study: Study,
    second_surgeon: User,
    signed_in_client: Callable[[User], Client],
) -> None:
    first = signed_in_client(personas.county_surgeon)
    proposed = first.post(
        f"/imaging/studies/{waiting_study.pk}/link/",
        {"patient": str(patient_in_shuangbai.pk), "reason": "核对姓名与出生日期"},
    )
    assert proposed.status_code == 302
    assert Study.objects.get().patient_id is None
    link_request = StudyLinkRequest.objects.get()
    # the proposer sees it waiting and cannot approve it
    queue = first.get("/imaging/").content.decode()
    assert 'data-role="awaiting-second-person"' in queue and "approve-link" not in queue
    decide = f"/imaging/link-requests/{link_request.pk}/decide/"
    assert first.post(decide, {"action": "approve"}).status_code == 403
    assert Study.objects.get().patient_id is None
    refusal = AuditEvent.objects.get(action="study.link_approve")
    assert refusal.outcome == AuditEvent.Outcome.FAILURE
    assert refusal.actor_user_id == personas.county_surgeon.pk
    # someone outside the institution cannot decide either
    assert (
        signed_in_client(personas.outsider).post(decide, {"action": "approve"}).status_code == 403
    )
    # a second surgeon approves: the study joins the record, audited with both people
    second = signed_in_client(second_surgeon)
    assert 'data-action="approve-link"' in second.get("/imaging/").content.decode()
    done = second.post(decide, {"action": "approve", "note": "影像号核对无误"})
    assert done.status_code == 302
    linked = Study.objects.get()
    assert (linked.patient_id, linked.linked_by) == (patient_in_shuangbai.pk, "reconciled")
    event = AuditEvent.objects.get(action="study.link")
    assert event.actor_user_id == second_surgeon.pk and event.reason == "核对姓名与出生日期"
    assert event.detail["requested_by"] == personas.county_surgeon.pk
    assert StudyLinkRequest.objects.get().status == StudyLinkRequest.Status.APPROVED


def test_a_rejected_study_link_keeps_the_study_waiting(
    personas: Personas,
    patient_in_shuangbai: Patient,
    waiting_study: Study,
    second_surgeon: User,
    signed_in_client: Callable[[User], Client],
) -> None:
    signed_in_client(personas.county_surgeon).post(
        f"/imaging/studies/{waiting_study.pk}/link/",
        {"patient": str(patient_in_shuangbai.pk), "reason": "核对姓名"},
    )
    decide = f"/imaging/link-requests/{StudyLinkRequest.objects.get().pk}/decide/"
    second = signed_in_client(second_surgeon)
    assert second.post(decide, {"action": "reject"}).status_code == 422  # a note is required
    assert second.post(decide, {"action": "reject", "note": "出生日期不符"}).status_code == 302
    assert Study.objects.get().patient_id is None
    assert StudyLinkRequest.objects.get().status == StudyLinkRequest.Status.REJECTED
    assert AuditEvent.objects.get(action="study.link_reject").actor_user_id == second_surgeon.pk
