"""Teleconsultation and MDT pages: thin views over `consult_services` (which check and audit)."""

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import DomainError
from clinical_shell.imaging import selectors as imaging_selectors
from clinical_shell.imaging.models import Series, Study
from clinical_shell.network.models import Institution
from clinical_shell.records.access import access_patient, clinical_institution_ids
from clinical_shell.records.models import Document
from clinical_shell.referrals import consult_selectors as selectors
from clinical_shell.referrals import consult_services as consult
from clinical_shell.referrals.consult_models import ConsultPriority, MdtCase, Specialty


def _ids(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.strip().isdigit()]


def _when(raw: str) -> datetime | None:
    value = parse_datetime(raw.strip()) if raw.strip() else None
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


@login_required
@require_http_methods(["GET", "POST"])
def consult_list(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    institutions = Institution.objects.filter(pk__in=clinical_institution_ids(user))
    if request.method == "POST" and request.POST.get("form") == "mdt":
        names = [
            n.strip() for n in request.POST.get("participants", "").replace("，", ",").split(",")
        ]
        try:
            meeting = consult.create_meeting(
                actor=user,
                institution_id=int(request.POST.get("institution") or 0),
                title=request.POST.get("title", ""),
                scheduled_at=_when(request.POST.get("scheduled_at", "")) or timezone.now(),
                specialties=request.POST.getlist("specialties"),
                participant_ids=list(
                    User.objects.filter(username__in=[n for n in names if n]).values_list(
                        "pk", flat=True
                    )
                ),
            )
            return redirect("referrals:mdt_detail", meeting.pk)
        except consult.ConsultFormError as exc:
            messages.error(request, "; ".join(str(v) for v in exc.errors.values()))
        except DomainError as exc:
            messages.error(request, exc.message)
        return redirect("referrals:consult_list")
    if request.method == "POST":
        try:
            starts = _when(request.POST.get("starts_at", ""))
            consult.publish_slot(
                actor=user,
                institution_id=int(request.POST.get("institution") or 0),
                specialty=request.POST.get("specialty", ""),
                starts_at=starts or timezone.now(),
                minutes=int(request.POST.get("minutes") or 30),
            )
            messages.success(request, _("会诊时段已发布"))
        except (DomainError, ValueError) as exc:
            messages.error(request, getattr(exc, "message", _("会诊时段无效")))
        return redirect("referrals:consult_list")
    patient = (request.GET.get("patient") or "").strip()
    if patient.isdigit():
        return redirect("referrals:consult_new", int(patient))
    rows = list(selectors.my_consultations(user)[:100])
    selectors.audit_listed(user, rows)
    return render(
        request,
        "referrals/consult_list.html",
        {
            "consultations": rows,
            "meetings": list(selectors.my_meetings(user)[:50]),
            "slots": consult.free_slots(),
            "institutions": institutions,
            "specialties": Specialty.choices,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def consult_new(request: HttpRequest, patient_id: int) -> HttpResponse:
    user = signed_in_user(request)
    patient = access_patient(user, patient_id, reason="teleconsultation request")
    institutions = list(
        Institution.objects.filter(pk__in=clinical_institution_ids(user, write=True))
    )
    errors: dict[str, str] = {}
    form: dict[str, Any] = {"priority": "routine"}
    if request.method == "POST":
        form = {
            k: request.POST.get(k, "")
            for k in (*consult.REQUIRED_FIELDS, "priority", "specialty", "slot_id", "institution")
        }
        data = dict(form)
        data["consent_at"] = _when(form["consent_at"]) if form["consent_at"] else None
        try:
            c = consult.request_consultation(
                actor=user,
                patient_id=patient.pk,
                requesting_institution_id=int(form["institution"] or 0),
                data=data,
                study_ids=_ids(request.POST.getlist("studies")),
                document_ids=_ids(request.POST.getlist("documents")),
            )
            return redirect("referrals:consult_detail", c.pk)
        except consult.ConsultFormError as exc:
            errors = exc.errors
    return render(
        request,
        "referrals/consult_new.html",
        {
            "patient": patient,
            "institutions": institutions,
            # only what the requesting side itself wrote or uploaded can travel with it
            "studies": Study.objects.filter(
                patient_id=patient.pk, uploaded_at__in=institutions
            ).order_by("-created_at")[:50],
            "documents": Document.objects.filter(
                patient_id=patient.pk, institution__in=institutions, deleted_at__isnull=True
            ).order_by("-id")[:50],
            "slots": consult.free_slots(),
            "specialties": Specialty.choices,
            "priorities": ConsultPriority.choices,
            "errors": errors,
            "form": form,
            "chosen": {
                "studies": _ids(request.POST.getlist("studies")),
                "documents": _ids(request.POST.getlist("documents")),
            },
        },
    )


def _detail_context(user: User, consultation_id: int) -> dict[str, Any]:
    c = consult.access_consultation(user, consultation_id)
    requester = consult.is_requesting_side(user, c)
    expert = consult.is_expert(user, c)
    items: dict[str, list[Any]] | None = None
    if requester or c.is_open:
        items = consult.read_attachments(user, c)
    report = getattr(c, "opinion", None)
    opens = imaging_selectors.viewer_series([s.pk for s in items["studies"]] if items else [])
    return {
        "c": c,
        # each attached study with the series the viewer opens it on (None: no images)
        "studies": [(s, opens.get(s.pk)) for s in items["studies"]] if items else [],
        "is_requester": requester,
        "is_expert": expert,
        "items": items,
        "report": report,
        "verified": consult.verify_opinion(report) if report is not None else False,
    }


@login_required
@require_http_methods(["GET", "POST"])
def consult_detail(request: HttpRequest, consultation_id: int) -> HttpResponse:
    user = signed_in_user(request)
    errors: dict[str, str] = {}
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action not in ("answer", "close", "cancel"):
            raise DomainError("unknown_action", _("未知的操作"), status=400)
        consult.access_consultation(user, consultation_id, action=f"consultation.{action}")
        try:
            if action == "answer":
                consult.answer(
                    actor=user,
                    consultation_id=consultation_id,
                    opinion=request.POST.get("opinion", ""),
                    recommendations=request.POST.get("recommendations", ""),
                    recommend_up_referral=request.POST.get("recommend_up_referral") == "on",
                )
            elif action in ("close", "cancel"):
                consult.close(
                    actor=user, consultation_id=consultation_id, cancel=action == "cancel"
                )
            return redirect("referrals:consult_detail", consultation_id)
        except consult.ConsultFormError as exc:
            errors = exc.errors
    context = _detail_context(user, consultation_id)
    context["errors"] = errors
    return render(request, "referrals/consult_detail.html", context)


@login_required
@require_http_methods(["GET"])
def consult_print(request: HttpRequest, consultation_id: int) -> HttpResponse:
    context = _detail_context(signed_in_user(request), consultation_id)
    if context["report"] is None:
        raise DomainError("opinion_not_found", _("该会诊尚未出具意见"), status=404)
    return render(request, "referrals/consult_print.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def mdt_detail(request: HttpRequest, meeting_id: int) -> HttpResponse:
    user = signed_in_user(request)
    meeting = consult.access_meeting(user, meeting_id)
    errors: dict[str, str] = {}
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "minutes":
                consult.save_minutes(
                    actor=user, meeting_id=meeting.pk, minutes=request.POST.get("minutes", "")
                )
            elif action == "decide":
                consult.decide_case(
                    actor=user,
                    case_id=int(request.POST.get("case") or 0),
                    decision=request.POST.get("decision", ""),
                )
            elif action == "add_case":
                consult.add_case(
                    actor=user,
                    meeting_id=meeting.pk,
                    patient_id=int(request.POST.get("patient") or 0),
                    summary=request.POST.get("summary", ""),
                    study_ids=_ids(request.POST.get("studies", "").replace("，", ",").split(",")),
                )
            elif action == "end":
                consult.end_meeting(actor=user, meeting_id=meeting.pk)
            return redirect("referrals:mdt_detail", meeting.pk)
        except consult.ConsultFormError as exc:
            errors = exc.errors
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("referrals:mdt_detail", meeting.pk)
    cases = []
    for case in MdtCase.objects.filter(meeting=meeting).select_related(
        "patient", "meeting", "signed_by__person"
    ):
        study_ids = [a.object_id for a in case.attachments.all()]
        cases.append(
            {
                "case": case,
                "verified": consult.verify_case(case),
                "studies": Study.objects.filter(pk__in=study_ids, patient_id=case.patient_id),
            }
        )
    return render(
        request,
        "referrals/consult_mdt.html",
        {
            "meeting": meeting,
            "cases": cases,
            "is_chair": meeting.chair_id == user.pk,
            "participants": meeting.participants.select_related("person"),
            "specialty_labels": [
                Specialty(s).label for s in meeting.specialties if s in Specialty.values
            ],
            "errors": errors,
        },
    )


@login_required
@require_http_methods(["GET"])
def mdt_study(request: HttpRequest, meeting_id: int, study_id: int) -> HttpResponse:
    """A participant opens a study shared at the meeting in the imaging viewer (checked and
    audited here; the viewer checks the reader's access to the record again)."""
    study = consult.shared_study(signed_in_user(request), meeting_id, study_id)
    series = Series.objects.filter(study=study).order_by("pk").first()
    if series is None:
        raise DomainError("study_has_no_series", _("该检查没有可显示的序列"), status=404)
    return redirect("imaging:viewer", series.pk)
