"""`/api/v1/scheduling`: bookings under the same access rules and audit as the pages."""

from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.audit import services as audit
from clinical_shell.errors import NotFoundError, ProblemOut
from clinical_shell.network.models import Institution
from clinical_shell.records.access import access_patient, clinical_institution_ids
from clinical_shell.scheduling import selectors, services
from clinical_shell.scheduling.access import (
    access_booking,
    require_booker_at,
    require_quality_office,
)
from clinical_shell.scheduling.models import Booking
from clinical_shell.scheduling.schemas import (
    BookingIn,
    BookingOut,
    BookingParams,
    CancelIn,
    CheckOut,
    CheckParams,
    OverrideOut,
)

router = Router(tags=["scheduling / 手术预约"])

ERRORS: dict[int, type[Schema]] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
}


def _institution(institution_id: int) -> Institution:
    institution = Institution.objects.filter(pk=institution_id).first()
    if institution is None:
        raise NotFoundError(
            "institution_not_found",
            _("未找到编号为 %(institution_id)s 的机构") % {"institution_id": institution_id},
        )
    return institution


def _surgeon(user_id: int) -> User:
    surgeon = User.objects.filter(pk=user_id, is_active=True).first()
    if surgeon is None:
        raise NotFoundError("surgeon_not_found", _("未找到编号为 %(id)s 的医生") % {"id": user_id})
    return surgeon


@router.get("", response={200: list[BookingOut], **ERRORS}, summary="Bookings / 手术预约")
@paginate(PageNumberPagination)
def list_bookings(request: HttpRequest, params: Query[BookingParams]) -> QuerySet[Booking]:
    """Bookings of the patients you may see (in care at your institutions), soonest first."""
    audit.record(actor=signed_in_user(request), action="booking.list", detail={"via": "api"})
    return selectors.filter_bookings(
        selectors.visible_bookings(clinical_institution_ids=clinical_institution_ids(request.user)),
        state=params.state,
        institution_id=params.institution_id,
        surgeon_id=params.surgeon_id,
        date_from=params.date_from,
        date_to=params.date_to,
        override=params.override,
    )


@router.post("", response={201: BookingOut, **ERRORS}, summary="Book an operation / 预约手术")
def create_booking(request: HttpRequest, payload: BookingIn) -> Status[Booking]:
    """Refused (409, the exact reason as `detail`, the rule as `code`) when the surgeon lacks a
    valid privilege or the institution is not licensed; `emergency_override` with an
    `override_reason` books it anyway (recorded, sent to quality review), except for prohibited
    or unknown techniques."""
    require_booker_at(request.user, payload.institution_id)
    patient = access_patient(
        request.user, payload.patient_id, write=True, reason="operation booking"
    )
    booking = services.book_or_refuse(
        actor=signed_in_user(request),
        data=services.BookingIn(
            patient=patient,
            procedure_name=payload.procedure_name,
            procedure_code=payload.procedure_code,
            grade=payload.grade,
            technique_code=payload.technique_code,
            surgeon=_surgeon(payload.surgeon_id),
            institution=_institution(payload.institution_id),
            scheduled_on=payload.scheduled_on,
            emergency_override=payload.emergency_override,
            override_reason=payload.override_reason,
        ),
    )
    return Status(201, booking)


@router.get(
    "/check",
    response={200: CheckOut, **ERRORS},
    url_name="scheduling_check",
    summary="Check a booking before making it / 预约前检查授权",
)
def check(request: HttpRequest, params: Query[CheckParams]) -> CheckOut:
    """What booking this operation would meet (the booking form asks as it is filled in)."""
    require_booker_at(request.user, params.institution_id)
    result = services.check_booking(
        surgeon=_surgeon(params.surgeon_id),
        institution=_institution(params.institution_id),
        grade=params.grade,
        technique_code=params.technique_code,
        on=params.on,
    )
    return CheckOut(
        ok=result.ok,
        code=result.code,
        reason=result.reason,
        overridable=result.code not in services.NOT_OVERRIDABLE,
    )


@router.get(
    "/overrides",
    response={200: list[OverrideOut], **ERRORS},
    summary="Emergency overrides for quality review / 急诊越权复核",
)
@paginate(PageNumberPagination)
def list_overrides(request: HttpRequest, since: datetime | None = None) -> list[Booking]:
    """Emergency overrides at the institutions where you are a quality manager (90 days by
    default), newest first; without patients."""
    institution_ids = require_quality_office(request.user)
    start = since or timezone.now() - timedelta(days=90)
    audit.record(
        actor=signed_in_user(request), action="booking.override_review", detail={"via": "api"}
    )
    found = [b for i in institution_ids for b in selectors.overrides(start, institution=i)]
    return sorted(found, key=lambda b: (b.created_at, b.pk), reverse=True)


@router.get("/{booking_id}", response={200: BookingOut, **ERRORS}, summary="A booking / 预约")
def get_booking(request: HttpRequest, booking_id: int) -> Booking:
    return access_booking(request.user, booking_id)


@router.post(
    "/{booking_id}/cancel", response={200: BookingOut, **ERRORS}, summary="Cancel / 取消预约"
)
def cancel(request: HttpRequest, booking_id: int, payload: CancelIn) -> Booking:
    booking = access_booking(request.user, booking_id, write=True)
    return services.cancel_booking(
        actor=signed_in_user(request), booking=booking, reason=payload.reason
    )


@router.post(
    "/{booking_id}/performed",
    response={200: BookingOut, **ERRORS},
    summary="Mark performed / 标记手术已完成",
)
def performed(request: HttpRequest, booking_id: int) -> Booking:
    booking = access_booking(request.user, booking_id, write=True)
    return services.mark_performed(actor=signed_in_user(request), booking=booking)
