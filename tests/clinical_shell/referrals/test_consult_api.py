"""The consultation API over HTTP: problem details listing every missing field, attachments of
another patient refused, the expert's signed opinion read by the requester, the expert's
reading ended by closing, an MDT decision signed per patient; and the pages in both languages."""

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from consult_fixtures import expert_slot, full_request, hip_patient, note_of, study_of
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import Network, Personas

from clinical_shell.referrals.consult_models import OpinionReport

pytestmark = pytest.mark.django_db
API = "/api/v1/consultations"


def _post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, json.dumps(body, default=str), content_type="application/json")


def test_request_answer_read_close_over_http(
    shell_network: Network, personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    net = shell_network
    patient = hip_patient(net, personas)
    other = hip_patient(net, personas, name="李四")
    study = study_of(patient, net, personas.township_doctor, "1.2.9.1")
    foreign = study_of(other, net, personas.township_doctor, "1.2.9.2")
    note = note_of(patient, personas)
    slot = expert_slot(net, personas)
    doctor = signed_in_client(personas.township_doctor)
    expert = signed_in_client(personas.center_surgeon)
    base = {"patient_id": patient.pk, "requesting_institution_id": net.tuodian.pk}

    empty = _post(doctor, API, {**base, "study_ids": [study.pk]})
    assert empty.status_code == 422
    assert empty["Content-Type"].startswith("application/problem+json")
    fields = {e["field"] for e in empty.json()["errors"]}
    assert fields >= {"question", "history", "findings", "diagnosis_treatment", "specialty"}
    assert {"consent_by", "consent_relationship", "consent_at", "consent_signature"} <= fields

    wrong = _post(doctor, API, {**base, **full_request(), "study_ids": [foreign.pk]})
    assert wrong.status_code == 422
    assert [e["field"] for e in wrong.json()["errors"]] == ["attachments"]

    made = _post(
        doctor,
        API,
        {
            **base,
            **full_request(slot_id=slot.pk),
            "study_ids": [study.pk],
            "document_ids": [note.pk],
        },
    )
    assert made.status_code == 201, made.content
    cid = made.json()["id"]
    assert made.json()["expert_id"] == personas.center_surgeon.pk

    seen = expert.get(f"{API}/{cid}/attachments")
    assert seen.status_code == 200
    assert {(a["kind"], a["id"]) for a in seen.json()} == {
        ("study", study.pk),
        ("document", note.pk),
    }
    assert signed_in_client(personas.outsider).get(f"{API}/{cid}").status_code == 403
    # only the expert answers
    assert (
        _post(doctor, f"{API}/{cid}/answer", {"opinion": "x", "recommendations": "y"}).status_code
        == 403
    )

    answered = _post(
        expert,
        f"{API}/{cid}/answer",
        {
            "opinion": "建议人工股骨头置换",
            "recommendations": "上转州中心",
            "recommend_up_referral": True,
        },
    )
    assert answered.status_code == 201 and answered.json()["verified"] is True
    opinion = doctor.get(f"{API}/{cid}/opinion").json()
    assert opinion["verified"] and opinion["recommend_up_referral"]
    OpinionReport.objects.filter(consultation_id=cid).update(opinion="保守治疗")
    assert doctor.get(f"{API}/{cid}/opinion").json()["verified"] is False

    assert _post(doctor, f"{API}/{cid}/close", {}).json()["state"] == "closed"
    assert expert.get(f"{API}/{cid}/attachments").status_code == 403
    assert doctor.get(f"{API}/{cid}/attachments").status_code == 200

    # pages: the detail in both languages says who decides; the report prints
    for lang, text in (("zh-hans", "诊断与治疗由邀请方决定"), ("en", "inviting side")):
        expert.cookies["django_language"] = lang
        page = expert.get(f"/referrals/consult/{cid}/", HTTP_ACCEPT_LANGUAGE=lang)
        assert page.status_code == 200
        assert text in page.content.decode()
    printed = doctor.get(f"/referrals/consult/{cid}/print/")
    assert printed.status_code == 200 and "consult_print.css" in printed.content.decode()


def test_mdt_over_http(
    shell_network: Network, personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    net = shell_network
    patient = hip_patient(net, personas)
    study = study_of(patient, net, personas.township_doctor, "1.2.9.3")
    chair = signed_in_client(personas.township_doctor)
    made = _post(
        chair,
        f"{API}/mdt",
        {
            "institution_id": net.tuodian.pk,
            "title": "髋部骨折 MDT",
            "scheduled_at": (timezone.now() + timedelta(hours=1)).isoformat(),
            "specialties": ["orthopedics", "geriatrics"],
            "participant_ids": [personas.center_surgeon.pk],
        },
    )
    assert made.status_code == 201, made.content
    mid = made.json()["id"]
    case = _post(
        chair,
        f"{API}/mdt/{mid}/cases",
        {"patient_id": patient.pk, "summary": "股骨颈骨折", "study_ids": [study.pk]},
    )
    assert case.status_code == 201, case.content
    participant = signed_in_client(personas.center_surgeon)
    assert (
        _post(
            participant, f"{API}/mdt/cases/{case.json()['id']}/decision", {"decision": "手术"}
        ).status_code
        == 403
    )
    decided = _post(chair, f"{API}/mdt/cases/{case.json()['id']}/decision", {"decision": "手术"})
    assert decided.status_code == 200 and decided.json()["verified"] is True
    assert signed_in_client(personas.outsider).get(f"{API}/mdt/{mid}").status_code == 403
    page = participant.get(f"/referrals/consult/mdt/{mid}/")
    assert page.status_code == 200 and 'id="no-video"' in page.content.decode()
    assert "<video" not in page.content.decode()


def test_mdt_through_the_pages(
    shell_network: Network, personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    net = shell_network
    patient = hip_patient(net, personas)
    study = study_of(patient, net, personas.township_doctor, "1.2.9.4")
    chair = signed_in_client(personas.township_doctor)
    made = chair.post(
        "/referrals/consult/",
        {
            "form": "mdt",
            "title": "髋部骨折讨论",
            "institution": net.tuodian.pk,
            "scheduled_at": (timezone.localtime() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            "specialties": ["orthopedics", "rehabilitation"],
            "participants": personas.center_surgeon.username,
        },
    )
    assert made.status_code == 302 and "/mdt/" in made["Location"]
    url = made["Location"]
    foreign = chair.post(
        url, {"action": "add_case", "patient": patient.pk, "summary": "x", "studies": "999999"}
    )
    assert foreign.status_code == 200 and "只能附上该患者本人的资料" in foreign.content.decode()
    chair.post(
        url,
        {
            "action": "add_case",
            "patient": patient.pk,
            "summary": "股骨颈骨折",
            "studies": str(study.pk),
        },
    )
    page = signed_in_client(personas.center_surgeon).get(url).content.decode()
    assert f"/studies/{study.pk}/" in page and 'name="decision"' not in page
    case_id = page.split('id="case-')[1].split('"')[0]
    chair.post(url, {"action": "decide", "case": case_id, "decision": "手术"})
    assert "签名有效" in chair.get(url).content.decode()
