"""Reads for the consultation and MDT lists (each item's access is decided in the services)."""

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from clinical_shell.audit import services as audit
from clinical_shell.records.access import clinical_institution_ids
from clinical_shell.referrals.consult_models import Consultation, ExpertSlot, MdtMeeting


def my_consultations(user: User) -> QuerySet[Consultation]:
    """Requests of my institutions, and those sent to me or to a specialty I take requests for."""
    specialties = list(
        ExpertSlot.objects.filter(expert_id=user.pk).values_list("specialty", flat=True).distinct()
    )
    rule = Q(requesting_institution_id__in=clinical_institution_ids(user)) | Q(expert_id=user.pk)
    if specialties:
        rule |= Q(expert__isnull=True, specialty__in=specialties)
    return (
        Consultation.objects.filter(rule)
        .select_related("patient", "requesting_institution", "expert__person")
        .order_by("-created_at", "-id")
    )


def my_meetings(user: User) -> QuerySet[MdtMeeting]:
    return (
        MdtMeeting.objects.filter(Q(chair_id=user.pk) | Q(participants__id=user.pk))
        .distinct()
        .select_related("chair__person", "institution")
        .order_by("-scheduled_at", "-id")
    )


def audit_listed(user: User, rows: list[Consultation]) -> None:
    """A list names patients: it is a read of each of them."""
    audit.record(
        actor=user,
        action="consultation.list",
        detail={"patients": sorted({c.patient_id for c in rows})},
    )
