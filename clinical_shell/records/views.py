"""Record pages: patient search and registration, timeline across the network, encounter entry
and detail (coded diagnoses and procedures), demographics with history, allergies and problem
list, duplicate review."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.audit.reads import record_read
from clinical_shell.errors import DomainError, NotFoundError, PermissionDeniedError
from clinical_shell.imaging import report_selectors
from clinical_shell.network import selectors as network_selectors
from clinical_shell.records import merge_moves, selectors, services
from clinical_shell.records.access import (
    access_duplicate,
    access_encounter,
    access_patient,
    clinical_institution_ids,
    memberships_of,
    record_scope,
    require_writer_at,
)
from clinical_shell.records.forms import (
    AllergyForm,
    CodedDiagnosisForm,
    CodedProcedureForm,
    DemographicsForm,
    DuplicateDecisionForm,
    EncounterForm,
    PatientForm,
    PatientSearchForm,
    ProblemForm,
    RemoveForm,
)
from clinical_shell.records.models import Patient

PAGE_SIZE = 20


@login_required
@require_http_methods(["GET"])
def patient_search(request: HttpRequest) -> HttpResponse:
    # read once: where the user may read (the list) and whether to offer registration
    memberships = memberships_of(request.user)
    institution_ids = memberships.institution_ids()
    # the institution filter is shown (one more query, for the names) only to a user of several;
    # a user of one may still name it (a link from elsewhere), unnamed
    institutions = (
        [(i.pk, i.name) for i in network_selectors.institutions().filter(pk__in=institution_ids)]
        if len(institution_ids) > 1
        else [(pk, "") for pk in institution_ids]
    )
    form = PatientSearchForm(request.GET, institutions=institutions)
    form.is_valid()
    text = (form.cleaned("q") or "").strip()
    sort = form.cleaned("sort") or ""
    user = signed_in_user(request)
    user_id = user.pk
    filters = selectors.SearchFilters(
        institution_id=form.cleaned("institution"),
        sex=form.cleaned("sex") or "",
        age_min=form.cleaned("age_min"),
        age_max=form.cleaned("age_max"),
        registered_from=form.cleaned("registered_from"),
        registered_to=form.cleaned("registered_to"),
        visited_from=form.cleaned("visited_from"),
        visited_to=form.cleaned("visited_to"),
        mine_user_id=user_id if form.cleaned("mine") else None,
        recent_user_id=user_id if form.cleaned("recent") else None,
    )
    patients = selectors.search_patients(
        institution_ids=institution_ids, text=text, filters=filters, sort=sort
    )
    page = Paginator(patients, PAGE_SIZE).get_page(request.GET.get("page"))
    query = selectors.classify_query(text)
    # a list of masked rows is still patient data: one audit event per page shown
    record_read(
        actor=user,
        action="patient.search",
        items=page.object_list,
        detail={
            "query_kind": query.kind,
            "filters": sorted(k for k, v in request.GET.items() if v and k not in ("q", "page")),
            "page": page.number,
            "shown": [p.pk for p in page.object_list],
        },
    )
    today = timezone.localdate()
    rows = [(p, selectors.age_in_years(p.birth_date, today)) for p in page.object_list]
    # the query string without page and sort, for the pager and the column headers
    params = request.GET.copy()
    params.pop("page", None)
    pager_query = params.urlencode()
    params.pop("sort", None)
    columns = []  # (label, query string sorting by it, ▲/▼ when the list is sorted by it)
    for label, ascending in (
        (_("姓名"), "name"),
        (_("性别"), "sex"),
        (_("出生日期"), "birth_date"),
        (_("年龄"), "-birth_date"),
        (_("建档机构"), "institution"),
        (_("最近就诊"), "last_visit"),
    ):
        descending = ascending[1:] if ascending.startswith("-") else f"-{ascending}"
        params["sort"] = descending if sort == ascending else ascending
        mark = "▲" if sort == ascending else "▼" if sort == descending else ""
        columns.append((label, params.urlencode(), mark))
    return render(
        request,
        "records/patient_search.html",
        {
            "page": page,
            "rows": rows,
            "columns": columns,
            "form": form,
            "q": text,
            "pager_query": pager_query,
            "query_kind": query.kind,
            "invalid_filters": [
                str(form.fields[name].label) for name in form.errors if name not in ("q", "sort")
            ],
            "filtered": any(v for k, v in request.GET.items() if k not in ("q", "page", "sort")),
            "has_clinical_role": bool(institution_ids),
            "can_register": bool(memberships.institution_ids(write=True)),
        },
    )


@login_required
@require_http_methods(["GET"])
def patient_timeline(request: HttpRequest, patient_id: int) -> HttpResponse:
    # read once: whether the user may read this patient, and whether to offer "new encounter"
    memberships = memberships_of(request.user)
    patient = access_patient(request.user, patient_id, reason="timeline", memberships=memberships)
    scope = record_scope(request.user, patient.pk, memberships=memberships)
    encounters = list(selectors.patient_timeline(patient.pk, scope))
    writer_ids = memberships.institution_ids(write=True)
    # "new encounter" only where it would be accepted: a writer at an institution in care. The
    # read check found care at one of the user's institutions, which settles it when all of
    # them are writer institutions; a reader here and writer elsewhere needs one more query
    can_write = bool(writer_ids) and (
        set(writer_ids) == set(memberships.institution_ids())
        or selectors.in_care_at(patient.pk, writer_ids)
    )
    return render(
        request,
        "records/patient_timeline.html",
        {
            "patient": patient,
            "encounters": encounters,
            "allergies": patient.allergies.filter(deleted_at__isnull=True),
            # preliminary and signed imaging reports, beside the encounters they explain
            "imaging_reports": list(report_selectors.reports_of_patient(patient.pk, scope)),
            "unshared_encounters": selectors.unshared_encounter_count(patient.pk, scope),
            "institutions": sorted({e.institution.name for e in encounters}),
            "can_write": can_write,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def encounter_new(request: HttpRequest, patient_id: int) -> HttpResponse:
    # the form is offered only to writers, but showing it (GET) is a read
    patient = access_patient(
        request.user,
        patient_id,
        write=True,
        form_only=request.method != "POST",
        reason="encounter entry",
    )
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
    candidate, first, second = access_duplicate(
        request.user, candidate_id, form_only=request.method != "POST"
    )
    pending = selectors.pending_merge_request(candidate.pk)
    # the record to keep is suggested (more complete, then older); the reviewer may choose the other
    recommended = selectors.recommended_survivor(first, second)
    form = DuplicateDecisionForm(
        request.POST or None,
        pair_ids=(first.pk, second.pk),
        initial={"survivor": recommended.pk},
    )
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
            list(
                selectors.patient_timeline(patient.pk, record_scope(request.user, patient.pk))[:5]
            ),
            selectors.encounter_count(patient.pk),
        )
        for patient in (first, second)
    ]
    context = {
        "candidate": candidate,
        "pair": pair,
        "recommended": recommended,
        "form": form,
        "confirm": confirm,
        "pending": pending,
        # the requester sees the request waiting; only someone else may decide it
        "may_decide": pending is not None and pending.requested_by_id != request.user.pk,
    }
    if confirm:
        context["survivor"], context["merged"] = survivor, merged
        # the confirmation lists what moves to the record kept
        context["moving"] = merge_moves.what_moves(merged.pk)
    return render(request, "records/duplicate_review.html", context, status=status)


def _add_service_errors(form: Any, exc: services.RecordValidationError) -> None:
    for key, message in exc.field_errors.items():
        form.add_error(key if key in form.fields else None, message)


@login_required
@require_http_methods(["GET", "POST"])
def encounter_detail(request: HttpRequest, patient_id: int, encounter_id: int) -> HttpResponseBase:
    """One encounter: its diagnoses, procedures and documents; writers at its institution add
    coded diagnoses and procedures (ICD-10, ICD-9-CM-3, AO/OTA, with laterality) or remove them."""
    posting = request.method == "POST"
    encounter = access_encounter(request.user, encounter_id, write=posting)
    if encounter.patient_id != patient_id:
        # an old link (the patient was merged since): the encounter's own address
        return redirect("records:encounter_detail", encounter.patient_id, encounter.pk)
    action = request.POST.get("action", "") if posting else ""
    dx_form = CodedDiagnosisForm(request.POST if action == "add_diagnosis" else None, prefix="dx")
    px_initial = {"performed_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M")}
    px_form = CodedProcedureForm(
        request.POST if action == "add_procedure" else None, prefix="px", initial=px_initial
    )
    remove_form = RemoveForm(request.POST if action.startswith("remove_") else None)
    if posting:
        actor = signed_in_user(request)
        done = False
        if action == "add_diagnosis" and dx_form.is_valid():
            services.add_diagnosis(
                actor=actor, encounter=encounter, data=dx_form.to_service(dx_form.cleaned_data)
            )
            done = True
        elif action == "add_procedure" and px_form.is_valid():
            services.add_procedure(
                actor=actor,
                encounter=encounter,
                data=px_form.to_service(px_form.cleaned_data),
                surgeon_id=getattr(getattr(request.user, "person", None), "pk", None),
            )
            done = True
        elif action in ("remove_diagnosis", "remove_procedure") and remove_form.is_valid():
            item, reason = remove_form.cleaned_data["item"], remove_form.cleaned_data["reason"]
            if action == "remove_diagnosis":
                diagnosis = selectors.live_diagnosis(encounter.pk, item)
                if diagnosis is None:
                    raise NotFoundError("diagnosis_not_found", _("未找到该诊断"))
                services.remove_diagnosis(actor=actor, diagnosis=diagnosis, reason=reason)
            else:
                procedure = selectors.live_procedure(encounter.pk, item)
                if procedure is None:
                    raise NotFoundError("procedure_not_found", _("未找到该手术操作"))
                services.remove_procedure(actor=actor, procedure=procedure, reason=reason)
            done = True
        elif action not in (
            "add_diagnosis",
            "add_procedure",
            "remove_diagnosis",
            "remove_procedure",
        ):
            raise DomainError("unknown_action", _("无效的操作"), status=400)
        if done:
            return redirect("records:encounter_detail", encounter.patient_id, encounter.pk)
    for form in (dx_form, px_form, remove_form):
        form.mark_invalid()
    detail = selectors.encounter_detail(encounter.pk)
    if detail is None:  # deleted between the access check and now
        raise NotFoundError("encounter_not_found", _("未找到该就诊记录"))
    can_write = encounter.institution_id in clinical_institution_ids(request.user, write=True)
    return render(
        request,
        "records/encounter_detail.html",
        {
            "patient": detail.patient,
            "encounter": detail,
            "dx_form": dx_form,
            "px_form": px_form,
            "remove_form": remove_form,
            "remove_action": action if action.startswith("remove_") else "",
            "can_write": can_write,
        },
        status=422 if posting else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def patient_new(request: HttpRequest) -> HttpResponseBase:
    """Registration. Possible duplicates anywhere in the regional index (same ID number, same
    name and birth date, same pinyin and birth date) are shown, masked, before anything is saved;
    registering anyway needs an explicit confirmation. Then the new patient's timeline."""
    writer_ids = clinical_institution_ids(request.user, write=True)
    if not writer_ids:
        raise PermissionDeniedError("not_writer_anywhere", _("您没有在任何机构录入病历的权限"))
    initial = {"institution": str(writer_ids[0])} if len(writer_ids) == 1 else {}
    form = PatientForm(request.POST or None, initial=initial, institution_ids=writer_ids)
    duplicates: list[selectors.PossibleDuplicate] = []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        actor = signed_in_user(request)
        duplicates = selectors.possible_duplicates(
            name=data["name"], birth_date=data["birth_date"], resident_id=data["resident_id"]
        )
        # the clerk sees masked rows of other records: that look is itself audited
        if duplicates:
            record_read(
                actor=actor,
                action="patient.duplicate_check",
                items=[d.patient for d in duplicates],
                detail={"shown": [d.patient.pk for d in duplicates]},
            )
        # "register anyway" names the possible duplicates the clerk was shown: a changed form
        # that finds another one shows it first
        shown = {
            int(pk) for pk in request.POST.get("confirm_duplicates", "").split(",") if pk.isdigit()
        }
        if not duplicates or {d.patient.pk for d in duplicates} <= shown:
            require_writer_at(request.user, data["institution"].pk)
            try:
                patient = services.register_patient(
                    actor=actor,
                    institution=data["institution"],
                    name=data["name"],
                    sex=data["sex"],
                    birth_date=data["birth_date"],
                    resident_id=data["resident_id"],
                    phone=data["phone"],
                    address=data["address"],
                )
            except services.RecordValidationError as exc:
                _add_service_errors(form, exc)
            else:
                return redirect("records:patient_timeline", patient_id=patient.pk)
    form.mark_invalid()
    status = 422 if request.method == "POST" and (form.errors or duplicates) else 200
    memberships = memberships_of(request.user)
    readable = set(memberships.institution_ids())
    return render(
        request,
        "records/patient_new.html",
        {
            "form": form,
            "duplicates": [
                (d, selectors.in_care_at(d.patient.pk, sorted(readable))) for d in duplicates
            ],
            "duplicate_ids": ",".join(str(d.patient.pk) for d in duplicates),
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def patient_edit(request: HttpRequest, patient_id: int) -> HttpResponseBase:
    """Demographics, changed with a reason; every earlier version is listed below the form."""
    patient = access_patient(
        request.user, patient_id, write=request.method == "POST", reason="demographics"
    )
    initial = {
        "name": patient.name,
        "sex": patient.sex,
        "birth_date": patient.birth_date.isoformat(),
        "resident_id": patient.resident_id,
        "phone": patient.phone,
        "address": patient.address,
    }
    form = DemographicsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.update_patient(
                actor=signed_in_user(request),
                patient=patient,
                reason=data["reason"],
                name=data["name"],
                sex=data["sex"],
                birth_date=data["birth_date"],
                resident_id=data["resident_id"],
                phone=data["phone"],
                address=data["address"],
            )
        except services.RecordValidationError as exc:
            _add_service_errors(form, exc)
        else:
            return redirect("records:patient_timeline", patient_id=patient.pk)
    form.mark_invalid()
    return render(
        request,
        "records/patient_edit.html",
        {
            "patient": patient,
            "form": form,
            "history": _history_rows(patient),
            "can_write": selectors.in_care_at(
                patient.pk, clinical_institution_ids(request.user, write=True)
            ),
        },
        status=422 if request.method == "POST" else 200,
    )


# reasons the services write for people to read in the history
_REASONS = {"registered": _lazy("建档"), "recorded": _lazy("录入")}
# the fields a demographics version shows (the digest and sort keys are derived)
_HISTORY_FIELDS = ("name", "sex", "birth_date", "resident_id", "phone", "address")


def _history_rows(patient: Patient) -> list[dict[str, Any]]:
    """Versions newest first, each with the fields that changed from the version before."""
    versions = list(selectors.record_history(patient))
    rows = []
    for i, version in enumerate(versions):
        before = versions[i + 1].snapshot if i + 1 < len(versions) else {}
        changed = [
            f for f in _HISTORY_FIELDS if before and before.get(f) != version.snapshot.get(f)
        ]
        sex = version.snapshot.get("sex", "")
        rows.append(
            {
                "version": version,
                "changed": changed,
                "snapshot": version.snapshot,
                "sex": Patient.Sex(sex).label if sex in Patient.Sex.values else sex,
                "reason": _REASONS.get(version.reason, version.reason),
            }
        )
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def patient_chart(request: HttpRequest, patient_id: int) -> HttpResponseBase:
    """Problem list and allergies: add, resolve or remove (writers at a treating institution)."""
    posting = request.method == "POST"
    patient = access_patient(request.user, patient_id, write=posting, reason="problem list")
    action = request.POST.get("action", "") if posting else ""
    problem_form = ProblemForm(
        request.POST if action == "add_problem" else None,
        prefix="problem",
        initial={"status": "active"},
    )
    allergy_form = AllergyForm(request.POST if action == "add_allergy" else None, prefix="allergy")
    remove_form = RemoveForm(request.POST if action.startswith("remove_") else None)
    if posting:
        actor = signed_in_user(request)
        done = False
        if action == "add_problem" and problem_form.is_valid():
            data = problem_form.cleaned_data
            services.add_problem(
                actor=actor,
                patient=patient,
                description=data["description"],
                code=data["code"],
                status=data["status"],
                onset_date=data["onset_date"],
            )
            done = True
        elif action == "add_allergy" and allergy_form.is_valid():
            data = allergy_form.cleaned_data
            services.add_allergy(
                actor=actor,
                patient=patient,
                substance=data["substance"],
                severity=data["severity"],
                reaction=data["reaction"],
            )
            done = True
        elif action in ("resolve_problem", "reopen_problem"):
            problem = selectors.patient_problem(patient.pk, _int(request.POST.get("item")))
            if problem is None:
                raise NotFoundError("problem_not_found", _("未找到该问题"))
            status = "resolved" if action == "resolve_problem" else "active"
            services.set_problem_status(actor=actor, problem=problem, status=status)
            done = True
        elif action in ("remove_problem", "remove_allergy") and remove_form.is_valid():
            item, reason = remove_form.cleaned_data["item"], remove_form.cleaned_data["reason"]
            if action == "remove_problem":
                problem = selectors.patient_problem(patient.pk, item)
                if problem is None:
                    raise NotFoundError("problem_not_found", _("未找到该问题"))
                services.remove_problem(actor=actor, problem=problem, reason=reason)
            else:
                allergy = selectors.patient_allergy(patient.pk, item)
                if allergy is None:
                    raise NotFoundError("allergy_not_found", _("未找到该过敏记录"))
                services.remove_allergy(actor=actor, allergy=allergy, reason=reason)
            done = True
        elif action not in ("add_problem", "add_allergy", "remove_problem", "remove_allergy"):
            raise DomainError("unknown_action", _("无效的操作"), status=400)
        if done:
            return redirect("records:patient_chart", patient_id=patient.pk)
    for form in (problem_form, allergy_form, remove_form):
        form.mark_invalid()
    return render(
        request,
        "records/patient_chart.html",
        {
            "patient": patient,
            "problems": selectors.patient_problems(patient.pk),
            "allergies": selectors.patient_allergies(patient.pk),
            "problem_form": problem_form,
            "allergy_form": allergy_form,
            "remove_form": remove_form,
            "remove_action": action if action.startswith("remove_") else "",
            "can_write": selectors.in_care_at(
                patient.pk, clinical_institution_ids(request.user, write=True)
            ),
        },
        status=422 if posting else 200,
    )


def _int(raw: str | None) -> int:
    try:
        return int(raw or "")
    except ValueError:
        raise DomainError("invalid_item", _("无效的记录编号"), status=400) from None
