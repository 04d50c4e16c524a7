"""Reads for the credentialing pages and API: catalog, requirements, applications, evidence."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.urls import NoReverseMatch, reverse

from clinical_shell.credentialing.models import (
    Application,
    Committee,
    Privilege,
    Requirement,
    SurgicalGrade,
    Technique,
    Vote,
)
from clinical_shell.stations.selectors import archive_hashes_of, verified_scores
from clinical_shell.training.models import Module


def techniques() -> QuerySet[Technique]:
    return Technique.objects.all()


def grades() -> QuerySet[SurgicalGrade]:
    return SurgicalGrade.objects.all()


def requirements() -> QuerySet[Requirement]:
    return (
        Requirement.objects.filter(active=True)
        .select_related("technique")
        .prefetch_related("module_requirements__module")
        .order_by("technique__code", "grade", "id")
    )


def applications_for_review(institution_ids: list[int]) -> QuerySet[Application]:
    return (
        Application.objects.filter(institution_id__in=institution_ids)
        .select_related("applicant__person", "institution", "requirement__technique")
        .order_by("status", "-submitted_at", "-id")
    )


def applications_of(user: User) -> QuerySet[Application]:
    return Application.objects.filter(applicant_id=user.pk).select_related(
        "institution", "requirement__technique"
    )


def privileges_of(user: User) -> QuerySet[Privilege]:
    return Privilege.objects.filter(surgeon_id=user.pk).select_related("institution", "technique")


def privileges_at(institution_ids: list[int]) -> QuerySet[Privilege]:
    return Privilege.objects.filter(institution_id__in=institution_ids).select_related(
        "surgeon__person", "institution", "technique"
    )


def votes_on(application: Application) -> list[Vote]:
    return list(Vote.objects.filter(application=application).select_related("member__person"))


def committee_of(institution_id: int) -> Committee | None:
    return (
        Committee.objects.filter(institution_id=institution_id)
        .select_related("chair__person")
        .first()
    )


def result_link(result_id: int, session_id: int | None) -> str:
    """The replay page of a result (stations:result_replay) when it exists, else its session."""
    try:
        return reverse("stations:result_replay", args=[result_id])
    except NoReverseMatch:
        if session_id is None:
            return ""
        return reverse("stations:session_detail", args=[session_id])


@dataclass(frozen=True)
class ModuleScores:
    """A module's verified scores of one surgeon, oldest first: the learning curve."""

    module: Module
    min_score: float
    rows: list[dict[str, Any]]


def evidence(applicant: User, requirement: Requirement, *, limit: int = 50) -> list[ModuleScores]:
    """Per required module, the applicant's latest verified scores (with links to their replays
    or sessions); pending and rejected results are not evidence."""
    found = []
    for rule in requirement.module_requirements.select_related("module").order_by("id"):
        module = rule.module
        results = list(
            verified_scores(applicant, scenario=module.scenario)
            .filter(case_hash__in=archive_hashes_of(module.case_content_hash))
            .values("id", "session_id", "score", "passed", "received_at", "metrics")[:limit]
        )
        results.reverse()
        rows = [
            {
                "id": r["id"],
                "score": r["score"],
                "passed": r["passed"],
                "at": r["received_at"].isoformat(),
                "received_at": r["received_at"],
                "metrics": r["metrics"],
                "url": result_link(r["id"], r["session_id"]),
            }
            for r in results
        ]
        found.append(ModuleScores(module=module, min_score=rule.min_score, rows=rows))
    return found
