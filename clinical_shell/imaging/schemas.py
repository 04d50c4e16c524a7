"""API shapes for studies, case-build jobs and simulation cases: explicit fields only."""

from datetime import date, datetime
from typing import Any

from ninja import Field, Schema

from clinical_shell.imaging.case_builds import CASE_SPACING_RANGE_MM, DEFAULT_CASE_SPACING_MM
from clinical_shell.imaging.models import CaseBuildJob
from clinical_shell.jobs import selectors as jobs


class SeriesOut(Schema):
    id: int
    series_uid: str
    modality: str
    number: int | None
    description: str
    instance_count: int


class StudyOut(Schema):
    id: int
    study_uid: str
    patient_id: int | None
    linked_by: str
    study_date: date | None
    description: str
    uploaded_at_id: int
    created_at: datetime
    series: list[SeriesOut]

    @staticmethod
    def resolve_series(obj: Any) -> list[Any]:
        return list(obj.series.all())


class CaseBuildIn(Schema):
    spacing_mm: float = Field(
        DEFAULT_CASE_SPACING_MM, ge=CASE_SPACING_RANGE_MM[0], le=CASE_SPACING_RANGE_MM[1]
    )


class CaseBuildOut(Schema):
    """A build and its background job (status, progress, queue position, error)."""

    id: int
    job_id: int | None
    series_id: int
    patient_id: int
    status: str
    progress: float
    step: str
    error: str
    # 1 = next to start; null once it no longer waits
    queue_position: int | None
    attempts: int
    cancel_requested: bool
    spacing_mm: float
    estimated_bytes: int | None
    case_id: int | None
    # no server file paths: where a case lies on disk is the server's business
    content_hash: str | None
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @staticmethod
    def resolve_status(obj: CaseBuildJob) -> str:
        return obj.job.status if obj.job is not None else "queued"

    @staticmethod
    def resolve_progress(obj: CaseBuildJob) -> float:
        return obj.job.progress if obj.job is not None else 0.0

    @staticmethod
    def resolve_step(obj: CaseBuildJob) -> str:
        return obj.job.step if obj.job is not None else ""

    @staticmethod
    def resolve_error(obj: CaseBuildJob) -> str:
        return obj.job.error if obj.job is not None else ""

    @staticmethod
    def resolve_queue_position(obj: CaseBuildJob) -> int | None:
        return jobs.queue_position(obj.job) if obj.job is not None else None

    @staticmethod
    def resolve_attempts(obj: CaseBuildJob) -> int:
        return obj.job.attempts if obj.job is not None else 0

    @staticmethod
    def resolve_cancel_requested(obj: CaseBuildJob) -> bool:
        return bool(obj.job is not None and obj.job.cancel_requested)

    @staticmethod
    def resolve_started_at(obj: CaseBuildJob) -> datetime | None:
        return obj.job.started_at if obj.job is not None else None

    @staticmethod
    def resolve_finished_at(obj: CaseBuildJob) -> datetime | None:
        return obj.job.finished_at if obj.job is not None else None

    @staticmethod
    def resolve_content_hash(obj: CaseBuildJob) -> str | None:
        return obj.case.content_hash if obj.case is not None else None

    @staticmethod
    def resolve_requested_by(obj: CaseBuildJob) -> str:
        return obj.requested_by.get_username()


class SimulationCaseOut(Schema):
    id: int
    patient_id: int
    series_id: int
    content_hash: str
    spacing_mm: float
    bones: list[dict[str, Any]]
    created_at: datetime
