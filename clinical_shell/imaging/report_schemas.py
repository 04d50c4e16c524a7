"""API shapes of imaging reports (explicit fields)."""

from datetime import date, datetime

from ninja import Field, Schema

from clinical_shell.imaging.report_services import MAX_REASON_CHARS, MAX_SECTION_CHARS


class ReportTextIn(Schema):
    technique: str = Field("", max_length=MAX_SECTION_CHARS)
    findings: str = Field("", max_length=MAX_SECTION_CHARS)
    impression: str = Field("", max_length=MAX_SECTION_CHARS)
    recommendation: str = Field("", max_length=MAX_SECTION_CHARS)


class DraftIn(ReportTextIn):
    urgency: str = Field("routine", max_length=16)


class DraftPatch(DraftIn):
    version: int


class VersionIn(Schema):
    version: int


class AmendIn(ReportTextIn):
    version: int
    reason: str = Field(max_length=MAX_REASON_CHARS)


class WorklistParams(Schema):
    q: str = Field("", max_length=100)
    urgency: str = Field("", max_length=16)
    state: str = Field("", max_length=16)


class WorklistRowOut(Schema):
    study_id: int = Field(alias="pk")
    patient_id: int
    patient_name: str = Field(alias="patient.name")
    institution_id: int = Field(alias="uploaded_at_id")
    study_date: date | None
    description: str
    modality: str | None = Field(None, alias="first_modality")
    first_series_id: int | None
    uploaded_at: datetime = Field(alias="created_at")
    urgency: str = Field(alias="report_urgency")
    report_id: int | None
    report_state: str | None


class ReportVersionOut(Schema):
    number: int
    kind: str
    technique: str
    findings: str
    impression: str
    recommendation: str
    reason: str
    signed_by_id: int
    signed_at: datetime


class ReportOut(Schema):
    id: int
    study_id: int
    patient_id: int | None = Field(alias="study.patient_id")
    institution_id: int
    author_id: int
    urgency: str
    state: str
    technique: str
    findings: str
    impression: str
    recommendation: str
    signed_at: datetime | None
    signed_by_id: int | None
    version: int
    created_at: datetime
    updated_at: datetime
    versions: list[ReportVersionOut]

    @staticmethod
    def resolve_versions(obj: object) -> list[object]:
        return list(obj.versions.order_by("number"))  # type: ignore[attr-defined]
