"""Every write on bookings, audited: book (checked against privileges and the licence, or an
emergency override with its reason), cancel, mark performed, and flag the bookings a lapsed
privilege no longer covers (`flag_bookings_for`, called by credentialing; `flag_lapsed_bookings`,
the daily sweep that catches expiries).

Preconditions of the writes taken by pages and the API: the caller opened the patient through
`records.access.access_patient` (write=True) and checked the actor writes records at the
booking's institution (`access.require_booker_at`).
"""

from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinical_shell.audit import services as audit
from clinical_shell.credentialing.services import check_privilege, institution_licensed
from clinical_shell.errors import DomainError
from clinical_shell.network.models import Institution, Role
from clinical_shell.network.selectors import institution_ids_with_roles
from clinical_shell.notifications.services import notify
from clinical_shell.records.models import Patient
from clinical_shell.scheduling import selectors
from clinical_shell.scheduling.models import Booking

# refusals no emergency may override: the technique is banned or unknown (Order No. 1, art. 9)
NOT_OVERRIDABLE = frozenset({"technique_prohibited", "unknown_technique", "unknown_grade"})
OPERATING_ROLES = frozenset({Role.SURGEON, Role.RESIDENT})


class BookingInvalidError(DomainError):
    """The booking's own fields are wrong; `field_errors` names them (form and API)."""

    status = 422

    def __init__(self, field_errors: dict[str, str]) -> None:
        super().__init__("booking_invalid", " ".join(field_errors.values()))
        self.field_errors = field_errors


class BookingRefusedError(DomainError):
    """The surgeon's privileges or the institution's licence do not allow the operation."""

    status = 409

    def __init__(self, code: str, message: str, *, overridable: bool) -> None:
        super().__init__(code, message)
        self.overridable = overridable


@dataclass(frozen=True)
class BookingIn:
    patient: Patient
    procedure_name: str
    grade: int
    surgeon: User
    institution: Institution
    scheduled_on: date
    procedure_code: str = ""
    technique_code: str = ""
    emergency_override: bool = False
    override_reason: str = ""


@dataclass(frozen=True)
class BookingCheck:
    """What the privilege and licence checks said about an operation."""

    ok: bool
    code: str
    reason: str
    grade_privilege_id: int | None = None
    technique_privilege_id: int | None = None


def check_booking(
    *, surgeon: User, institution: Institution, grade: int, technique_code: str, on: date
) -> BookingCheck:
    """The institution's licence first (no surgeon can do what the hospital may not), then the
    surgeon's grade privilege, then the technique privilege; the first refusal is the reason."""
    technique = technique_code or None
    licensed = institution_licensed(institution, technique=technique, grade=grade)
    if not licensed.ok:
        return BookingCheck(False, licensed.reason_code, licensed.reason)
    by_grade = check_privilege(surgeon, technique=None, grade=grade, institution=institution, on=on)
    if not by_grade.ok:
        return BookingCheck(False, by_grade.reason_code, by_grade.reason)
    technique_privilege_id = None
    if technique is not None:
        by_technique = check_privilege(
            surgeon, technique=technique, grade=None, institution=institution, on=on
        )
        if not by_technique.ok:
            return BookingCheck(False, by_technique.reason_code, by_technique.reason)
        technique_privilege_id = by_technique.privilege_id
    return BookingCheck(
        True,
        "ok",
        _("授权有效"),
        grade_privilege_id=by_grade.privilege_id,
        technique_privilege_id=technique_privilege_id,
    )


def _validate(data: BookingIn, *, today: date) -> None:
    errors: dict[str, str] = {}
    if not data.procedure_name.strip():
        errors["procedure_name"] = _("请填写手术名称")
    if not 1 <= data.grade <= 4:
        errors["grade"] = _("手术级别应为 1-4 级")
    if data.scheduled_on < today:
        errors["scheduled_on"] = _("手术日期不能早于今天")
    operating_at = institution_ids_with_roles(int(data.surgeon.pk), OPERATING_ROLES)
    if data.institution.pk not in operating_at:
        errors["surgeon"] = _("该医生在%(inst)s没有外科医生或住院医师角色") % {
            "inst": data.institution.name
        }
    if data.emergency_override and not data.override_reason.strip():
        errors["override_reason"] = _("急诊越权手术必须填写原因")
    if errors:
        raise BookingInvalidError(errors)


def _url(booking: Booking) -> str:
    return reverse("scheduling:booking_detail", args=[booking.pk])


@transaction.atomic
def book_operation(*, actor: User, data: BookingIn) -> Booking:
    """Book the operation when the checks allow it; otherwise raise `BookingRefusedError` with the
    exact reason, unless the actor declared an emergency with a reason (then the booking is
    made, the refusal kept on it, audited and sent to the institution's quality managers)."""
    _validate(data, today=timezone.localdate())
    check = check_booking(
        surgeon=data.surgeon,
        institution=data.institution,
        grade=data.grade,
        technique_code=data.technique_code,
        on=data.scheduled_on,
    )
    what = {
        "patient_id": data.patient.pk,
        "surgeon_id": data.surgeon.pk,
        "institution_id": data.institution.pk,
        "grade": data.grade,
        "technique": data.technique_code,
        "scheduled_on": data.scheduled_on.isoformat(),
    }
    overridable = check.code not in NOT_OVERRIDABLE
    if not check.ok and not (data.emergency_override and overridable):
        # audited by the caller (`book_or_refuse`), after this transaction rolled back
        raise BookingRefusedError(check.code, check.reason, overridable=overridable)
    override = not check.ok
    booking = Booking.objects.create(
        patient=data.patient,
        procedure_name=data.procedure_name.strip(),
        procedure_code=data.procedure_code.strip(),
        grade=data.grade,
        technique_code=data.technique_code,
        surgeon=data.surgeon,
        institution=data.institution,
        scheduled_on=data.scheduled_on,
        grade_privilege_id=check.grade_privilege_id,
        technique_privilege_id=check.technique_privilege_id,
        emergency_override=override,
        override_reason=data.override_reason.strip() if override else "",
        overridden_code=check.code if override else "",
        overridden_reason=check.reason[:500] if override else "",
        booked_by=actor,
    )
    audit.record(
        actor=actor,
        action="booking.emergency_override" if override else "booking.create",
        patient_id=data.patient.pk,
        target=booking,
        reason=booking.override_reason,
        detail={**what, "check": check.code},
    )
    if override:
        reviewers = selectors.quality_reviewers(data.institution.pk)
        url = reverse("scheduling:override_review")
        notify(
            reviewers,
            title=format_lazy(gettext_lazy("急诊越权手术预约 #{}，待质控复核"), booking.pk),
            body=format_lazy(gettext_lazy("被越过的限制：{}"), check.reason),
            url=url,
            kind="scheduling.override",
        )
    return booking


def record_refusal(*, actor: User, data: BookingIn, refusal: BookingRefusedError) -> None:
    """Audit a refused booking (called after the refusing transaction rolled back)."""
    audit.record(
        actor=actor,
        action="booking.refused",
        success=False,
        patient_id=data.patient.pk,
        detail={
            "code": refusal.code,
            "surgeon_id": data.surgeon.pk,
            "institution_id": data.institution.pk,
            "grade": data.grade,
            "technique": data.technique_code,
            "scheduled_on": data.scheduled_on.isoformat(),
            "emergency_requested": data.emergency_override,
        },
    )


def book_or_refuse(*, actor: User, data: BookingIn) -> Booking:
    """`book_operation`, with a refusal audited even though nothing was booked."""
    try:
        return book_operation(actor=actor, data=data)
    except BookingRefusedError as refusal:
        record_refusal(actor=actor, data=data, refusal=refusal)
        raise


@transaction.atomic
def cancel_booking(*, actor: User, booking: Booking, reason: str) -> Booking:
    locked = Booking.objects.select_for_update().get(pk=booking.pk)
    if not locked.is_open:
        raise DomainError("booking_closed", _("该预约已完成或已取消"))
    if not reason.strip():
        raise BookingInvalidError({"reason": _("取消预约须说明原因")})
    locked.state = Booking.State.CANCELLED
    locked.cancel_reason = reason.strip()[:500]
    locked.save(update_fields=["state", "cancel_reason", "updated_at"])
    audit.record(
        actor=actor,
        action="booking.cancel",
        patient_id=locked.patient_id,
        target=locked,
        reason=locked.cancel_reason,
    )
    return locked


@transaction.atomic
def mark_performed(*, actor: User, booking: Booking) -> Booking:
    """A flagged booking cannot be performed: it is cancelled, or booked anew (checked again)."""
    locked = Booking.objects.select_for_update().get(pk=booking.pk)
    if locked.state != Booking.State.BOOKED:
        raise DomainError("booking_not_booked", _("只有状态为已预约的手术可以标记为完成"))
    locked.state = Booking.State.PERFORMED
    locked.save(update_fields=["state", "updated_at"])
    audit.record(
        actor=actor, action="booking.performed", patient_id=locked.patient_id, target=locked
    )
    return locked


def _flag(booking: Booking, *, code: str, reason: str, actor: User | None) -> None:
    booking.state = Booking.State.FLAGGED
    booking.flag_code = code[:48]
    booking.flag_reason = reason[:500]
    booking.flagged_at = timezone.now()
    booking.save(update_fields=["state", "flag_code", "flag_reason", "flagged_at", "updated_at"])
    audit.record(
        actor=actor,
        action="booking.flag",
        patient_id=booking.patient_id,
        target=booking,
        reason=booking.flag_reason,
        detail={"code": booking.flag_code},
    )
    notify(
        [booking.surgeon, booking.booked_by],
        title=format_lazy(gettext_lazy("手术预约 #{} 已被标记：授权已失效"), booking.pk),
        body=reason,
        url=_url(booking),
        kind="scheduling.flag",
    )


@transaction.atomic
def flag_bookings_for(
    privilege_id: int,
    reason: str,
    *,
    code: str = "privilege_lapsed",
    actor: User | None = None,
) -> list[int]:
    """Flag the bookings not yet performed that rested on `privilege_id` (suspended, revoked or
    shortened): returns their ids. A booking another valid privilege still covers stays booked
    and now names that privilege. Call it after changing the privilege, in the same transaction.
    """
    flagged: list[int] = []
    bookings = (
        Booking.objects.select_for_update()
        .filter(state=Booking.State.BOOKED)
        .filter(Q(grade_privilege_id=privilege_id) | Q(technique_privilege_id=privilege_id))
        .select_related("surgeon", "booked_by", "institution")
        .order_by("id")
    )
    for booking in bookings:
        check = check_booking(
            surgeon=booking.surgeon,
            institution=booking.institution,
            grade=booking.grade,
            technique_code=booking.technique_code,
            on=booking.scheduled_on,
        )
        still_covered = check.ok and privilege_id not in (
            check.grade_privilege_id,
            check.technique_privilege_id,
        )
        if still_covered:
            booking.grade_privilege_id = check.grade_privilege_id
            booking.technique_privilege_id = check.technique_privilege_id
            booking.save(
                update_fields=["grade_privilege_id", "technique_privilege_id", "updated_at"]
            )
            continue
        _flag(booking, code=code, reason=reason, actor=actor)
        flagged.append(int(booking.pk))
    return flagged


@transaction.atomic
def flag_lapsed_bookings(*, today: date | None = None) -> list[int]:
    """The daily sweep: check every booking not yet performed (emergency overrides aside, they
    were booked against a refusal) again on its own date, and flag those no longer allowed, with
    the check's reason. Catches expiries, which no one calls `flag_bookings_for` for."""
    day = today or timezone.localdate()
    flagged: list[int] = []
    bookings = (
        Booking.objects.select_for_update()
        .filter(state=Booking.State.BOOKED, emergency_override=False, scheduled_on__gte=day)
        .select_related("surgeon", "booked_by", "institution")
        .order_by("id")
    )
    for booking in bookings:
        check = check_booking(
            surgeon=booking.surgeon,
            institution=booking.institution,
            grade=booking.grade,
            technique_code=booking.technique_code,
            on=booking.scheduled_on,
        )
        if not check.ok:
            _flag(booking, code=check.code, reason=check.reason, actor=None)
            flagged.append(int(booking.pk))
    return flagged
