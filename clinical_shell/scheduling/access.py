"""Who may see and change which booking; every decision audited.

Rules: a booking is patient data, so it is read through the records rule (a clinical role at an
institution in care of the patient: `records.access.access_patient`); it is made, cancelled or
marked performed by someone who writes records at the booking's institution. The quality
office (quality managers of an institution) sees that institution's emergency overrides, with
the patient left out (separation of duties, as in records).
"""

from django.contrib.auth.models import AnonymousUser, User
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import NotFoundError, PermissionDeniedError
from clinical_shell.network.models import Role
from clinical_shell.network.selectors import institution_ids_with_roles
from clinical_shell.records.access import access_patient, clinical_institution_ids
from clinical_shell.scheduling import selectors
from clinical_shell.scheduling.models import Booking


def access_booking(user: User | AnonymousUser, booking_id: int, *, write: bool = False) -> Booking:
    """The booking if `user` may read its patient (write=True: and writes records at its
    institution); the patient access is audited by records, the booking's here."""
    booking = selectors.booking(booking_id)
    if booking is None:
        raise NotFoundError(
            "booking_not_found", _("未找到编号为 %(id)s 的手术预约") % {"id": booking_id}
        )
    access_patient(user, booking.patient_id, write=write, reason="operation booking")
    if write:
        require_booker_at(user, booking.institution_id, target=booking)
    audit.record(
        actor=user,
        action="booking.write" if write else "booking.read",
        patient_id=booking.patient_id,
        target=booking,
    )
    return booking


def booker_institution_ids(user: User | AnonymousUser) -> list[int]:
    return clinical_institution_ids(user, write=True)


def require_booker_at(
    user: User | AnonymousUser, institution_id: int, *, target: object = None
) -> None:
    """Booking at an institution needs a record-writing role there (audited when refused)."""
    if institution_id not in booker_institution_ids(user):
        audit.record(
            actor=user if user.is_authenticated else None,
            action="booking.write",
            success=False,
            target=target,
            detail={"why": "not_booker_here", "institution_id": institution_id},
        )
        raise PermissionDeniedError("not_booker_here", _("您在该机构没有预约手术的权限"))


def quality_institution_ids(user: User | AnonymousUser) -> list[int]:
    if not user.is_authenticated:
        return []
    return institution_ids_with_roles(int(user.pk), frozenset({Role.QUALITY_MANAGER}))


def require_quality_office(user: User | AnonymousUser) -> list[int]:
    """The institutions whose overrides `user` reviews; refused (audited) when none."""
    ids = quality_institution_ids(user)
    if not ids:
        audit.record(
            actor=user if user.is_authenticated else None,
            action="booking.override_review",
            success=False,
            detail={"why": "not_quality_manager"},
        )
        raise PermissionDeniedError("not_quality_manager", _("只有质控管理员可以查看急诊越权手术"))
    return ids
