"""Reads of bookings for pages, the API and other apps (quality review: `overrides`)."""

from datetime import date, datetime

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from clinical_shell.network.models import Membership, Role
from clinical_shell.records.models import CareRelationship
from clinical_shell.scheduling.models import Booking


def _with_people(bookings: QuerySet[Booking]) -> QuerySet[Booking]:
    return bookings.select_related("patient", "surgeon__person", "institution", "booked_by__person")


def visible_bookings(*, clinical_institution_ids: list[int]) -> QuerySet[Booking]:
    """Bookings whose patient is in care at one of the user's clinical institutions (the records
    rule: one sees the operations of the patients one may see, nothing else)."""
    in_care = CareRelationship.objects.filter(institution_id__in=clinical_institution_ids).values(
        "patient_id"
    )
    return _with_people(Booking.objects.filter(patient_id__in=in_care))


def filter_bookings(
    bookings: QuerySet[Booking],
    *,
    state: str = "",
    institution_id: int | None = None,
    surgeon_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    override: bool | None = None,
) -> QuerySet[Booking]:
    if state:
        bookings = bookings.filter(state=state)
    if institution_id is not None:
        bookings = bookings.filter(institution_id=institution_id)
    if surgeon_id is not None:
        bookings = bookings.filter(surgeon_id=surgeon_id)
    if date_from is not None:
        bookings = bookings.filter(scheduled_on__gte=date_from)
    if date_to is not None:
        bookings = bookings.filter(scheduled_on__lte=date_to)
    if override is not None:
        bookings = bookings.filter(emergency_override=override)
    return bookings


def booking(booking_id: int) -> Booking | None:
    return _with_people(Booking.objects.filter(pk=booking_id)).first()


def overrides(since: datetime, institution: int | None = None) -> QuerySet[Booking]:
    """Emergency overrides booked at or after `since` (optionally at one institution id), newest
    first: what the quality office reviews. Carries no access rule: callers scope it."""
    found = Booking.objects.filter(emergency_override=True, created_at__gte=since)
    if institution is not None:
        found = found.filter(institution_id=institution)
    return found.select_related("surgeon__person", "institution", "booked_by__person").order_by(
        "-created_at", "-id"
    )


def quality_reviewers(institution_id: int) -> list[User]:
    """The quality managers of the institution (who are told of its overrides)."""
    members = Membership.objects.filter(
        institution_id=institution_id, role=Role.QUALITY_MANAGER, active=True
    ).select_related("person__user")
    return [m.person.user for m in members]


def surgeons_at(institution_ids: list[int]) -> QuerySet[User]:
    """People who may operate at these institutions (surgeon or resident role there)."""
    return (
        User.objects.filter(
            person__memberships__institution_id__in=institution_ids,
            person__memberships__role__in=[Role.SURGEON, Role.RESIDENT],
            person__memberships__active=True,
        )
        .select_related("person")
        .distinct()
        .order_by("person__full_name", "id")
    )


def open_state_q() -> Q:
    return Q(state__in=Booking.OPEN_STATES)
