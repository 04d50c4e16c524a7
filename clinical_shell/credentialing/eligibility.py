"""Whether a surgeon meets a privilege's requirements, and what is missing.

Scores come only from `stations.selectors.verified_scores`: a result counts once the shell has
replayed its recording bit for bit; pending and rejected results never count.
"""

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Window
from django.utils import timezone
from django.utils.translation import gettext as _

from clinical_shell.credentialing.checks import institution_licensed
from clinical_shell.credentialing.models import (
    InstitutionLicence,
    ModuleRequirement,
    PracticeRecord,
    Requirement,
)
from clinical_shell.network.models import Institution
from clinical_shell.stations.selectors import archive_hashes_of, verified_scores


@dataclass(frozen=True)
class ModuleEvidence:
    module_id: int
    module_code: str
    module_title: str
    scenario: str
    passes_required: int
    min_score: float
    within_days: int
    passes_found: int
    # the counted results, newest first (at most `passes_required` of them)
    result_ids: list[int]

    @property
    def met(self) -> bool:
        return self.passes_found >= self.passes_required


@dataclass(frozen=True)
class Missing:
    code: str
    message: str  # in the active language


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    checked_at: str
    modules: list[ModuleEvidence] = field(default_factory=list)
    years_required: int = 0
    years_held: int = 0
    hospital_grade_required: int = 0
    hospital_grade_held: int = 0
    missing: list[Missing] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for module, evidence in zip(data["modules"], self.modules, strict=True):
            module["met"] = evidence.met
        return data


def module_evidence(surgeon: User, rule: ModuleRequirement, *, now: datetime) -> ModuleEvidence:
    """Verified, passed results of the module's scenario on its case, at or above the minimum
    score, received within the window."""
    module = rule.module
    since = now - timedelta(days=rule.within_days)
    # passed: the scenario's own verdict, false after any critical error whatever the score, so
    # a low minimum score set for a rule can never count a failed attempt
    counted = verified_scores(surgeon, scenario=module.scenario, since=since).filter(
        passed=True,
        score__gte=rule.min_score,
        case_hash__in=archive_hashes_of(module.case_content_hash),
    )
    # one query: the newest `passes` ids, each row carrying the total count
    rows = list(
        counted.annotate(total=Window(Count("id"))).values_list("id", "total")[: rule.passes]
    )
    found = rows[0][1] if rows else 0
    ids = [row[0] for row in rows]
    return ModuleEvidence(
        module_id=module.pk,
        module_code=module.code,
        module_title=module.display_title,
        scenario=module.scenario,
        passes_required=rule.passes,
        min_score=rule.min_score,
        within_days=rule.within_days,
        passes_found=found,
        result_ids=ids,
    )


def check_eligibility(
    surgeon: User,
    requirement: Requirement,
    institution: Institution,
    *,
    now: datetime | None = None,
) -> Eligibility:
    """Every rule of `requirement` for `surgeon` at `institution` (committee approval aside)."""
    now = now or timezone.now()
    today: date = timezone.localdate(now)
    missing: list[Missing] = []

    # modules: so many verified passes at a minimum score within the window
    modules = [
        module_evidence(surgeon, rule, now=now)
        for rule in requirement.module_requirements.select_related("module").order_by("id")
    ]
    for evidence in modules:
        if not evidence.met:
            missing.append(
                Missing(
                    "module_passes",
                    _(
                        "模块“%(module)s”：近 %(days)s 天内需 %(need)s 次已验证且不低于 "
                        "%(score)s 分的成绩，现有 %(have)s 次"
                    )
                    % {
                        "module": evidence.module_title,
                        "days": evidence.within_days,
                        "need": evidence.passes_required,
                        "score": f"{evidence.min_score:g}",
                        "have": evidence.passes_found,
                    },
                )
            )

    # years of practice
    record = PracticeRecord.objects.filter(user_id=surgeon.pk).first()
    years = record.years_of_practice(today) if record is not None else 0
    if years < requirement.min_years_practice:
        missing.append(
            Missing(
                "years_of_practice",
                _("需执业满 %(need)s 年，现为 %(have)s 年")
                % {"need": requirement.min_years_practice, "have": years},
            )
        )

    # the institution: its hospital grade, and its licence for this grade or technique
    licence = InstitutionLicence.objects.filter(institution_id=institution.pk).first()
    hospital_grade = licence.hospital_grade if licence is not None else 0
    if hospital_grade < requirement.min_hospital_grade:
        missing.append(
            Missing(
                "institution_grade",
                _("需在%(need)s级及以上医院开展，%(inst)s 为%(have)s级")
                % {
                    "need": requirement.min_hospital_grade,
                    "inst": institution.name,
                    "have": hospital_grade or "—",
                },
            )
        )
    licensed = institution_licensed(
        institution,
        technique=requirement.technique.code if requirement.technique is not None else None,
        grade=requirement.grade,
    )
    if not licensed.ok:
        missing.append(Missing(licensed.reason_code, licensed.reason))

    return Eligibility(
        eligible=not missing,
        checked_at=now.isoformat(),
        modules=modules,
        years_required=requirement.min_years_practice,
        years_held=years,
        hospital_grade_required=requirement.min_hospital_grade,
        hospital_grade_held=hospital_grade,
        missing=missing,
    )
