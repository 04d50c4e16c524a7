"""The referral API: every action through HTTP; refusals are problem details and change nothing."""

import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.records import services as records
from clinical_shell.records.models import Patient
from clinical_shell.referrals.models import Referral, ReferralShare, State, TransferApproval

pytestmark = pytest.mark.django_db

API = "/api/v1/referrals"
HANDOVER = {
    "discharge_summary": "全髋关节置换术后第5天",
    "operation_note": "后外侧入路全髋关节置换",
    "implants": "生物型髋臼杯 52 mm",
    "rehab_plan": "6 周内部分负重",
    "medication_plan": "利伐沙班 10 mg qd",
    "follow_up": "术后 2 周拆线",
    "warning_signs": "小腿肿痛、呼吸困难",
}


def _post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json")


@pytest.fixture
def patient(shell_network: Network, personas: Personas) -> Patient:
    return records.register_patient(
        actor=personas.township_doctor,
        institution=shell_network.tuodian,
        name="杨秀英",
        sex="F",
        birth_date=date(1944, 6, 2),
    )


def _draft(client: Client, net: Network, patient: Patient, **extra: Any) -> Any:
    body = {
        "patient_id": patient.pk,
        "direction": "up",
        "from_institution_id": net.tuodian.pk,
        "to_institution_id": net.shuangbai.pk,
        "urgency": "urgent",
        "reason": "跌倒后右髋疼痛，X 线示股骨颈骨折",
        "criteria": ["up_hip_fracture_elderly"],
        **extra,
    }
    return _post(client, API, body)


def test_up_referral_through_the_api_onward_to_the_center_and_down_with_handover(
    shell_network: Network,
    personas: Personas,
    patient: Patient,
    signed_in_client: Callable[..., Client],
) -> None:
    net = shell_network
    township = signed_in_client(personas.township_doctor)
    county = signed_in_client(personas.county_surgeon)
    center = signed_in_client(personas.center_surgeon)
    note = records.add_document(
        actor=personas.township_doctor,
        patient=patient,
        institution=net.tuodian,
        title="首诊",
        kind="note",
        body="外旋短缩",
    )
    created = _draft(township, net, patient)
    assert created.status_code == 201, created.content
    rid = created.json()["id"]
    assert (
        _post(
            township, f"{API}/{rid}/shares", {"kind": "document", "object_id": note.pk}
        ).status_code
        == 201
    )
    assert _post(township, f"{API}/{rid}/send", {}).json()["state"] == "sent"
    incoming = county.get(API, {"box": "incoming"}).json()["items"]
    assert [r["id"] for r in incoming] == [rid]
    assert [s["object_id"] for s in county.get(f"{API}/{rid}/shares").json()] == [note.pk]

    answer = _post(
        county, f"{API}/{rid}/decline", {"reason": "无共管条件", "onward_to_id": net.center.pk}
    )
    assert answer.status_code == 200, answer.content
    onward = answer.json()["onward"]["id"]
    closed = county.get(f"{API}/{rid}/shares")
    assert closed.status_code == 403 and closed["Content-Type"] == "application/problem+json"
    for step in ("accept", "arrive", "complete"):
        moved = _post(center, f"{API}/{onward}/{step}", {})
        assert moved.status_code == 200, (step, moved.content)
    assert center.get(f"{API}/{onward}/shares").status_code == 403  # ended for the receiver
    # the referral gave the center no chart: it treats the patient by its own admission
    records.record_encounter(
        actor=personas.center_surgeon,
        patient=patient,
        institution=net.center,
        data=records.EncounterIn(
            kind="inpatient", started_at=timezone.now(), chief_complaint="右股骨颈骨折"
        ),
    )

    # down: without the handover it cannot be sent; with it, it can
    down = _post(
        center,
        API,
        {
            "patient_id": patient.pk,
            "direction": "down",
            "from_institution_id": net.center.pk,
            "to_institution_id": net.tuodian.pk,
            "reason": "术后康复回当地",
            "criteria": ["down_stable_post_op"],
        },
    )
    assert down.status_code == 201, down.content
    refused = _post(center, f"{API}/{down.json()['id']}/send", {})
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} == set(HANDOVER)
    assert Referral.objects.get(pk=down.json()["id"]).state == State.DRAFT
    did = down.json()["id"]
    Referral.objects.filter(pk=did).update(handover=HANDOVER)
    assert _post(center, f"{API}/{did}/send", {}).json()["state"] == "sent"


def test_refusals_are_problem_details_and_change_nothing(
    shell_network: Network,
    personas: Personas,
    patient: Patient,
    signed_in_client: Callable[..., Client],
) -> None:
    net = shell_network
    township = signed_in_client(personas.township_doctor)
    outsider = signed_in_client(personas.outsider)
    # a patient the outsider may not see
    foreign = _post(
        outsider,
        API,
        {
            "patient_id": patient.pk,
            "direction": "up",
            "from_institution_id": net.yongren.pk,
            "to_institution_id": net.center.pk,
            "reason": "x",
            "criteria": ["up_hip_fracture_elderly"],
        },
    )
    assert foreign.status_code == 403 and foreign.json()["code"] == "patient_forbidden"
    assert not Referral.objects.exists()

    rid = _draft(township, net, patient).json()["id"]
    other = records.register_patient(
        actor=personas.township_doctor,
        institution=net.tuodian,
        name="李四",
        sex="M",
        birth_date=date(1950, 1, 1),
    )
    doc = records.add_document(
        actor=personas.township_doctor,
        patient=other,
        institution=other.registered_at,
        title="别人的",
        kind="note",
        body="x",
    )
    wrong = _post(township, f"{API}/{rid}/shares", {"kind": "document", "object_id": doc.pk})
    assert wrong.status_code == 422 and wrong.json()["code"] == "share_not_this_patient"
    assert not ReferralShare.objects.exists()
    assert AuditEvent.objects.filter(action="referral.share", outcome="failure").exists()

    illegal = _post(township, f"{API}/{rid}/complete", {})
    assert illegal.status_code in (403, 409)  # the sender may not complete; nobody from draft
    county = signed_in_client(personas.county_surgeon)
    assert county.get(f"{API}/{rid}").status_code == 403  # a draft is the sender's alone
    _post(township, f"{API}/{rid}/send", {})
    early = _post(county, f"{API}/{rid}/arrive", {})
    assert early.status_code == 409 and early.json()["code"] == "illegal_transition"
    stale = _post(county, f"{API}/{rid}/accept", {"version": 1})
    assert stale.status_code == 409 and stale.json()["code"] == "referral_changed"
    assert outsider.get(f"{API}/{rid}").status_code == 403
    assert _post(outsider, f"{API}/{rid}/accept", {}).status_code == 403
    assert Referral.objects.get(pk=rid).state == State.SENT


def test_transfer_out_blocked_until_the_center_approves(
    shell_network: Network,
    personas: Personas,
    patient: Patient,
    signed_in_client: Callable[..., Client],
) -> None:
    net = shell_network
    township = signed_in_client(personas.township_doctor)
    center = signed_in_client(personas.center_surgeon)
    created = _draft(
        township,
        net,
        patient,
        direction="out",
        to_institution_id=None,
        outside_hospital="昆明医科大学第一附属医院",
    )
    assert created.status_code == 201, created.content
    rid = created.json()["id"]
    _post(township, f"{API}/{rid}/send", {})
    assert _post(township, f"{API}/{rid}/accept", {}).status_code == 200  # the outside answers
    blocked = _post(township, f"{API}/{rid}/arrive", {})
    assert blocked.status_code == 409 and blocked.json()["code"] == "transfer_not_approved"
    assert [r["id"] for r in center.get(API, {"box": "approvals"}).json()["items"]] == [rid]
    own = _post(township, f"{API}/{rid}/transfer-decision", {"approve": True})
    assert own.status_code == 403
    ok = _post(center, f"{API}/{rid}/transfer-decision", {"approve": True, "note": "同意"})
    assert ok.status_code == 200 and ok.json()["decision"] == "approved"
    assert TransferApproval.objects.get(referral_id=rid).decided_by_id == personas.center_surgeon.pk
    for step in ("arrive", "complete"):
        assert _post(township, f"{API}/{rid}/{step}", {}).status_code == 200
