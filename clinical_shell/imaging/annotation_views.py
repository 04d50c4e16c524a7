"""The page where a surgeon confirms a case's proposed parts, and the slice pictures it shows.

Thin: one access check (`access_case`, the patient's door, audited on every page and every
slice), one selector. The save goes to the API (`annotation_api`), which opens the case to
write; the page offers the save only to those who may change the record.
"""

import copy
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from clinical_shell.errors import NotFoundError
from clinical_shell.imaging import annotation_selectors as selectors
from clinical_shell.imaging.access import access_case
from clinical_shell.imaging.annotation_api import annotations_out
from clinical_shell.records.access import clinical_institution_ids


def _in_reader_language(proposal: dict[str, Any]) -> dict[str, Any]:
    # the proposal holds each reason and note in both languages (sim_core.case.propose.Said);
    # the page shows the reader's. A copy: the selector caches the proposal per bundle.
    zh = (get_language() or "zh-hans").startswith("zh")
    shown = copy.deepcopy(proposal)
    parts = [*shown["components"], *shown["levels"]]
    if shown["canal"] is not None:
        parts.append(shown["canal"])
    for part in parts:
        said = part.pop("reason_zh")
        if zh:
            part["reason"] = said
    notes_zh = shown.pop("notes_zh")
    if zh:
        shown["notes"] = notes_zh
    return shown


@login_required
@require_GET
def annotate_case(request: HttpRequest, case_id: int) -> HttpResponse:
    case = access_case(request.user, case_id, reason="case annotations")
    bundle, proposal = selectors.case_bundle(case)
    study = case.series.study
    config = {
        "caseId": case.pk,
        "patientId": case.patient_id,
        "geometry": selectors.view_geometry(bundle),
        "proposal": _in_reader_language(proposal),
        "annotations": annotations_out(case.pk, case.patient_id),
        "bones": [{"id": int(b["id"]), "name": str(b["name"])} for b in bundle.meta["bones"]],
        "saveUrl": reverse("api-v1:save_annotations", args=[case.pk]),
        "sliceUrl": reverse("imaging:case_slice", args=[case.pk, 9, 999999]),
    }
    return render(
        request,
        "imaging/annotate_case.html",
        {
            "case": case,
            "study": study,
            "patient": study.patient,
            "config": config,
            "may_write": study.uploaded_at_id in clinical_institution_ids(request.user, write=True),
            "csrf_token_value": get_token(request),
        },
    )


@login_required
@require_GET
def case_slice(request: HttpRequest, case_id: int, axis: int, index: int) -> HttpResponse:
    case = access_case(request.user, case_id, reason="case slice")
    bundle = selectors.case_bundle(case)[0]
    if axis not in (0, 1, 2) or not 0 <= index < bundle.hu.shape[axis]:
        raise NotFoundError("slice_not_found", _("切片不在病例范围内"))
    response = HttpResponse(selectors.slice_png(bundle, axis, index), content_type="image/png")
    # patient data: the browser asks again, so every view passes the access check
    response["Cache-Control"] = "private, no-store"
    return response
