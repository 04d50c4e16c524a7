"""The credentialing API: apply, vote, decide, revoke, check; problem details on bad input."""

from collections.abc import Callable
from typing import Any

from credentialing_board import Board
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import Network, Personas
from training_scores import score_row

from clinical_shell.credentialing.models import Application, Privilege, Requirement

API = "/api/v1/credentialing"


def _post(client: Client, url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = client.post(url, body, content_type="application/json")
    return response.status_code, response.json()


def test_apply_vote_decide_revoke_through_the_api(
    board: Board, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    applicant = signed_in_client(board.applicant)
    body = {"requirement_id": board.requirement.pk, "institution_id": shell_network.center.pk}
    status, problem = _post(applicant, f"{API}/applications", body)
    assert status == 422 and problem["code"] == "not_eligible"
    assert problem["type"] == "https://osteon.invalid/problems/not_eligible"

    for _ in range(2):
        score_row(board.station, board.applicant, score=85.0)
    eligibility = applicant.get(
        f"{API}/requirements/{board.requirement.pk}/eligibility",
        {"institution_id": shell_network.center.pk},
    ).json()
    assert eligibility["eligible"] is True and eligibility["modules"][0]["passes_found"] == 2
    status, created = _post(applicant, f"{API}/applications", body)
    assert status == 201 and created["status"] == "under_review"
    app_id = created["id"]

    status, problem = _post(
        signed_in_client(board.supervisor), f"{API}/applications/{app_id}/votes", {"approve": True}
    )
    assert status == 403 and problem["code"] == "supervisor_cannot_vote"
    status, problem = _post(
        signed_in_client(board.members[0]), f"{API}/applications/{app_id}/votes", {"approve": "x"}
    )
    assert status == 422
    for member in board.members:
        status, _body = _post(
            signed_in_client(member), f"{API}/applications/{app_id}/votes", {"approve": True}
        )
        assert status == 201
    status, decided = _post(
        signed_in_client(board.chair), f"{API}/applications/{app_id}/decision", {}
    )
    assert status == 201
    assert decided["status"] == "granted"
    assert decided["decision"]["signature_valid"] is True
    assert decided["decision"]["signature_algorithm"] == "HMAC-SHA256"
    privilege_id = decided["privilege_id"]

    today = timezone.localdate().isoformat()
    query: dict[str, str | int] = {
        "surgeon": board.applicant.username,
        "institution_id": shell_network.center.pk,
        "on": today,
        "grade": 4,
    }
    chair = signed_in_client(board.chair)
    assert chair.get(f"{API}/check", query).json()["ok"] is True
    status, problem = _post(
        chair, f"{API}/privileges/{privilege_id}/status", {"action": "revoke", "reason": ""}
    )
    assert status == 422
    status, revoked = _post(
        chair, f"{API}/privileges/{privilege_id}/status", {"action": "revoke", "reason": "质控预警"}
    )
    assert status == 200 and revoked["status"] == "revoked"
    assert Privilege.objects.get(pk=privilege_id).status == Privilege.Status.REVOKED
    assert chair.get(f"{API}/check", query).json()["reason_code"] == "privilege_revoked"
    assert Application.objects.get(pk=app_id).status == Application.Status.GRANTED


def test_other_people_do_not_see_an_application(
    board: Board,
    shell_network: Network,
    signed_in_client: Callable[[User], Client],
    personas: Personas,
) -> None:
    for _ in range(2):
        score_row(board.station, board.applicant, score=85.0)
    applicant = signed_in_client(board.applicant)
    _status, created = _post(
        applicant,
        f"{API}/applications",
        {"requirement_id": board.requirement.pk, "institution_id": shell_network.center.pk},
    )
    outsider = signed_in_client(personas.outsider)
    assert outsider.get(f"{API}/applications/{created['id']}").status_code == 403
    assert outsider.get(f"{API}/applications").json()["items"] == []
    assert signed_in_client(board.members[0]).get(f"{API}/applications").json()["count"] == 1


def test_the_application_list_costs_the_same_queries_for_one_or_many(
    board: Board, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from clinical_shell.credentialing import services

    member = signed_in_client(board.members[0])

    def apply_and_vote(requirement: Requirement) -> None:
        application = services.submit_application(
            actor=board.applicant, requirement=requirement, institution=shell_network.center
        )
        services.cast_vote(actor=board.members[1], application=application, approve=True)

    for _ in range(2):
        score_row(board.station, board.applicant, score=85.0)
    apply_and_vote(board.requirement)
    member.get(f"{API}/applications")  # the session's first request writes its own rows
    with CaptureQueriesContext(connection) as one:
        assert member.get(f"{API}/applications").json()["count"] == 1
    for grade in (2, 3):
        apply_and_vote(services.save_requirement(actor=None, grade=grade))
    with CaptureQueriesContext(connection) as three:
        assert member.get(f"{API}/applications").json()["count"] == 3
    assert len(three) == len(one)
    assert len(one) <= 9


def test_administrators_edit_the_rules_through_the_api(
    board: Board, personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    body = {
        "technique": "allograft-msk",
        "min_years_practice": 8,
        "min_hospital_grade": 3,
        "modules": [
            {"module_code": board.module.code, "passes": 4, "min_score": 82.5, "within_days": 90}
        ],
    }
    admin = signed_in_client(personas.admin)
    response = admin.put(f"{API}/requirements", body, content_type="application/json")
    assert response.status_code == 200
    saved = response.json()
    assert saved["technique"] == "allograft-msk" and saved["modules"][0]["passes"] == 4
    rule = Requirement.objects.get(pk=saved["id"]).module_requirements.get()
    assert (rule.min_score, rule.within_days) == (82.5, 90)
    bad = admin.put(f"{API}/requirements", {**body, "grade": 9}, content_type="application/json")
    assert bad.status_code == 422 and bad["Content-Type"] == "application/problem+json"
    refused = signed_in_client(board.applicant).put(
        f"{API}/requirements", body, content_type="application/json"
    )
    assert refused.status_code == 403
