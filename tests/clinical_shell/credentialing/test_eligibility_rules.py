"""Every automatic rule of a privilege's requirement, and the application it gates."""

from datetime import date

import pytest
from credentialing_board import Board
from shell_personas import Network, Personas
from training_scores import score_row

from clinical_shell.audit.models import AuditEvent
from clinical_shell.credentialing import services
from clinical_shell.credentialing.eligibility import check_eligibility
from clinical_shell.credentialing.models import Application, InstitutionLicence, PracticeRecord
from clinical_shell.errors import DomainError
from clinical_shell.notifications.models import Notification
from clinical_shell.stations.models import SessionResult


def _eligibility(board: Board, network: Network) -> tuple[bool, set[str], int]:
    result = check_eligibility(board.applicant, board.requirement, network.center)
    return result.eligible, {m.code for m in result.missing}, result.modules[0].passes_found


def test_two_recent_verified_passes_at_the_minimum_make_a_surgeon_eligible(
    board: Board, shell_network: Network
) -> None:
    score_row(board.station, board.applicant, score=80.0)
    assert _eligibility(board, shell_network) == (False, {"module_passes"}, 1)
    score_row(board.station, board.applicant, score=91.5, days_ago=30)
    assert _eligibility(board, shell_network) == (True, set(), 2)


@pytest.mark.parametrize(
    "verification", [SessionResult.Verification.PENDING, SessionResult.Verification.REJECTED]
)
def test_pending_or_rejected_scores_do_not_count(
    board: Board, shell_network: Network, verification: str
) -> None:
    score_row(board.station, board.applicant, score=95.0)
    score_row(board.station, board.applicant, score=99.0, verification=verification)
    score_row(board.station, board.applicant, score=98.0, verification=verification)
    assert _eligibility(board, shell_network) == (False, {"module_passes"}, 1)


def test_a_failed_attempt_does_not_count_whatever_its_score(
    board: Board, shell_network: Network
) -> None:
    """A critical error (a breach, a nerve contact) fails the attempt in the scenario; a rule's
    minimum score must not let it count as a pass."""
    board.requirement.module_requirements.update(min_score=10.0)
    score_row(board.station, board.applicant, score=95.0)
    score_row(board.station, board.applicant, score=95.0, passed=False)
    assert _eligibility(board, shell_network) == (False, {"module_passes"}, 1)


def test_a_score_older_than_the_window_does_not_count(board: Board, shell_network: Network) -> None:
    score_row(board.station, board.applicant, score=95.0, days_ago=10)
    score_row(board.station, board.applicant, score=95.0, days_ago=91)
    assert _eligibility(board, shell_network) == (False, {"module_passes"}, 1)
    score_row(board.station, board.applicant, score=95.0, days_ago=89)
    assert _eligibility(board, shell_network)[0]


def test_a_score_below_the_minimum_does_not_count(board: Board, shell_network: Network) -> None:
    score_row(board.station, board.applicant, score=95.0)
    score_row(board.station, board.applicant, score=79.9)
    assert _eligibility(board, shell_network) == (False, {"module_passes"}, 1)


def test_scores_of_another_case_scenario_or_surgeon_do_not_count(
    board: Board, shell_network: Network, personas: Personas
) -> None:
    score_row(board.station, board.applicant, score=95.0)
    score_row(board.station, board.applicant, score=95.0, case="sha256:" + "ee" * 32)
    score_row(board.station, board.applicant, score=95.0, scenario="burr_lesion")
    score_row(board.station, personas.outsider, score=95.0)
    assert _eligibility(board, shell_network) == (False, {"module_passes"}, 1)


def test_years_of_practice_are_required(board: Board, shell_network: Network) -> None:
    for _ in range(2):
        score_row(board.station, board.applicant, score=90.0)
    PracticeRecord.objects.filter(user=board.applicant).update(practising_since=date.today())
    assert _eligibility(board, shell_network) == (False, {"years_of_practice"}, 2)
    PracticeRecord.objects.filter(user=board.applicant).delete()
    assert _eligibility(board, shell_network)[1] == {"years_of_practice"}


def test_the_institution_grade_and_licence_are_required(
    board: Board, shell_network: Network
) -> None:
    for _ in range(2):
        score_row(board.station, board.applicant, score=90.0)
    InstitutionLicence.objects.filter(institution=shell_network.center).update(
        hospital_grade=2, max_surgical_grade=3
    )
    assert _eligibility(board, shell_network)[1] == {
        "institution_grade",
        "institution_grade_too_low",
    }


def test_an_ineligible_application_is_refused_with_what_is_missing(
    board: Board, shell_network: Network
) -> None:
    score_row(board.station, board.applicant, score=90.0)
    with pytest.raises(DomainError) as refused:
        services.submit_application(
            actor=board.applicant, requirement=board.requirement, institution=shell_network.center
        )
    assert refused.value.code == "not_eligible"
    assert "L4 椎弓根开路" in refused.value.message
    assert not Application.objects.exists()


def test_an_eligible_application_is_recorded_audited_and_sent_to_the_committee(
    board: Board, shell_network: Network
) -> None:
    evidence = [score_row(board.station, board.applicant, score=90.0) for _ in range(2)]
    application = services.submit_application(
        actor=board.applicant, requirement=board.requirement, institution=shell_network.center
    )
    assert application.status == Application.Status.UNDER_REVIEW
    assert sorted(application.eligibility["modules"][0]["result_ids"]) == sorted(
        r.pk for r in evidence
    )
    assert AuditEvent.objects.filter(
        action="credentialing.application_submit", target_id=str(application.pk)
    ).exists()
    told = set(Notification.objects.values_list("recipient_id", flat=True))
    assert {board.chair.pk, board.supervisor.pk, *(m.pk for m in board.members)} <= told
    assert board.applicant.pk not in told
    with pytest.raises(DomainError) as again:
        services.submit_application(
            actor=board.applicant, requirement=board.requirement, institution=shell_network.center
        )
    assert again.value.code == "already_applied"


def test_a_surgeon_applies_only_where_they_practise(board: Board, shell_network: Network) -> None:
    with pytest.raises(DomainError) as refused:
        services.submit_application(
            actor=board.applicant,
            requirement=board.requirement,
            institution=shell_network.shuangbai,
        )
    assert refused.value.code == "not_practising_here"
