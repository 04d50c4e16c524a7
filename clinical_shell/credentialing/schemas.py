"""API shapes of the catalog, eligibility, applications, votes, decisions and privileges."""

from datetime import date, datetime
from typing import Any

from ninja import Field, Schema

from clinical_shell.credentialing.models import Application, Privilege, Requirement


class TechniqueOut(Schema):
    code: str
    name: str
    name_en: str
    category: str
    orthopedic: bool
    source: str
    version: str
    effective_from: date | None
    verified: bool
    active: bool


class TechniqueIn(Schema):
    code: str = Field(pattern=r"^[a-z0-9-]{2,48}$")
    name: str = Field(min_length=1, max_length=128)
    name_en: str = Field("", max_length=160)
    category: str
    orthopedic: bool = False
    source: str = Field("", max_length=300)
    version: str = Field("", max_length=32)
    effective_from: date | None = None
    verified: bool = False
    active: bool = True


class GradeOut(Schema):
    level: int
    name: str
    name_en: str
    definition: str
    definition_en: str
    source: str


class ModuleRuleOut(Schema):
    module_id: int
    module_code: str
    passes: int
    min_score: float
    within_days: int


class RequirementOut(Schema):
    id: int
    technique: str | None
    grade: int | None
    min_years_practice: int
    min_hospital_grade: int
    committee_approval: bool
    validity_days: int
    modules: list[ModuleRuleOut]

    @staticmethod
    def resolve_technique(obj: Requirement) -> str | None:
        return obj.technique.code if obj.technique is not None else None

    @staticmethod
    def resolve_modules(obj: Requirement) -> list[dict[str, Any]]:
        return [
            {
                "module_id": m.module_id,
                "module_code": m.module.code,
                "passes": m.passes,
                "min_score": m.min_score,
                "within_days": m.within_days,
            }
            for m in obj.module_requirements.all()
        ]


class ModuleRuleIn(Schema):
    module_code: str
    passes: int = Field(ge=1, le=1000)
    min_score: float = Field(ge=0, le=100)
    within_days: int = Field(ge=1, le=3650)


class RequirementIn(Schema):
    """One of `technique` (a catalog code) and `grade` (1-4)."""

    technique: str | None = None
    grade: int | None = Field(None, ge=1, le=4)
    min_years_practice: int = Field(0, ge=0, le=60)
    min_hospital_grade: int = Field(0, ge=0, le=3)
    committee_approval: bool = True
    validity_days: int = Field(730, ge=1, le=3650)
    modules: list[ModuleRuleIn] = Field(default_factory=list)
    source: str = Field("", max_length=300)


class MissingOut(Schema):
    code: str
    message: str


class ModuleEvidenceOut(Schema):
    module_id: int
    module_code: str
    module_title: str
    passes_required: int
    min_score: float
    within_days: int
    passes_found: int
    result_ids: list[int]
    met: bool


class EligibilityOut(Schema):
    eligible: bool
    checked_at: str
    modules: list[ModuleEvidenceOut]
    years_required: int
    years_held: int
    hospital_grade_required: int
    hospital_grade_held: int
    missing: list[MissingOut]


class ApplicationIn(Schema):
    requirement_id: int
    institution_id: int
    statement: str = Field("", max_length=4000)


class VoteIn(Schema):
    approve: bool
    comment: str = Field("", max_length=4000)


class DecideIn(Schema):
    note: str = Field("", max_length=4000)


class VoteOut(Schema):
    member: str
    approve: bool
    comment: str
    cast_at: datetime

    @staticmethod
    def resolve_member(obj: Any) -> str:
        return str(obj.member.get_username())


class DecisionOut(Schema):
    granted: bool
    approvals: int
    refusals: int
    chair: str
    decided_at: datetime
    payload: str
    signature: str
    signature_algorithm: str = "HMAC-SHA256"
    signature_valid: bool

    @staticmethod
    def resolve_chair(obj: Any) -> str:
        return str(obj.chair.get_username())

    @staticmethod
    def resolve_signature_valid(obj: Any) -> bool:
        from clinical_shell.credentialing.services import verify_decision

        return verify_decision(obj)


class ApplicationOut(Schema):
    id: int
    applicant: str
    requirement_id: int
    institution_id: int
    status: str
    eligibility: dict[str, Any]
    statement: str
    submitted_at: datetime
    decided_at: datetime | None
    votes: list[VoteOut]
    decision: DecisionOut | None
    privilege_id: int | None

    @staticmethod
    def resolve_applicant(obj: Application) -> str:
        return str(obj.applicant.get_username())

    @staticmethod
    def resolve_votes(obj: Application) -> list[Any]:
        # prefetched by the list (votes__member); in vote order (the model's ordering)
        return list(obj.votes.all())

    @staticmethod
    def resolve_decision(obj: Application) -> Any:
        return getattr(obj, "decision", None)

    @staticmethod
    def resolve_privilege_id(obj: Application) -> int | None:
        privilege = getattr(obj, "privilege", None)
        return privilege.pk if privilege is not None else None


class PrivilegeOut(Schema):
    id: int
    surgeon: str
    technique: str | None
    grade: int | None
    institution_id: int
    valid_from: date
    valid_until: date
    status: str
    status_reason: str
    application_id: int | None

    @staticmethod
    def resolve_surgeon(obj: Privilege) -> str:
        return str(obj.surgeon.get_username())

    @staticmethod
    def resolve_technique(obj: Privilege) -> str | None:
        return obj.technique.code if obj.technique is not None else None


class StatusChangeIn(Schema):
    action: str = Field(pattern=r"^(suspend|reinstate|revoke)$")
    reason: str = Field(min_length=1, max_length=500)


class CheckOut(Schema):
    ok: bool
    reason_code: str
    reason: str
    privilege_id: int | None
