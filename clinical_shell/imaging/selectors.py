"""Reads of the imaging index for pages, the API and other apps (access checked by the caller)."""

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils.translation import gettext as _

from clinical_shell.errors import NotFoundError
from clinical_shell.imaging.models import (
    CaseBuildJob,
    Instance,
    Series,
    SimulationCase,
    Study,
    StudyLinkRequest,
)
from clinical_shell.records.access import RecordScope


def _visible_studies(scope: RecordScope, prefix: str = "") -> Q:
    # a study belongs to the institution that uploaded it (records.access.RecordScope)
    return Q(**{f"{prefix}uploaded_at_id__in": sorted(scope.own)}) | Q(
        **{f"{prefix}pk__in": scope.shared_ids("study")}
    )


def studies_of_patient(patient_id: int, scope: RecordScope) -> QuerySet[Study]:
    """The patient's studies the reader sees: uploaded at their institutions or shared."""
    return studies_of_any(
        Study.objects.filter(_visible_studies(scope), patient_id=patient_id)
    ).order_by("-study_date", "-id")


def waiting_studies(institution_ids: list[int]) -> QuerySet[Study]:
    """Studies uploaded at these institutions that wait to be linked to a patient."""
    pending = StudyLinkRequest.objects.filter(
        status=StudyLinkRequest.Status.PENDING
    ).select_related("requested_by__person")
    return (
        Study.objects.filter(patient__isnull=True, uploaded_at_id__in=institution_ids)
        .select_related("uploaded_at")
        .prefetch_related(Prefetch("link_requests", queryset=pending, to_attr="pending_links"))
        .annotate(series_count=Count("series", distinct=True))
        .order_by("-created_at", "-id")
    )


def study_link_request(link_request_id: int) -> StudyLinkRequest:
    """A study link request, or 404."""
    found = StudyLinkRequest.objects.filter(pk=link_request_id).first()
    if found is None:
        raise NotFoundError(
            "study_link_request_not_found",
            _("未找到编号为 %(request_id)s 的关联申请") % {"request_id": link_request_id},
        )
    return found


def instances_in_viewing_order(series_id: int) -> QuerySet[Instance]:
    # CT slices by position along the normal, radiographs and the rest by instance number
    return Instance.objects.filter(series_id=series_id).order_by(
        "slice_position_mm", "number", "id"
    )


def viewer_series(study_ids: list[int]) -> dict[int, int]:
    """The series each study opens on in the viewer (its first by number): study id -> series
    id; a study without series is absent."""
    first: dict[int, int] = {}
    rows = Series.objects.filter(study_id__in=study_ids).order_by("number", "id")
    for study_id, series_id in rows.values_list("study_id", "id"):
        first.setdefault(study_id, series_id)
    return first


def study_with_series(study_id: int) -> Study:
    """One study with its series and their instance counts (the caller checked access)."""
    return studies_of_any(Study.objects.filter(pk=study_id)).get()


def studies_of_any(studies: QuerySet[Study]) -> QuerySet[Study]:
    series = Series.objects.annotate(instance_count=Count("instances")).order_by("number", "id")
    return studies.select_related("uploaded_at").prefetch_related(
        Prefetch("series", queryset=series)
    )


def cases_of_patient(patient_id: int, scope: RecordScope) -> QuerySet[SimulationCase]:
    """The patient's simulation cases built from studies the reader sees."""
    return (
        SimulationCase.objects.filter(
            _visible_studies(scope, "series__study__"), patient_id=patient_id
        )
        .select_related("series", "job__job")
        .order_by("-created_at", "-id")
    )


def case_builds_of_patient(
    patient_id: int, scope: RecordScope, *, limit: int = 20
) -> QuerySet[CaseBuildJob]:
    return (
        CaseBuildJob.objects.filter(
            _visible_studies(scope, "series__study__"), patient_id=patient_id
        )
        .select_related("series", "job", "requested_by__person")
        .order_by("-requested_at", "-id")[:limit]
    )


def case_build_for_page(build_id: int) -> CaseBuildJob:
    """One build with its job, series, case, requester and retries (the caller checked access)."""
    return (
        CaseBuildJob.objects.select_related(
            "job", "series__study__patient", "case", "requested_by__person"
        )
        .prefetch_related("retries__job")
        .get(pk=build_id)
    )
