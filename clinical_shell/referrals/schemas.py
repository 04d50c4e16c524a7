"""API shapes of referrals (explicit fields)."""

from datetime import datetime

from ninja import Field, Schema


class ReferralIn(Schema):
    patient_id: int
    direction: str = Field(max_length=8)
    from_institution_id: int
    to_institution_id: int | None = None
    outside_hospital: str = Field("", max_length=128)
    urgency: str = Field("routine", max_length=16)
    reason: str = Field(max_length=2000)
    criteria: list[str] = Field(default_factory=list, max_length=50)
    handover: dict[str, str] = Field(default_factory=dict)


class ReferralOut(Schema):
    id: int
    patient_id: int
    direction: str
    urgency: str
    state: str
    from_institution_id: int
    to_institution_id: int | None
    outside_hospital: str
    reason: str
    criteria: list[str]
    handover: dict[str, str]
    created_by_id: int
    created_at: datetime
    sent_at: datetime | None
    answer_due_at: datetime | None
    answered_at: datetime | None
    escalated_at: datetime | None
    ended_at: datetime | None
    decline_reason: str
    onward_from_id: int | None
    version: int


class EventOut(Schema):
    from_state: str
    to_state: str
    actor_id: int
    at: datetime
    note: str


class DeclinedOut(Schema):
    referral: ReferralOut
    onward: ReferralOut | None


class ApprovalOut(Schema):
    referral_id: int
    decision: str
    decided_by_id: int | None
    decided_at: datetime | None
    note: str


class InboxParams(Schema):
    box: str = Field("incoming", max_length=16)
    state: str = Field("", max_length=16)
    urgency: str = Field("", max_length=16)
    direction: str = Field("", max_length=8)
    q: str = Field("", max_length=100)


class CriterionOut(Schema):
    code: str
    direction: str
    text_zh: str
    text_en: str
    emergency: bool


class CriteriaParams(Schema):
    direction: str = Field(max_length=8)
    institution_id: int


class ShareIn(Schema):
    kind: str = Field(max_length=16)
    object_id: int = Field(ge=1)


class ShareOut(Schema):
    kind: str
    object_id: int
    label: str
    body: str


class VersionIn(Schema):
    version: int | None = None
    note: str = Field("", max_length=500)


class ReasonIn(Schema):
    version: int | None = None
    reason: str = Field(max_length=500)


class DeclineIn(Schema):
    version: int | None = None
    reason: str = Field(max_length=500)
    onward_to_id: int | None = None


class DecisionIn(Schema):
    approve: bool
    note: str = Field("", max_length=500)
