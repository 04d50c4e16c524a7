"""API shapes of training modules, assignments and progress."""

from datetime import date, datetime
from typing import Any

from ninja import Field, Schema

from clinical_shell.training.models import Module


class ModuleOut(Schema):
    id: int
    code: str
    title: str
    scenario: str
    case_kind: str
    case_content_hash: str
    pass_score: float
    attempts_allowed: int
    prerequisites: list[str]

    @staticmethod
    def resolve_prerequisites(obj: Module) -> list[str]:
        return [p.code for p in obj.prerequisites.all()]


class ModuleIn(Schema):
    code: str = Field(pattern=r"^[a-z0-9-]{2,48}$")
    title: str = Field(min_length=1, max_length=128)
    scenario: str
    case_kind: str
    case_content_hash: str = Field(min_length=1, max_length=80)
    pass_score: float = Field(ge=0, le=100)
    attempts_allowed: int = Field(0, ge=0, le=1000)
    prerequisites: list[str] = Field(default_factory=list)


class AssignmentIn(Schema):
    module_id: int
    trainee: str
    due_on: date
    group_id: int | None = None


class AssignmentOut(Schema):
    id: int
    module_id: int
    trainee_id: int
    assigned_at: datetime
    due_on: date


class ProgressOut(Schema):
    module_id: int
    module_code: str
    status: str
    attempts: int
    passed: bool
    best_score: float | None
    due_on: date | None
    curve: list[dict[str, Any]]


class StartIn(Schema):
    station_id: int


class SessionStartedOut(Schema):
    session_id: int
    state: str
