"""`/api/v1/imaging/cases/{case_id}/annotations`: a case's proposed parts and the surgeon's
confirmed annotations (versions). Reads open the case (`access_case`, the patient's door,
audited); a save opens the patient and the case to write (`annotation_services`)."""

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema
from ninja.responses import Status

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import ProblemOut, problem_response, problem_title
from clinical_shell.imaging import annotation_selectors as selectors
from clinical_shell.imaging import annotation_services as services
from clinical_shell.imaging.access import access_case
from clinical_shell.imaging.annotation_models import CaseAnnotationVersion

router = Router(tags=["imaging / 影像"])

ERRORS: dict[int, type[Schema]] = {
    400: ProblemOut,
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
}


class AnnotationsIn(Schema):
    patient_id: int
    # the latest version the author saw (0: none yet)
    base_version: int = Field(ge=0)
    # checked by sim_core.case.annotations against the case, not here: a NaN or a point
    # outside the volume gets its own code and field
    levels: list[Any] = Field(default_factory=list)
    bones: list[Any] = Field(default_factory=list)
    landmarks: list[Any] = Field(default_factory=list)
    zones: list[Any] = Field(default_factory=list)
    note: str = ""


class VersionOut(Schema):
    number: int
    created_by: str
    created_at: datetime
    note: str


class AnnotationsOut(Schema):
    case_id: int
    patient_id: int
    version: int  # 0: nothing confirmed yet
    content: dict[str, Any] | None
    versions: list[VersionOut]


def _version_out(v: CaseAnnotationVersion) -> dict[str, Any]:
    person = getattr(v.created_by, "person", None)
    name = person.full_name if person is not None else v.created_by.get_username()
    return {"number": v.number, "created_by": name, "created_at": v.created_at, "note": v.note}


def annotations_out(case_id: int, patient_id: int) -> dict[str, Any]:
    versions = selectors.versions_of(case_id)
    return {
        "case_id": case_id,
        "patient_id": patient_id,
        "version": versions[0].number if versions else 0,
        "content": versions[0].content if versions else None,
        "versions": [_version_out(v) for v in versions],
    }


@router.get(
    "/cases/{case_id}/annotations",
    response={200: AnnotationsOut, **ERRORS},
    summary="A case's confirmed annotations / 病例标注（最新版本）",
)
def get_annotations(request: HttpRequest, case_id: int) -> dict[str, Any]:
    case = access_case(request.user, case_id, reason="case annotations")
    return annotations_out(case.pk, case.patient_id)


@router.get(
    "/cases/{case_id}/annotations/proposal",
    response={200: dict[str, Any], **ERRORS},
    summary="Proposed parts of a case / 病例部位建议（自动分析，待确认）",
)
def get_proposal(request: HttpRequest, case_id: int) -> dict[str, Any]:
    """Components, spinal canal and vertebral levels found in the case's bone segmentation,
    each with a confidence and its reason (`sim_core/case/propose.py`)."""
    case = access_case(request.user, case_id, reason="case annotations")
    return selectors.case_bundle(case)[1]


@router.post(
    "/cases/{case_id}/annotations",
    response={201: AnnotationsOut, **ERRORS},
    summary="Save annotations as a new version / 保存病例标注（新版本）",
)
def save_annotations(
    request: HttpRequest, case_id: int, payload: AnnotationsIn
) -> Status[dict[str, Any]] | HttpResponse:
    try:
        version = services.save_case_annotations(
            actor=signed_in_user(request),
            patient_id=payload.patient_id,
            case_id=case_id,
            base_number=payload.base_version,
            content={
                "levels": payload.levels,
                "bones": payload.bones,
                "landmarks": payload.landmarks,
                "zones": payload.zones,
            },
            note=payload.note,
        )
    except services.AnnotationInputError as exc:
        # the field too, which the problem handler alone would drop
        return problem_response(
            status=exc.status,
            code=exc.code,
            title=problem_title(exc.status),
            detail=str(exc.message),
            errors=[{"field": exc.field, "message": str(exc.message)}],
        )
    return Status(201, annotations_out(case_id, version.case.patient_id))
