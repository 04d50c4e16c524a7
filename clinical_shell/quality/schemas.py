"""API shapes of the quality app."""

from datetime import date, datetime

from ninja import Schema
from pydantic import Field


class IndicatorOut(Schema):
    code: str
    name_zh: str
    name_en: str
    description: str
    aggregate: str
    unit: str
    direction: str
    per_surgeon: bool
    target: float | None
    warning: float | None
    alarm: float | None
    min_denominator: int


class ThresholdsIn(Schema):
    reason: str = Field(min_length=1, max_length=300)
    target: float | None = None
    warning: float | None = None
    alarm: float | None = None
    min_denominator: int | None = Field(default=None, ge=1)


class FigureOut(Schema):
    code: str
    name_zh: str
    name_en: str
    unit: str
    direction: str
    aggregate: str
    value: float | None
    numerator: int | None
    denominator: int
    reliable: bool
    status: str
    target: float | None
    warning: float | None
    alarm: float | None
    trend: list[float | None]


class LimitsOut(Schema):
    n: int
    lower95: float
    upper95: float
    lower998: float
    upper998: float


class FunnelPointOut(Schema):
    key: str
    n: int
    numerator: int | None
    value: float | None
    limits: LimitsOut | None


class FunnelOut(Schema):
    code: str
    p: float | None
    points: list[FunnelPointOut]
    curve: list[LimitsOut]


class CaseOut(Schema):
    """One row behind a figure: an encounter, referral, consultation, booking or assessment."""

    source: str
    id: int
    patient_id: int | None
    institution_id: int
    at: datetime | date | None
    detail: str


class WarningOut(Schema):
    id: int
    kind: str
    cause: str
    period_start: date
    summary: str
    summary_en: str
    status: str
    institution_id: int | None
    indicator_code: str | None
    raised_at: datetime
    due_at: datetime
    escalation_level: int
    action_note: str


class AcknowledgeIn(Schema):
    action_note: str = Field(min_length=1, max_length=4000)


class FactIn(Schema):
    encounter_id: int
    kind: str
    occurred_at: datetime
    procedure_id: int | None = None
    value: float | None = None
    note: str = Field(default="", max_length=300)


class FactOut(Schema):
    id: int
    encounter_id: int
    kind: str
    occurred_at: datetime
