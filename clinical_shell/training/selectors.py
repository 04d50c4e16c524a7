"""Training progress, read from the stations app's results.

Attempts of a module are its scenario's results on its case that the replay has judged
(verified or rejected) since the module was assigned; a module is passed by a verified result
at or above its pass score within the attempts allowed. Pending results are neither.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.utils import timezone

from clinical_shell.stations.models import SessionResult
from clinical_shell.stations.selectors import archive_hashes_of, judged_results
from clinical_shell.training.models import Assignment, Module, TrainingGroup


@dataclass(frozen=True)
class ModuleProgress:
    module: Module
    assignment: Assignment | None
    attempts: int
    passed: bool
    best_score: float | None
    exhausted: bool  # every allowed attempt used without a pass
    overdue: bool
    locked: bool  # a prerequisite is not passed yet
    # verified results, oldest first: time, score and metrics (the learning curve)
    curve: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.passed:
            return "passed"
        if self.locked:
            return "locked"
        if self.exhausted:
            return "exhausted"
        if self.overdue:
            return "overdue"
        return "in_progress" if self.attempts else "not_started"

    @property
    def behind(self) -> bool:
        return self.status in ("exhausted", "overdue")


def _judged(user: User, module: Module, since: datetime | None) -> list[dict[str, Any]]:
    rows = (
        judged_results(user, scenario=module.scenario, since=since)
        .filter(case_hash__in=archive_hashes_of(module.case_content_hash))
        .values("id", "session_id", "score", "passed", "verification", "received_at", "metrics")
    )
    return [dict(r) for r in rows]


def module_progress(
    user: User,
    module: Module,
    assignment: Assignment | None,
    *,
    today: date | None = None,
    passed_modules: set[int] | None = None,
) -> ModuleProgress:
    """One module for one trainee. `passed_modules` (ids) decides the prerequisites' lock;
    None: prerequisites are not checked."""
    today = today or timezone.localdate()
    since = assignment.assigned_at if assignment is not None else None
    judged = _judged(user, module, since)
    allowed = module.attempts_allowed or len(judged)
    counted = judged[:allowed]
    verified = SessionResult.Verification.VERIFIED
    # the scenario's own verdict too: an attempt with a critical error (a breach, a nerve
    # contact, a plunge) is failed whatever its score and whatever pass score the module sets
    passed = any(
        r["verification"] == verified and r["passed"] and r["score"] >= module.pass_score
        for r in counted
    )
    scores = [r["score"] for r in judged if r["verification"] == verified]
    locked = passed_modules is not None and any(
        p.pk not in passed_modules for p in module.prerequisites.all()
    )
    return ModuleProgress(
        module=module,
        assignment=assignment,
        attempts=len(judged),
        passed=passed,
        best_score=max(scores) if scores else None,
        exhausted=(
            not passed and module.attempts_allowed > 0 and len(judged) >= module.attempts_allowed
        ),
        overdue=not passed and assignment is not None and assignment.due_on < today,
        locked=locked and not passed,
        curve=[
            {
                "at": r["received_at"].isoformat(),
                "score": r["score"],
                "metrics": r["metrics"],
                "result": r["id"],
                "session": r["session_id"],
            }
            for r in judged
            if r["verification"] == verified
        ],
    )


def assignments_of(user: User) -> QuerySet[Assignment]:
    return (
        Assignment.objects.filter(trainee_id=user.pk)
        .select_related("module")
        .prefetch_related("module__prerequisites")
        .order_by("due_on", "id")
    )


def progress_of(user: User, *, today: date | None = None) -> list[ModuleProgress]:
    """Every module assigned to `user`, prerequisites first so their locks can be decided."""
    assignments = list(assignments_of(user))
    by_module = {a.module_id: a for a in assignments}
    rows: dict[int, ModuleProgress] = {}
    passed: set[int] = set()
    # a module's prerequisites are evaluated first (modules without any, then the rest)
    pending = list(assignments)
    for _round in range(len(pending) + 1):
        left = []
        for a in pending:
            prereqs = {p.pk for p in a.module.prerequisites.all()} & set(by_module)
            if prereqs - set(rows):
                left.append(a)
                continue
            row = module_progress(user, a.module, a, today=today, passed_modules=passed)
            rows[a.module_id] = row
            if row.passed:
                passed.add(a.module_id)
        pending = left
        if not pending:
            break
    for a in pending:  # a prerequisite cycle: shown, never unlocked
        rows[a.module_id] = module_progress(user, a.module, a, today=today, passed_modules=set())
    return [rows[a.module_id] for a in assignments]


def groups_instructed_by(user: User) -> QuerySet[TrainingGroup]:
    return TrainingGroup.objects.filter(instructors=user).select_related("institution")


def groups_of_trainee(user: User) -> QuerySet[TrainingGroup]:
    return TrainingGroup.objects.filter(trainees=user).select_related("institution")


@dataclass(frozen=True)
class TraineeRow:
    trainee: User
    progress: list[ModuleProgress]

    @property
    def passed(self) -> int:
        return sum(1 for p in self.progress if p.passed)

    @property
    def behind(self) -> bool:
        return any(p.behind for p in self.progress)

    @property
    def mean_best(self) -> float | None:
        best = [p.best_score for p in self.progress if p.best_score is not None]
        return sum(best) / len(best) if best else None


def group_overview(group: TrainingGroup, *, today: date | None = None) -> list[TraineeRow]:
    """Each trainee of the group with their assigned modules; those behind first."""
    rows = [
        TraineeRow(trainee=t, progress=progress_of(t, today=today))
        for t in group.trainees.select_related("person").order_by("username")
    ]
    return sorted(rows, key=lambda r: (not r.behind, r.passed, r.trainee.username))


@dataclass(frozen=True)
class Standing:
    group: TrainingGroup
    rank: int  # 1 = most modules passed, then the higher mean best score
    size: int
    passed: int
    cohort_mean_passed: float


def standing_in(user: User, group: TrainingGroup, *, today: date | None = None) -> Standing:
    rows = group_overview(group, today=today)
    ranked = sorted(rows, key=lambda r: (-r.passed, -(r.mean_best or 0.0), r.trainee.pk))
    rank = next(i for i, r in enumerate(ranked, 1) if r.trainee.pk == user.pk)
    mine = ranked[rank - 1]
    return Standing(
        group=group,
        rank=rank,
        size=len(ranked),
        passed=mine.passed,
        cohort_mean_passed=sum(r.passed for r in ranked) / len(ranked),
    )


def modules() -> QuerySet[Module]:
    return Module.objects.filter(active=True).prefetch_related("prerequisites")
