"""Reads of imaging reports: the radiologist's work list, a study's report, a patient's reports."""

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import (
    Case,
    Exists,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from clinical_shell.audit import services as audit
from clinical_shell.imaging.models import Series, Study
from clinical_shell.imaging.report_access import radiologist_institution_ids
from clinical_shell.imaging.report_models import (
    URGENCY_RANK,
    ImagingReport,
    ImagingReportVersion,
    Urgency,
)
from clinical_shell.records.access import RecordScope
from clinical_shell.records.models import CareRelationship

State = ImagingReport.State
# the work-list filter "state": not started yet, or the report's own unsigned state
WORKLIST_STATES = ("none", State.DRAFT, State.PRELIMINARY)


@dataclass(frozen=True)
class WorklistFilter:
    q: str = ""  # part of the patient's name, pinyin or pinyin initials
    urgency: str = ""
    state: str = ""  # one of WORKLIST_STATES, or "" for all


def worklist(user: User, f: WorklistFilter | None = None) -> QuerySet[Study]:
    """Studies waiting for a signed report at the institutions where `user` is a radiologist.

    A study is on the list when it is linked to a patient, was uploaded by one of those
    institutions, that institution treats the patient (the rule for reporting, see
    `report_access`), and it has no signed report. Ordered by urgency (emergency first; a study
    with no report yet counts as routine), then by waiting time (oldest upload first).
    Each row carries `report_urgency`, `report_state`, `report_id` (None without a report) and
    `first_series_id`, and has `patient` and `uploaded_at` loaded. The caller audits what it shows
    (`audit_listed`).
    """
    f = f or WorklistFilter()
    in_care = CareRelationship.objects.filter(
        patient_id=OuterRef("patient_id"), institution_id=OuterRef("uploaded_at_id")
    )
    report = ImagingReport.objects.filter(study_id=OuterRef("pk"))
    first_series = Series.objects.filter(study_id=OuterRef("pk")).order_by("number", "pk")
    urgency = Coalesce(Subquery(report.values("urgency")[:1]), Value(Urgency.ROUTINE))
    studies = (
        Study.objects.filter(
            uploaded_at_id__in=radiologist_institution_ids(user),
            patient__isnull=False,
            patient__deleted_at__isnull=True,
        )
        .filter(Exists(in_care))
        .exclude(imaging_report__state__in=[State.SIGNED, State.AMENDED])
        .annotate(
            report_id=Subquery(report.values("pk")[:1]),
            report_state=Subquery(report.values("state")[:1]),
            report_urgency=urgency,
            urgency_rank=Case(
                *[When(report_urgency=u, then=Value(rank)) for u, rank in URGENCY_RANK.items()],
                default=Value(len(URGENCY_RANK)),
                output_field=IntegerField(),
            ),
            first_series_id=Subquery(first_series.values("pk")[:1]),
            first_modality=Subquery(first_series.values("modality")[:1]),
        )
        .select_related("patient", "uploaded_at")
    )
    q = f.q.strip()
    if q:
        studies = studies.filter(
            Q(patient__name__icontains=q)
            | Q(patient__name_pinyin__icontains=q.lower())
            | Q(patient__name_pinyin_initials__istartswith=q.lower())
        )
    if f.urgency in Urgency.values:
        studies = studies.filter(report_urgency=f.urgency)
    if f.state == "none":
        studies = studies.filter(report_id__isnull=True)
    elif f.state in (State.DRAFT, State.PRELIMINARY):
        studies = studies.filter(report_state=f.state)
    return studies.order_by("urgency_rank", "created_at", "pk")


def audit_listed(user: User, studies: list[Study]) -> None:
    """The work list names patients: one audit event listing the studies shown."""
    audit.record(
        actor=user,
        action="imaging_report.worklist",
        detail={
            "study_ids": [s.pk for s in studies],
            "patient_ids": sorted({s.patient_id for s in studies if s.patient_id is not None}),
            "rows": len(studies),
        },
    )


def published_report(study_id: int) -> ImagingReport | None:
    """The study's report when others may read it (preliminary, signed, amended), for the page
    that shows it beside the images (caller has checked access to the study); one query."""
    return (
        ImagingReport.objects.select_related("signed_by__person")
        .filter(study_id=study_id, state__in=[State.PRELIMINARY, State.SIGNED, State.AMENDED])
        .first()
    )


def report_of_study(study_id: int) -> ImagingReport | None:
    """The study's report with its signed versions (caller has checked access to the study)."""
    return (
        ImagingReport.objects.select_related("author__person", "signed_by__person", "institution")
        .prefetch_related(
            Prefetch(
                "versions",
                queryset=ImagingReportVersion.objects.select_related("signed_by__person").order_by(
                    "-number"
                ),
            )
        )
        .filter(study_id=study_id)
        .first()
    )


def first_series_id(study_id: int) -> int | None:
    """The series the viewer opens first for this study."""
    return (
        Series.objects.filter(study_id=study_id)
        .order_by("number", "pk")
        .values_list("pk", flat=True)
        .first()
    )


def reports_of_patient(patient_id: int, scope: RecordScope) -> QuerySet[ImagingReport]:
    """The patient's released reports (preliminary, signed, amended) on studies the reader sees
    (`scope`: their institutions' and those shared with them), newest change first, for the
    patient's timeline. Precondition: the caller opened the patient (`access_patient`)."""
    return (
        ImagingReport.objects.filter(
            Q(study__uploaded_at_id__in=sorted(scope.own))
            | Q(study_id__in=scope.shared_ids("study")),
            study__patient_id=patient_id,
            state__in=[State.PRELIMINARY, State.SIGNED, State.AMENDED],
        )
        .select_related("study", "signed_by__person", "author__person", "institution")
        .order_by("-updated_at", "-pk")
    )
