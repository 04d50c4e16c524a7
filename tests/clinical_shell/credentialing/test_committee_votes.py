"""Committee rules: who votes, one vote each, quorum, majority, the chair's signed decision, and
the privilege it grants (then suspended, reinstated, revoked)."""

import json
from datetime import timedelta
from typing import Any

import pytest
from credentialing_board import Board
from django.contrib.auth.models import User
from django.utils import timezone
from shell_personas import Network, Personas
from training_scores import score_row

from clinical_shell.audit.models import AuditEvent
from clinical_shell.credentialing import services
from clinical_shell.credentialing.models import Application, Decision, Privilege, Vote
from clinical_shell.errors import DomainError
from clinical_shell.notifications.models import Notification


@pytest.fixture
def application(board: Board, shell_network: Network) -> Application:
    for _ in range(2):
        score_row(board.station, board.applicant, score=92.0)
    return services.submit_application(
        actor=board.applicant, requirement=board.requirement, institution=shell_network.center
    )


def _vote(member: User, application: Application, approve: bool = True) -> None:
    services.cast_vote(actor=member, application=application, approve=approve, comment="ok")


@pytest.mark.parametrize("who", ["applicant", "supervisor", "outsider"])
def test_the_applicant_their_supervisor_and_outsiders_cannot_vote(
    board: Board, application: Application, personas: Personas, who: str
) -> None:
    voter = {
        "applicant": board.applicant,
        "supervisor": board.supervisor,
        "outsider": personas.outsider,
    }[who]
    with pytest.raises(DomainError) as refused:
        _vote(voter, application)
    assert (
        refused.value.code
        == {
            "applicant": "not_member",  # the applicant is no committee member either
            "supervisor": "supervisor_cannot_vote",
            "outsider": "not_member",
        }[who]
    )
    assert not Vote.objects.exists()
    assert AuditEvent.objects.filter(action="credentialing.vote", outcome="failure").exists()
    assert not services.may_vote(voter, application)


def test_an_applicant_on_the_committee_still_cannot_vote_on_their_own_application(
    board: Board, shell_network: Network
) -> None:
    from clinical_shell.network import services as network
    from clinical_shell.network.models import Role

    member = board.members[0]
    network.add_membership(
        actor=None, person=member.person, institution=shell_network.center, role=Role.SURGEON
    )
    services.set_practice_record(
        actor=None, user=member, practising_since=timezone.localdate() - timedelta(days=4000)
    )
    for _ in range(2):
        score_row(board.station, member, score=90.0)
    own = services.submit_application(
        actor=member, requirement=board.requirement, institution=shell_network.center
    )
    with pytest.raises(DomainError) as refused:
        _vote(member, own)
    assert refused.value.code == "applicant_cannot_vote"


def test_one_vote_per_member(board: Board, application: Application) -> None:
    _vote(board.members[0], application)
    with pytest.raises(DomainError) as again:
        _vote(board.members[0], application, approve=False)
    assert again.value.code == "already_voted"
    assert Vote.objects.get().approve is True


def test_no_decision_before_the_quorum(board: Board, application: Application) -> None:
    _vote(board.members[0], application)
    _vote(board.members[1], application)
    with pytest.raises(DomainError) as early:
        services.decide_application(actor=board.chair, application=application)
    assert early.value.code == "no_quorum"
    assert not Decision.objects.exists()


def test_only_the_chair_decides(board: Board, application: Application) -> None:
    for member in board.members:
        _vote(member, application)
    with pytest.raises(DomainError) as refused:
        services.decide_application(actor=board.members[0], application=application)
    assert refused.value.code == "not_chair"


@pytest.mark.parametrize(
    ("approvals", "refusals", "majority_percent", "granted"),
    [(2, 1, 50, True), (1, 2, 50, False), (2, 2, 50, False), (3, 1, 75, False), (4, 0, 75, True)],
)
def test_the_majority_rule_decides_the_outcome(
    board: Board,
    application: Application,
    approvals: int,
    refusals: int,
    majority_percent: int,
    granted: bool,
) -> None:
    from shell_personas import make_persona

    from clinical_shell.network.models import Role

    board.committee.majority_percent = majority_percent
    board.committee.save(update_fields=["majority_percent"])
    voters = list(board.members)
    while len(voters) < approvals + refusals:
        voters.append(
            make_persona(
                f"extra{len(voters)}",
                "额外委员",
                "chief",
                (board.committee.institution, Role.COMMITTEE_MEMBER),
            )
        )
    for i, member in enumerate(voters[: approvals + refusals]):
        _vote(member, application, approve=i < approvals)
    decision = services.decide_application(actor=board.chair, application=application, note="n")
    application.refresh_from_db()
    assert decision.granted is granted
    assert (decision.approvals, decision.refusals) == (approvals, refusals)
    assert application.status == (
        Application.Status.GRANTED if granted else Application.Status.REFUSED
    )
    assert Privilege.objects.filter(application=application).exists() is granted


def test_a_granted_decision_is_signed_notified_and_makes_a_valid_privilege(
    board: Board, application: Application, shell_network: Network
) -> None:
    for member in board.members:
        _vote(member, application)
    decision = services.decide_application(actor=board.chair, application=application)
    assert services.verify_decision(decision)
    payload = json.loads(decision.payload)
    assert payload["granted"] is True and payload["chair"] == board.chair.pk
    assert len(payload["votes"]) == 3
    # an edited record no longer carries the chair's signature
    decision.payload = decision.payload.replace('"granted":true', '"granted":false')
    assert not services.verify_decision(decision)

    privilege = Privilege.objects.get(application=application)
    assert privilege.grade == 4 and privilege.institution == shell_network.center
    assert privilege.valid_until == privilege.valid_from + timedelta(days=730)
    today = timezone.localdate()
    check = services.check_privilege(
        board.applicant, technique=None, grade=4, institution=shell_network.center, on=today
    )
    assert check.ok and check.privilege_id == privilege.pk
    assert Notification.objects.filter(
        recipient=board.applicant, kind="credentialing.decision"
    ).exists()
    assert AuditEvent.objects.filter(action="credentialing.decision").exists()
    with pytest.raises(DomainError) as late:
        _vote(board.supervisor, application)
    assert late.value.code == "supervisor_cannot_vote"


def test_suspend_reinstate_and_revoke_with_a_reason(
    board: Board, application: Application, shell_network: Network, personas: Personas
) -> None:
    for member in board.members:
        _vote(member, application)
    services.decide_application(actor=board.chair, application=application)
    privilege = Privilege.objects.get(application=application)
    today = timezone.localdate()

    def ok() -> str:
        return services.check_privilege(
            board.applicant, technique=None, grade=3, institution=shell_network.center, on=today
        ).reason_code

    with pytest.raises(DomainError) as no_reason:
        services.suspend_privilege(actor=board.chair, privilege=privilege, reason=" ")
    assert no_reason.value.code == "reason_required"
    with pytest.raises(DomainError) as not_manager:
        services.suspend_privilege(actor=board.members[0], privilege=privilege, reason="x")
    assert not_manager.value.code == "not_manager"
    services.suspend_privilege(actor=board.chair, privilege=privilege, reason="严重并发症待复核")
    assert ok() == "privilege_suspended"
    services.reinstate_privilege(actor=board.chair, privilege=privilege, reason="复核通过")
    assert ok() == "ok"
    services.revoke_privilege(actor=personas.admin, privilege=privilege, reason="质控预警")
    assert ok() == "privilege_revoked"
    with pytest.raises(DomainError):
        services.reinstate_privilege(actor=board.chair, privilege=privilege, reason="no")
    actions = list(
        AuditEvent.objects.filter(
            target_id=str(privilege.pk), action__startswith="credentialing.privilege"
        )
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "credentialing.privilege_grant",
        "credentialing.privilege_suspend",
        "credentialing.privilege_reinstate",
        "credentialing.privilege_revoke",
    ]
    assert (
        Notification.objects.filter(
            recipient=board.applicant, kind="credentialing.privilege"
        ).count()
        == 3
    )


def test_a_decision_still_verifies_after_the_secret_key_is_rotated(
    board: Board, application: Application, settings: Any
) -> None:
    for member in board.members:
        _vote(member, application)
    decision = services.decide_application(actor=board.chair, application=application)
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "rotated-" + old
    assert not services.verify_decision(decision)  # without the old key it cannot be checked
    settings.SECRET_KEY_FALLBACKS = [old]
    assert services.verify_decision(decision)
