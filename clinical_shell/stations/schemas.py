"""API shapes of stations, enrolment codes, sessions and results: explicit fields only."""

from datetime import datetime
from typing import Any

from ninja import Field, Schema

from clinical_shell.schema_fields import model_field
from clinical_shell.stations import selectors
from clinical_shell.stations.models import SessionResult, Station, StationSession


class StationOut(Schema):
    id: int
    name: str
    hostname: str
    institution_id: int
    institution: str
    room: str
    status: str
    presence: str
    last_contact_at: datetime | None
    enrolled_at: datetime
    revoked_at: datetime | None
    revoke_reason: str
    signed_in_user: str | None
    current_session_id: int | None

    @staticmethod
    def resolve_institution(obj: Station) -> str:
        return obj.institution.name

    @staticmethod
    def resolve_presence(obj: Station) -> str:
        return selectors.presence_of(obj)

    @staticmethod
    def resolve_signed_in_user(obj: Station) -> str | None:
        return obj.signed_in_user.get_username() if obj.signed_in_user is not None else None


class RevokeIn(Schema):
    reason: str = Field(..., min_length=1, max_length=500)


class EnrolmentCodeIn(Schema):
    institution_id: int
    room: str = Field(..., min_length=1, max_length=64)
    ttl_minutes: int = Field(60, ge=1, le=7 * 24 * 60)


class EnrolmentCodeOut(Schema):
    id: int
    institution_id: int
    room: str
    created_by: str | None  # None: made on the server console
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_by_station_id: int | None

    @staticmethod
    def resolve_created_by(obj: Any) -> str | None:
        return obj.created_by.get_username() if obj.created_by is not None else None


class IssuedEnrolmentCodeOut(Schema):
    """The code itself: shown in this response only, never again (only its hash is kept)."""

    id: int
    code: str
    expires_at: datetime
    shell_key: str
    bridge: str


class SessionIn(Schema):
    station_id: int
    case_hash: str = model_field(
        StationSession, "case_hash", description="the case bundle's content hash (sha256:...)"
    )
    scenario: str = model_field(StationSession, "scenario")
    username: str = Field(
        ..., min_length=1, max_length=150, description="the trainee's shell user name"
    )
    device: str = model_field(StationSession, "device", "scripted:expert")


class ResultOut(Schema):
    id: int
    message_id: str
    session_id: int | None
    station_id: int
    username: str
    case_hash: str
    scenario: str
    score: float
    passed: bool
    metrics: dict[str, float]
    final_state_hash: str
    recording_sha256: str
    received_at: datetime
    ended_at: datetime | None
    verification: str = Field(
        ..., description="pending, verified or rejected; only verified counts"
    )
    rejection_reason: str = Field(
        ..., description="bilingual text as recorded for the audit trail (中文 / English)"
    )
    rejection_code: str = Field(..., description="stable reason code; empty unless rejected")
    rejection_params: dict[str, Any]
    rejection_reason_text: str = Field(
        ..., description="the reason in the request's language (Accept-Language)"
    )
    arrived_late: bool = Field(
        ..., description="arrived after its session had been aborted (station lost); verified alike"
    )
    verified_at: datetime | None

    @staticmethod
    def resolve_username(obj: SessionResult) -> str:
        return obj.user.get_username()

    @staticmethod
    def resolve_rejection_reason_text(obj: SessionResult) -> str:
        return obj.rejection_reason_display


class SessionOut(Schema):
    id: int
    uid: str
    station_id: int
    username: str
    case_hash: str
    case_content_hash: str
    scenario: str
    device: str
    origin: str
    state: str
    abort_reason: str = Field(..., description="bilingual text as recorded (audit trail)")
    abort_code: str = Field(..., description="station_lost, station_refused, or empty")
    abort_params: dict[str, Any]
    abort_reason_text: str = Field(..., description="the reason in the request's language")
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    result: ResultOut | None

    @staticmethod
    def resolve_username(obj: StationSession) -> str:
        return obj.user.get_username()

    @staticmethod
    def resolve_abort_reason_text(obj: StationSession) -> str:
        return obj.abort_reason_display

    @staticmethod
    def resolve_result(obj: StationSession) -> SessionResult | None:
        return getattr(obj, "result", None)


class SessionParams(Schema):
    station_id: int | None = None
    username: str | None = None


class ResultParams(Schema):
    username: str | None = None
    scenario: str | None = None
    verification: str | None = None
