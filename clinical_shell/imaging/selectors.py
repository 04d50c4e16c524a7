"""Reads of the imaging index for pages, the API and other apps (access checked by the caller)."""

from django.db.models import Count, Prefetch, QuerySet

from clinical_shell.imaging.models import Instance, Series, Study


def studies_of_patient(patient_id: int) -> QuerySet[Study]:
    series = Series.objects.annotate(instance_count=Count("instances")).order_by("number", "id")
    return (
        Study.objects.filter(patient_id=patient_id)
        .select_related("uploaded_at")
        .prefetch_related(Prefetch("series", queryset=series))
        .order_by("-study_date", "-id")
    )


def waiting_studies(institution_ids: list[int]) -> QuerySet[Study]:
    """Studies uploaded at these institutions that wait to be linked to a patient."""
    return (
        Study.objects.filter(patient__isnull=True, uploaded_at_id__in=institution_ids)
        .select_related("uploaded_at")
        .annotate(series_count=Count("series", distinct=True))
        .order_by("-created_at", "-id")
    )


def instances_in_viewing_order(series_id: int) -> QuerySet[Instance]:
    # CT slices by position along the normal, radiographs and the rest by instance number
    return Instance.objects.filter(series_id=series_id).order_by(
        "slice_position_mm", "number", "id"
    )
