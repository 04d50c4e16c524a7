"""API shapes for studies, case-build jobs and simulation cases: explicit fields only."""

from datetime import date, datetime
from typing import Any

from django.conf import settings
from ninja import Field, Schema

from clinical_shell.imaging import selectors
from clinical_shell.imaging.models import CaseBuildJob
from clinical_shell.imaging.services import CASE_SPACING_RANGE_MM, DEFAULT_CASE_SPACING_MM


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
    id: int
    series_id: int
    patient_id: int
    status: str
    progress: float
    step: str
    error: str
    spacing_mm: float
    case_id: int | None
    case_path: str
    content_hash: str | None
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # not finished and silent for too long: the worker died (the job will not finish by itself)
    lost: bool

    @staticmethod
    def resolve_content_hash(obj: CaseBuildJob) -> str | None:
        return obj.case.content_hash if obj.case is not None else None

    @staticmethod
    def resolve_requested_by(obj: CaseBuildJob) -> str:
        return obj.requested_by.get_username()

    @staticmethod
    def resolve_lost(obj: CaseBuildJob) -> bool:
        return selectors.case_build_is_lost(
            obj, stale_seconds=settings.OSTEON_CASE_BUILD_STALE_SECONDS
        )


class SimulationCaseOut(Schema):
    id: int
    patient_id: int
    series_id: int
    path: str
    content_hash: str
    spacing_mm: float
    bones: list[dict[str, Any]]
    created_at: datetime
