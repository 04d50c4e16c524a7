"""Booking pages: the list (filters, pages), the booking form, a booking, the quality office's
list of emergency overrides. Thin: access, one service or selector, render."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError
from clinical_shell.records.access import access_patient, clinical_institution_ids
from clinical_shell.records.models import Patient
from clinical_shell.scheduling import selectors, services
from clinical_shell.scheduling.access import (
    access_booking,
    booker_institution_ids,
    require_booker_at,
    require_quality_office,
)
from clinical_shell.scheduling.forms import BookingFilterForm, BookingForm, CancelForm

PAGE_SIZE = 20
OVERRIDE_REVIEW_DAYS = 90


@login_required
@require_http_methods(["GET"])
def booking_list(request: HttpRequest) -> HttpResponse:
    filters = BookingFilterForm(request.GET or None)
    data = filters.cleaned_data if filters.is_valid() else {}
    bookings = selectors.filter_bookings(
        selectors.visible_bookings(clinical_institution_ids=clinical_institution_ids(request.user)),
        state=data.get("state") or "",
        date_from=data.get("date_from"),
        date_to=data.get("date_to"),
        override=True if data.get("override") else None,
    )
    page = Paginator(bookings, PAGE_SIZE).get_page(request.GET.get("page"))
    # a list of bookings names patients: one audit event per page shown
    audit.record(
        actor=signed_in_user(request),
        action="booking.list",
        detail={"page": page.number, "shown": [b.pk for b in page.object_list]},
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "scheduling/booking_list.html",
        {
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
            "can_book": bool(booker_institution_ids(request.user)),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def booking_new(request: HttpRequest) -> HttpResponse:
    institution_ids = booker_institution_ids(request.user)
    require_booker_at(request.user, institution_ids[0] if institution_ids else -1)
    initial: dict[str, object] = {"scheduled_on": timezone.localdate() + timedelta(days=1)}
    if request.GET.get("patient", "").isdigit():
        initial["patient"] = int(request.GET["patient"])
    if len(institution_ids) == 1:
        initial["institution"] = institution_ids[0]
    form = BookingForm(request.POST or None, initial=initial, institution_ids=institution_ids)
    refusal: services.BookingRefusedError | None = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        require_booker_at(request.user, data["institution"].pk)
        try:
            patient = access_patient(
                request.user, data["patient"], write=True, reason="operation booking"
            )
        except DomainError as exc:
            form.add_error("patient", exc.message)
        else:
            outcome = _book(request, form, patient)
            if isinstance(outcome, HttpResponse):
                return outcome
            refusal = outcome
    form.mark_invalid()
    failed = request.method == "POST"
    return render(
        request,
        "scheduling/booking_form.html",
        {"form": form, "refusal": refusal},
        status=409 if refusal is not None else 422 if failed else 200,
    )


def _book(
    request: HttpRequest, form: BookingForm, patient: Patient
) -> "services.BookingRefusedError | HttpResponse | None":
    """Book from a valid form: the booking's page, the refusal, or None (errors on the form)."""
    data = form.cleaned_data
    booking_in = services.BookingIn(
        patient=patient,
        procedure_name=data["procedure_name"],
        procedure_code=data["procedure_code"],
        grade=data["grade"],
        technique_code=data["technique_code"] or "",
        surgeon=data["surgeon"],
        institution=data["institution"],
        scheduled_on=data["scheduled_on"],
        emergency_override=data["emergency_override"],
        override_reason=data["override_reason"],
    )
    try:
        booking = services.book_or_refuse(actor=signed_in_user(request), data=booking_in)
    except services.BookingInvalidError as exc:
        for name, message in exc.field_errors.items():
            form.add_error(name if name in form.fields else None, message)
        return None
    except services.BookingRefusedError as exc:
        return exc
    return redirect("scheduling:booking_detail", booking_id=booking.pk)


@login_required
@require_http_methods(["GET"])
def booking_detail(request: HttpRequest, booking_id: int) -> HttpResponse:
    booking = access_booking(request.user, booking_id)
    can_write = booking.institution_id in booker_institution_ids(request.user)
    return render(
        request,
        "scheduling/booking_detail.html",
        {"booking": booking, "can_write": can_write, "cancel_form": CancelForm()},
    )


@login_required
@require_http_methods(["POST"])
def booking_cancel(request: HttpRequest, booking_id: int) -> HttpResponse:
    booking = access_booking(request.user, booking_id, write=True)
    form = CancelForm(request.POST)
    if form.is_valid():
        services.cancel_booking(
            actor=signed_in_user(request), booking=booking, reason=form.cleaned_data["reason"]
        )
        return redirect("scheduling:booking_detail", booking_id=booking.pk)
    form.mark_invalid()
    return render(
        request,
        "scheduling/booking_detail.html",
        {"booking": booking, "can_write": True, "cancel_form": form},
        status=422,
    )


@login_required
@require_http_methods(["POST"])
def booking_performed(request: HttpRequest, booking_id: int) -> HttpResponse:
    booking = access_booking(request.user, booking_id, write=True)
    services.mark_performed(actor=signed_in_user(request), booking=booking)
    return redirect("scheduling:booking_detail", booking_id=booking.pk)


@login_required
@require_http_methods(["GET"])
def override_review(request: HttpRequest) -> HttpResponse:
    """The quality office's list: emergency overrides at its institutions, newest first."""
    institution_ids = require_quality_office(request.user)
    since = timezone.now() - timedelta(days=OVERRIDE_REVIEW_DAYS)
    found = [b for i in institution_ids for b in selectors.overrides(since, institution=i)]
    found.sort(key=lambda b: (b.created_at, b.pk), reverse=True)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    audit.record(
        actor=signed_in_user(request),
        action="booking.override_review",
        detail={"page": page.number, "shown": [b.pk for b in page.object_list]},
    )
    return render(
        request,
        "scheduling/override_review.html",
        {"page": page, "days": OVERRIDE_REVIEW_DAYS},
    )
