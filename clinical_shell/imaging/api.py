"""`/api/v1/imaging`: studies, case-build jobs and simulation cases, under the patient rule."""

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import ProblemOut
from clinical_shell.imaging import (
    annotation_api,
    key_images_api,
    selectors,
    services,
    viewer_geometry,
)
from clinical_shell.imaging.access import (
    access_case,
    access_case_build,
    access_series,
    access_study,
)
from clinical_shell.imaging.models import CaseBuildJob, SimulationCase, Study
from clinical_shell.imaging.schemas import CaseBuildIn, CaseBuildOut, SimulationCaseOut, StudyOut
from clinical_shell.records.access import access_patient, record_scope

router = Router(tags=["imaging / 影像"])
# a study's key images: /studies/{study_id}/key-images
router.add_router("", key_images_api.router)
# a case's proposed parts and confirmed annotations: /cases/{case_id}/annotations
router.add_router("", annotation_api.router)

ERRORS: dict[int, type[Schema]] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
}


class PatientParams(Schema):
    patient_id: int


@router.get(
    "/studies",
    response={200: list[StudyOut], **ERRORS},
    summary="A patient's studies / 患者的影像检查",
)
@paginate(PageNumberPagination)
def list_studies(request: HttpRequest, params: Query[PatientParams]) -> QuerySet[Study]:
    patient = access_patient(request.user, params.patient_id, reason="api imaging list")
    return selectors.studies_of_patient(patient.pk, record_scope(request.user, patient.pk))


@router.get("/studies/{study_id}", response={200: StudyOut, **ERRORS}, summary="Study / 检查详情")
def get_study(request: HttpRequest, study_id: int) -> Study:
    study = access_study(request.user, study_id, reason="api study")
    return selectors.study_with_series(study.pk)


class SliceGeometryOut(Schema):
    instance_id: int
    position_mm: list[float]
    rescale_slope: float
    rescale_intercept: float


class SeriesGeometryOut(Schema):
    uniform: bool
    slices: list[SliceGeometryOut]


@router.get(
    "/series/{series_id}/geometry",
    response={200: SeriesGeometryOut, **ERRORS},
    summary="Where each slice lies, for the viewer / 各层空间位置",
)
def get_series_geometry(request: HttpRequest, series_id: int) -> viewer_geometry.SeriesGeometry:
    """Each slice's Image Position (Patient) and rescale, in viewing order, read from the stored
    headers: the viewer lays out its reformats before the slices arrive. `uniform` is false
    when the slices differ in orientation, pixel spacing or size (the viewer then waits)."""
    series = access_series(request.user, series_id, reason="viewer geometry")
    return viewer_geometry.series_geometry(series)


@router.post(
    "/series/{series_id}/case-builds",
    response={202: CaseBuildOut, **ERRORS},
    summary="Build a simulation case from a CT series / 由 CT 序列构建仿真病例",
)
def create_case_build(
    request: HttpRequest, series_id: int, payload: CaseBuildIn
) -> Status[CaseBuildJob]:
    """Queues the build and returns at once; poll the build (or subscribe to the live topic
    "job.<job_id>") until `status` is done, failed or cancelled. A build estimated to need
    more memory than a job may use is refused (422 "job_too_large")."""
    series = access_series(request.user, series_id, write=True, reason="build case")
    job = services.request_case_build(
        actor=signed_in_user(request), series=series, spacing_mm=payload.spacing_mm
    )
    return Status(202, job)


@router.get(
    "/case-builds/{job_id}",
    response={200: CaseBuildOut, **ERRORS},
    summary="Case build status / 构建进度",
)
def get_case_build(request: HttpRequest, job_id: int) -> CaseBuildJob:
    """Status, progress and, while it waits for a heavy-job slot, its place in line."""
    return access_case_build(request.user, job_id)


@router.post(
    "/case-builds/{job_id}/retry",
    response={202: CaseBuildOut, **ERRORS},
    summary="Retry a failed case build / 重新构建",
)
def retry_case_build(request: HttpRequest, job_id: int) -> Status[CaseBuildJob]:
    """Queues a new job for the failed job's series and spacing; poll the new job."""
    build = access_case_build(request.user, job_id, write=True, reason="retry case build")
    return Status(202, services.retry_case_build(actor=signed_in_user(request), build=build))


@router.post(
    "/case-builds/{job_id}/cancel",
    response={202: CaseBuildOut, **ERRORS},
    summary="Cancel a case build / 取消构建",
)
def cancel_case_build(request: HttpRequest, job_id: int) -> Status[CaseBuildJob]:
    """A queued build is cancelled at once; a running one stops at its next step (poll until
    `status` is cancelled). Nothing it had started to write is kept."""
    build = access_case_build(request.user, job_id, write=True, reason="cancel case build")
    return Status(202, services.cancel_case_build(actor=signed_in_user(request), build=build))


@router.get(
    "/cases",
    response={200: list[SimulationCaseOut], **ERRORS},
    summary="A patient's simulation cases / 患者的仿真病例",
)
@paginate(PageNumberPagination)
def list_cases(request: HttpRequest, params: Query[PatientParams]) -> QuerySet[SimulationCase]:
    patient = access_patient(request.user, params.patient_id, reason="api case list")
    return selectors.cases_of_patient(patient.pk, record_scope(request.user, patient.pk))


@router.get(
    "/cases/{case_id}", response={200: SimulationCaseOut, **ERRORS}, summary="Case / 仿真病例"
)
def get_case(request: HttpRequest, case_id: int) -> SimulationCase:
    return access_case(request.user, case_id)
