"""API shapes for /api/v1/administration (explicit field lists; passwords only in the answers
that create them, once)."""

from datetime import date, datetime
from typing import Any

from ninja import Schema

from clinical_shell.audit.labels import action_label


class AuditParams(Schema):
    patient_id: int | None = None
    username: str = ""
    action: str = ""
    outcome: str = ""
    since: date | None = None
    until: date | None = None


class AuditEventOut(Schema):
    id: int
    occurred_at: datetime
    actor_username: str
    action: str
    # the code in words, in the request's language (the code itself for one not yet named)
    action_label: str
    outcome: str
    patient_id: int | None
    target_type: str
    target_id: str
    reason: str
    source_ip: str
    detail: dict[str, Any]

    @staticmethod
    def resolve_action_label(event: Any) -> str:
        return action_label(event.action)


class UserParams(Schema):
    q: str = ""
    institution_id: int | None = None
    role: str = ""
    active: bool | None = None
    locked: bool | None = None


class MembershipOut(Schema):
    id: int
    institution_id: int
    role: str
    active: bool


class AccountOut(Schema):
    id: int
    username: str
    full_name: str
    is_active: bool

    @staticmethod
    def resolve_full_name(obj: Any) -> str:
        return str(obj.person.full_name)


class AccountIn(Schema):
    username: str
    full_name: str
    institution_id: int
    role: str
    title: str = "none"
    password: str = ""  # empty: a strong one is generated and returned once


class CreatedAccountOut(Schema):
    account: AccountOut
    temporary_password: str


class TemporaryPasswordOut(Schema):
    account: AccountOut
    temporary_password: str


class RoleIn(Schema):
    institution_id: int
    role: str


class DepartmentPatch(Schema):
    name: str
    code: str
    head_person_id: int | None = None


class DepartmentOut(Schema):
    id: int
    institution_id: int
    code: str
    name: str
    head_id: int | None
