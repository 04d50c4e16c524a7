"""Record pages: patient search, timeline across the network, encounter entry, duplicate review."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.audit.reads import record_read
from clinical_shell.errors import DomainError
from clinical_shell.records import selectors, services
from clinical_shell.records.access import (
    access_duplicate,
    access_patient,
    clinical_institution_ids,
    memberships_of,
    require_writer_at,
)
from clinical_shell.records.forms import DuplicateDecisionForm, EncounterForm

PAGE_SIZE = 20


@login_required
@require_http_methods(["GET"])
def patient_search(request: HttpRequest) -> HttpResponse:
    text = request.GET.get("q", "").strip()
    institution_ids = clinical_institution_ids(request.user)
    patients = selectors.search_patients(institution_ids=institution_ids, text=text)
    page = Paginator(patients, PAGE_SIZE).get_page(request.GET.get("page"))
    query = selectors.classify_query(text)
    # a list of masked rows is still patient data: one audit event per page shown
    record_read(
        actor=signed_in_user(request),
        action="patient.search",
        items=page.object_list,
        detail={
            "query_kind": query.kind,
            "page": page.number,
            "shown": [p.pk for p in page.object_list],
        },
    )
    return render(
        request,
        "records/patient_search.html",
        {
            "page": page,
            "q": text,
            "query_kind": query.kind,
            "has_clinical_role": bool(institution_ids),
        },
    )


@login_required
@require_http_methods(["GET"])
def patient_timeline(request: HttpRequest, patient_id: int) -> HttpResponse:
    # read once: whether the user may read this patient, and whether to offer "new encounter"
    memberships = memberships_of(request.user)
    patient = access_patient(request.user, patient_id, reason="timeline", memberships=memberships)
    encounters = list(selectors.patient_timeline(patient.pk))
    can_write = bool(memberships.institution_ids(write=True))
    return render(
        request,
        "records/patient_timeline.html",
        {
            "patient": patient,
            "encounters": encounters,
            "allergies": patient.allergies.filter(deleted_at__isnull=True),
            "institutions": sorted({e.institution.name for e in encounters}),
            "can_write": can_write,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def encounter_new(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = access_patient(request.user, patient_id, write=True, reason="encounter entry")
    writer_ids = clinical_institution_ids(request.user, write=True)
    initial = {"started_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"), "kind": "outpatient"}
    if len(writer_ids) == 1:
        initial["institution"] = str(writer_ids[0])
    form = EncounterForm(request.POST or None, initial=initial, institution_ids=writer_ids)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        encounter_in = services.EncounterIn(
            kind=data["kind"],
            started_at=data["started_at"],
            chief_complaint=data["chief_complaint"],
            notes=data["notes"],
            department_id=data["department"].pk if data["department"] else None,
            diagnoses=[
                services.DiagnosisIn(
                    data["icd10_code"], data["diagnosis"], data["ao_ota_code"], True
                )
            ]
            if data["icd10_code"] or data["diagnosis"]
            else [],
            procedures=[
                services.ProcedureIn(data["icd9cm3_code"], data["procedure"], data["started_at"])
            ]
            if data["icd9cm3_code"] or data["procedure"]
            else [],
        )
        require_writer_at(request.user, data["institution"].pk)
        try:
            services.record_encounter(
                actor=signed_in_user(request),
                patient=patient,
                institution=data["institution"],
                data=encounter_in,
                attending_id=getattr(getattr(request.user, "person", None), "pk", None),
            )
        except services.RecordValidationError as exc:
            for key, message in exc.field_errors.items():
                name = EncounterForm.SERVICE_FIELD_MAP.get(key, key)
                form.add_error(name if name in form.fields else None, message)
        else:
            return redirect("records:patient_timeline", patient_id=patient.pk)
    form.mark_invalid()
    status = 422 if request.method == "POST" else 200
    return render(
        request, "records/encounter_form.html", {"patient": patient, "form": form}, status=status
    )


@login_required
@require_http_methods(["GET"])
def duplicate_queue(request: HttpRequest) -> HttpResponse:
    """Open pairs whose two patients are both in care where the user writes records."""
    institution_ids = clinical_institution_ids(request.user, write=True)
    candidates = selectors.open_duplicates(institution_ids=institution_ids)
    page = Paginator(candidates, PAGE_SIZE).get_page(request.GET.get("page"))
    # names both patients of every pair shown
    record_read(
        actor=signed_in_user(request),
        action="patient.duplicates_list",
        items=page.object_list,
        detail={"page": page.number, "shown": [c.pk for c in page.object_list]},
    )
    return render(
        request,
        "records/duplicate_queue.html",
        {"page": page, "can_review": bool(institution_ids)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def duplicate_review(request: HttpRequest, candidate_id: int) -> HttpResponse:
    """Side by side. A merge is requested (after a confirmation) and carried out only when a
    second reviewer approves it; dismiss closes the pair."""
    candidate, first, second = access_duplicate(request.user, candidate_id)
    pending = selectors.pending_merge_request(candidate.pk)
    form = DuplicateDecisionForm(request.POST or None, pair_ids=(first.pk, second.pk))
    confirm = False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        actor = signed_in_user(request)
        if data["action"] in ("approve", "reject"):
            if pending is None:
                raise DomainError("no_merge_request", _("没有待批准的合并申请"))
            if data["action"] == "reject":
                services.reject_merge(actor=actor, merge_request=pending, note=data["note"])
                return redirect("records:duplicate_review", candidate_id=candidate.pk)
            survivor = services.approve_merge(actor=actor, merge_request=pending, note=data["note"])
            return redirect("records:patient_timeline", patient_id=survivor.pk)
        if pending is not None:
            raise DomainError("merge_pending", _("该疑似重复已有待批准的合并申请"))
        if data["action"] == "dismiss":
            services.dismiss_duplicate(actor=actor, candidate=candidate, reason=data["reason"])
            return redirect("records:duplicate_queue")
        survivor, merged = (first, second) if data["survivor"] == first.pk else (second, first)
        if data["confirmed"]:
            services.request_merge(
                actor=actor,
                candidate=candidate,
                survivor=survivor,
                merged=merged,
                reason=data["reason"],
            )
            return redirect("records:duplicate_review", candidate_id=candidate.pk)
        confirm = True
    form.mark_invalid()
    status = 422 if request.method == "POST" and not form.is_valid() else 200
    pair = [
        (
            patient,
            list(selectors.patient_timeline(patient.pk)[:5]),
            selectors.encounter_count(patient.pk),
        )
        for patient in (first, second)
    ]
    context = {
        "candidate": candidate,
        "pair": pair,
        "form": form,
        "confirm": confirm,
        "pending": pending,
        # the requester sees the request waiting; only someone else may decide it
        "may_decide": pending is not None and pending.requested_by_id != request.user.pk,
    }
    if confirm:
        context["survivor"], context["merged"] = survivor, merged
    return render(request, "records/duplicate_review.html", context, status=status)
