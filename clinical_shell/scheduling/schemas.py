"""API shapes of bookings (explicit fields)."""

from datetime import date, datetime

from ninja import Field, Schema


class BookingIn(Schema):
    patient_id: int
    procedure_name: str = Field(max_length=200)
    procedure_code: str = Field("", max_length=16)
    grade: int = Field(ge=1, le=4)
    technique_code: str = Field("", max_length=48)
    surgeon_id: int
    institution_id: int
    scheduled_on: date
    emergency_override: bool = False
    override_reason: str = Field("", max_length=500)


class BookingOut(Schema):
    id: int
    patient_id: int
    procedure_name: str
    procedure_code: str
    grade: int
    technique_code: str
    surgeon_id: int
    institution_id: int
    scheduled_on: date
    state: str
    emergency_override: bool
    override_reason: str
    overridden_code: str
    overridden_reason: str
    flag_code: str
    flag_reason: str
    flagged_at: datetime | None
    booked_by_id: int
    created_at: datetime


class BookingParams(Schema):
    state: str = ""
    institution_id: int | None = None
    surgeon_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    override: bool | None = None


class CancelIn(Schema):
    reason: str = Field(max_length=500)


class CheckParams(Schema):
    surgeon_id: int
    institution_id: int
    grade: int = Field(ge=1, le=4)
    technique_code: str = ""
    on: date


class CheckOut(Schema):
    ok: bool
    code: str
    reason: str
    overridable: bool


class OverrideOut(Schema):
    """An override as the quality office sees it: no patient."""

    id: int
    procedure_name: str
    grade: int
    technique_code: str
    surgeon_id: int
    institution_id: int
    scheduled_on: date
    override_reason: str
    overridden_code: str
    overridden_reason: str
    booked_by_id: int
    created_at: datetime
