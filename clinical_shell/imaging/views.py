"""Imaging pages: upload (with progress), the reconciliation queue, a patient's studies, viewer."""

from datetime import date

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, PermissionDeniedError
from clinical_shell.imaging import report_selectors, selectors, services
from clinical_shell.imaging.access import (
    access_case_build,
    access_instance,
    access_series,
    access_study,
    imaging_institution_ids,
    may_change_case_build,
)
from clinical_shell.jobs import selectors as jobs
from clinical_shell.network.models import Institution
from clinical_shell.records.access import access_patient, record_scope

# radiograph and CT modalities the viewer lays out; CT gets MPR when a volume can be built
MPR_MODALITIES = frozenset({"CT", "MR", "PT"})


def _age_years(birth_date: date, on: date) -> int:
    """Whole years of age on `on` (a birthday not yet reached that year does not count)."""
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


def _int_or_none(raw: str) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isdigit() else None


@login_required
@require_http_methods(["GET"])
def index(request: HttpRequest) -> HttpResponse:
    institution_ids = imaging_institution_ids(request.user)
    waiting = list(selectors.waiting_studies(institution_ids))
    # the work list shows each waiting study's DICOM name and patient ID: audited, study by
    # study (no shell patient yet: the studies are what names them)
    audit.record(
        actor=signed_in_user(request),
        action="imaging.worklist",
        detail={"study_ids": [s.pk for s in waiting], "rows": len(waiting)},
    )
    return render(
        request,
        "imaging/index.html",
        {
            "institutions": Institution.objects.filter(pk__in=institution_ids),
            "waiting": waiting,
            "patient_id": request.GET.get("patient", ""),
        },
    )


@login_required
@require_http_methods(["POST"])
def upload(request: HttpRequest) -> HttpResponse:
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    institution_id = _int_or_none(request.POST.get("institution", ""))
    if institution_id is None or institution_id not in imaging_institution_ids(request.user):
        raise PermissionDeniedError(
            "not_imaging_here",
            _("您在该机构没有上传影像的权限"),
        )
    patient = None
    patient_id = _int_or_none(request.POST.get("patient", ""))
    if patient_id is not None:
        patient = access_patient(request.user, patient_id, write=True, reason="imaging upload")
    files = request.FILES.getlist("files")
    report = services.import_upload(
        actor=signed_in_user(request),
        institution=Institution.objects.get(pk=institution_id),
        files=[(f.name or "?", f) for f in files],
        patient=patient,
    )
    if wants_json:
        return JsonResponse(report.as_dict(), json_dumps_params={"ensure_ascii": False})
    status = 200 if report.stored or not report.refused else 422
    return render(request, "imaging/upload_report.html", {"report": report}, status=status)


@login_required
@require_http_methods(["GET"])
def patient_studies(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = access_patient(request.user, patient_id, reason="imaging list")
    scope = record_scope(request.user, patient.pk)
    return render(
        request,
        "imaging/patient_studies.html",
        {
            "patient": patient,
            "studies": selectors.studies_of_patient(patient.pk, scope),
            "cases": selectors.cases_of_patient(patient.pk, scope),
            "builds": selectors.case_builds_of_patient(patient.pk, scope, limit=10),
        },
    )


@login_required
@require_http_methods(["POST"])
def link(request: HttpRequest, study_id: int) -> HttpResponse:
    """Propose the patient a waiting study belongs to; another person approves (link_decision)."""
    study = access_study(request.user, study_id, write=True, reason="reconcile")
    patient_id = _int_or_none(request.POST.get("patient", ""))
    if patient_id is None:
        raise DomainError("patient_required", _("请填写患者编号"), status=422)
    patient = access_patient(request.user, patient_id, write=True, reason="reconcile study")
    services.request_study_link(
        actor=signed_in_user(request),
        study=study,
        patient=patient,
        reason=request.POST.get("reason", ""),
    )
    return redirect("imaging:index")


@login_required
@require_http_methods(["POST"])
def link_decision(request: HttpRequest, link_request_id: int) -> HttpResponse:
    """A second person approves (the study joins the record) or rejects (with a note)."""
    link_request = selectors.study_link_request(link_request_id)
    # the decider needs what the proposer needed: the waiting study and the patient's record
    access_study(request.user, link_request.study_id, write=True, reason="reconcile decision")
    access_patient(request.user, link_request.patient_id, write=True, reason="reconcile decision")
    actor = signed_in_user(request)
    note = request.POST.get("note", "")
    if request.POST.get("action") == "approve":
        study = services.approve_study_link(actor=actor, link_request=link_request, note=note)
        return redirect("imaging:patient_studies", patient_id=study.patient_id)
    if request.POST.get("action") == "reject":
        services.reject_study_link(actor=actor, link_request=link_request, note=note)
        return redirect("imaging:index")
    raise DomainError("action_required", _("请选择批准或驳回"), status=422)


@login_required
@require_http_methods(["GET"])
def viewer(request: HttpRequest, series_id: int) -> HttpResponse:
    series = access_series(request.user, series_id)
    instances = list(selectors.instances_in_viewing_order(series.pk))
    config = {
        "modality": series.modality,
        "mpr": series.modality in MPR_MODALITIES and len(instances) >= 3,
        "imageUrls": [reverse("imaging:instance_file", args=[i.pk]) for i in instances],
        # which stored image each URL is (key images name it); same order
        "instanceIds": [i.pk for i in instances],
        # each slice's position before its file arrives: the reformats stream in (MPR only)
        "geometryUrl": reverse("api-v1:get_series_geometry", args=[series.pk]),
        "keyImagesUrl": reverse("api-v1:list_key_images", args=[series.study_id]),
    }
    study = series.study
    # the banner names the patient the access check just authorised (nothing more goes to the
    # page's script); age on the day of the study, as a reader compares it with the image
    patient = study.patient
    age_years = None
    if patient is not None:
        age_years = _age_years(patient.birth_date, study.study_date or timezone.localdate())
    # each view's name, Chinese first (translated by the page's language)
    views = [
        {"key": "stack", "name": _("图像")},
        {"key": "axial", "name": _("轴位")},
        {"key": "sagittal", "name": _("矢状位")},
        {"key": "coronal", "name": _("冠状位")},
    ]
    return render(
        request,
        "imaging/viewer.html",
        {
            "series": series,
            "study": study,
            "patient": patient,
            "age_years": age_years,
            "views": views,
            "config": config,
            "count": len(instances),
            # the study's report beside its images, once it is no longer a private draft
            "report": report_selectors.published_report(study.pk),
        },
    )


# gzip where the browser asks for it: an uncompressed 16-bit CT slice shrinks to about half, and
# a county link pays for every byte (docs/viewer.md, measured); the viewer reads it unchanged
@gzip_page
@login_required
@require_http_methods(["GET"])
def instance_file(request: HttpRequest, instance_id: int) -> HttpResponse:
    instance = access_instance(request.user, instance_id)
    # One image is small (a slice: well under a few MB), so it is read whole into a plain
    # response: a FileResponse is a streaming response with a synchronous file iterator, which
    # under ASGI is consumed in a thread with a warning on every image of every viewer.
    with open(services.instance_path(instance), "rb") as dicom_file:
        content = dicom_file.read()
    response = HttpResponse(content, content_type="application/dicom")
    response["Content-Length"] = str(len(content))
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def build_case(request: HttpRequest, series_id: int) -> HttpResponse:
    """GET: what will be built, and a confirm button; POST: queue the build, go to its page."""
    series = access_series(request.user, series_id, write=True, reason="build case")
    if request.method == "POST":
        build = services.request_case_build(actor=signed_in_user(request), series=series)
        return redirect("imaging:case_build", job_id=build.pk)
    return render(
        request,
        "imaging/build_case_confirm.html",
        {
            "series": series,
            "study": series.study,
            "count": selectors.instances_in_viewing_order(series.pk).count(),
            "spacing_mm": services.DEFAULT_CASE_SPACING_MM,
        },
    )


@login_required
@require_http_methods(["GET"])
def case_build(request: HttpRequest, job_id: int) -> HttpResponse:
    """The build's page: live progress (websocket, polling as fallback), place in line, cancel."""
    access_case_build(request.user, job_id)
    build = selectors.case_build_for_page(job_id)
    return render(
        request,
        "imaging/case_build.html",
        {
            "build": build,
            "job": build.job,
            "state": jobs.job_state(build.job) if build.job is not None else {},
            "step_labels": jobs.step_labels(),
            "may_change": may_change_case_build(request.user, build),
            "status_url": reverse("api-v1:get_case_build", kwargs={"job_id": build.pk}),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def retry_case_build(request: HttpRequest, job_id: int) -> HttpResponse:
    """GET: the failed build and a confirm button; POST: queue a new build, go to its page."""
    build = access_case_build(request.user, job_id, write=True, reason="retry case build")
    if request.method == "POST":
        new_build = services.retry_case_build(actor=signed_in_user(request), build=build)
        return redirect("imaging:case_build", job_id=new_build.pk)
    return render(
        request,
        "imaging/retry_case_build_confirm.html",
        {"build": build, "job": build.job, "study": build.series.study, "series": build.series},
    )


@login_required
@require_http_methods(["GET", "POST"])
def cancel_case_build(request: HttpRequest, job_id: int) -> HttpResponse:
    """GET: the build and a confirm button; POST: cancel it, back to its page."""
    build = access_case_build(request.user, job_id, write=True, reason="cancel case build")
    if request.method == "POST":
        services.cancel_case_build(
            actor=signed_in_user(request), build=build, reason=request.POST.get("reason", "")
        )
        return redirect("imaging:case_build", job_id=build.pk)
    return render(
        request,
        "imaging/cancel_case_build_confirm.html",
        {"build": build, "job": build.job, "study": build.series.study, "series": build.series},
    )
