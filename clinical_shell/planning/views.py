"""Planning pages: a patient's plans, a plan with its elements and their checks (add, change,
remove an element by typing its points; approve), and a printable summary. Every write form
carries the plan version the page showed; the services refuse a stale one and change nothing."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import DomainError
from clinical_shell.imaging import selectors as imaging
from clinical_shell.planning import selectors, services
from clinical_shell.planning.access import access_case_for_plan, access_plan, access_plan_element
from clinical_shell.planning.check_readings import element_readings, sentence_templates
from clinical_shell.planning.forms import ElementForm, PlanForm, VersionForm
from clinical_shell.planning.models import Plan
from clinical_shell.planning.rehearsal_views import rehearsal_context
from clinical_shell.records import selectors as records
from clinical_shell.records.access import access_patient, clinical_institution_ids, record_scope

# the service refusals that belong to one field of the element form (the rest: the banner)
FIELD_OF_CODE = {
    "unknown_implant": "implant_id",
    "implant_required": "implant_id",
    "implant_kind_mismatch": "implant_id",
    "radius_required": "radius_mm",
    "plane_normal_required": "normal_x",
}
# refusals about the plan itself, not the input: the page says to reload it
STALE_CODES = frozenset({"plan_version_conflict", "plan_not_draft"})


def _may_write(request: HttpRequest, plan: Plan) -> bool:
    """Whether the page offers the forms: a draft, and a reader who may change the record."""
    return plan.status == Plan.Status.DRAFT and records.in_care_at(
        plan.patient_id, clinical_institution_ids(request.user, write=True)
    )


def _refusal(form: Any, exc: DomainError) -> str:
    """Put a service refusal on its field; return it when it belongs to the banner instead."""
    if exc.code in STALE_CODES:
        return exc.message
    form.add_error(FIELD_OF_CODE.get(exc.code), exc.message)
    return ""


def _not_draft() -> DomainError:
    return DomainError("plan_not_draft", _("规划已批准或已被取代，不能再修改"))


def _detail_context(request: HttpRequest, plan_id: int) -> dict[str, Any]:
    plan = selectors.plan_with_elements(plan_id)
    elements = list(plan.elements.all())
    return {
        "plan": plan,
        "patient": plan.patient,
        "readings": element_readings(elements),
        "warning_count": sum(1 for e in elements if e.checks.get("flags")),
        "may_write": _may_write(request, plan),
        "may_approve": services.may_approve(request.user),
        # the 3D view's slice views (planning/slices.py), in their order on the page
        "slice_views": [("axial", _("轴位")), ("sagittal", _("矢状位")), ("coronal", _("冠状位"))],
        "live_sentences": sentence_templates(),
        **rehearsal_context(request.user, plan),
    }


@login_required
@require_http_methods(["GET", "POST"])
def patient_plans(request: HttpRequest, patient_id: int) -> HttpResponse:
    """The patient's plans; "新建规划" on one of their simulation cases."""
    patient = access_patient(request.user, patient_id, reason="plan list")
    cases = list(imaging.cases_of_patient(patient.pk, record_scope(request.user, patient.pk)))
    choices = [
        (c.pk, f"#{c.pk} · {c.series.description or c.series.modality} · {c.created_at:%Y-%m-%d}")
        for c in cases
    ]
    form = PlanForm(request.POST or None, cases=choices)
    if request.method == "POST" and form.is_valid():
        patient, case = access_case_for_plan(request.user, patient.pk, form.cleaned_data["case"])
        try:
            plan = services.create_plan(
                actor=signed_in_user(request),
                patient=patient,
                case=case,
                title=form.cleaned_data["title"],
            )
        except DomainError as exc:
            form.add_error("title" if exc.code == "title_required" else None, exc.message)
        else:
            return redirect("planning:plan_detail", plan_id=plan.pk)
    form.mark_invalid()
    return render(
        request,
        "planning/patient_plans.html",
        {
            "patient": patient,
            "plans": selectors.plans_of_patient(patient.pk),
            "form": form,
            "has_cases": bool(cases),
            "may_create": records.in_care_at(
                patient.pk, clinical_institution_ids(request.user, write=True)
            ),
        },
        status=422 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def plan_detail(request: HttpRequest, plan_id: int) -> HttpResponse:
    """The plan, its elements with their checks; POST adds an element."""
    writing = request.method == "POST"
    plan = access_plan(request.user, plan_id, write=writing, reason="plan element add")
    form = ElementForm(request.POST if writing else None, initial={"version": plan.version})
    stale = ""
    if writing and form.is_valid():
        try:
            services.add_element(
                actor=signed_in_user(request),
                plan=plan,
                version=form.cleaned_data["version"],
                data=form.element_data(),
            )
        except DomainError as exc:
            stale = _refusal(form, exc)
        else:
            return redirect(reverse("planning:plan_detail", args=[plan.pk]) + "#elements")
    form.mark_invalid()
    status = 409 if stale else 422 if form.errors else 200
    context = {**_detail_context(request, plan.pk), "form": form, "stale": stale}
    return render(request, "planning/plan_detail.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def element_edit(request: HttpRequest, plan_id: int, element_id: int) -> HttpResponse:
    element = access_plan_element(
        request.user,
        plan_id,
        element_id,
        reason="plan element update",
        form_only=request.method != "POST",
    )
    plan = element.plan
    if plan.status != Plan.Status.DRAFT:
        raise _not_draft()
    writing = request.method == "POST"
    initial = ElementForm.initial_of(element, plan.version)
    form = ElementForm(request.POST if writing else None, initial=initial)
    stale = ""
    if writing and form.is_valid():
        try:
            services.update_element(
                actor=signed_in_user(request),
                element=element,
                version=form.cleaned_data["version"],
                data=form.element_data(),
            )
        except DomainError as exc:
            stale = _refusal(form, exc)
        else:
            return redirect(reverse("planning:plan_detail", args=[plan.pk]) + "#elements")
    form.mark_invalid()
    status = 409 if stale else 422 if form.errors else 200
    context = {"plan": plan, "patient": plan.patient, "element": element}
    return render(
        request,
        "planning/element_edit.html",
        {**context, "form": form, "stale": stale},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def element_delete(request: HttpRequest, plan_id: int, element_id: int) -> HttpResponse:
    """GET: the element and a confirm button; POST: remove it, back to the plan."""
    element = access_plan_element(
        request.user,
        plan_id,
        element_id,
        reason="plan element delete",
        form_only=request.method != "POST",
    )
    plan = element.plan
    if plan.status != Plan.Status.DRAFT:
        raise _not_draft()
    form = VersionForm(request.POST or None, initial={"version": plan.version})
    stale = ""
    if request.method == "POST" and form.is_valid():
        try:
            services.delete_element(
                actor=signed_in_user(request), element=element, version=form.cleaned_data["version"]
            )
        except DomainError as exc:
            stale = exc.message
        else:
            return redirect(reverse("planning:plan_detail", args=[plan.pk]) + "#elements")
    return render(
        request,
        "planning/element_delete_confirm.html",
        {
            "plan": plan,
            "patient": plan.patient,
            "reading": element_readings([element])[0],
            "form": form,
            "stale": stale,
        },
        status=409 if stale else 422 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def approve(request: HttpRequest, plan_id: int) -> HttpResponse:
    """GET: the plan's elements and warnings, and a confirm button; POST: approve it."""
    plan = access_plan(
        request.user,
        plan_id,
        write=True,
        reason="plan approve",
        form_only=request.method != "POST",
    )
    if plan.status != Plan.Status.DRAFT:
        raise _not_draft()
    services.check_may_approve(actor=signed_in_user(request), plan=plan)
    form = VersionForm(request.POST or None, initial={"version": plan.version})
    refused = ""
    if request.method == "POST" and form.is_valid():
        try:
            services.approve_plan(
                actor=signed_in_user(request), plan=plan, version=form.cleaned_data["version"]
            )
        except DomainError as exc:
            refused = exc.message
        else:
            return redirect("planning:plan_detail", plan_id=plan.pk)
    context = {**_detail_context(request, plan.pk), "form": form, "stale": refused}
    status = 409 if refused else 422 if form.errors else 200
    return render(request, "planning/approve_confirm.html", context, status=status)


@login_required
@require_http_methods(["GET"])
def plan_print(request: HttpRequest, plan_id: int) -> HttpResponse:
    """The plan on paper: patient, case, elements and their checks, approval."""
    plan = access_plan(request.user, plan_id, reason="plan print")
    return render(request, "planning/plan_print.html", _detail_context(request, plan.pk))
