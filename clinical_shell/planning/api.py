"""`/api/v1/planning`: a patient's surgical plans on their simulation cases, element checks and
the implant catalog, under the patient rule (`planning.access`)."""

import hashlib
from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.http import parse_etags
from ninja import Query, Router, Schema
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import ProblemOut
from clinical_shell.imaging import annotation_selectors
from clinical_shell.planning import selectors, services, slices
from clinical_shell.planning.access import access_case_for_plan, access_plan, access_plan_element
from clinical_shell.planning.models import Plan
from clinical_shell.planning.schemas import (
    CheckIn,
    ChecksOut,
    ElementWriteIn,
    ImplantOut,
    PlanIn,
    PlanOut,
    PlanSummaryOut,
    VersionIn,
)
from clinical_shell.records.access import access_patient
from sim_core.implants import Implant

router = Router(tags=["planning / 手术规划"])

ERRORS: dict[int, type[Schema]] = {
    400: ProblemOut,
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
}


class PatientParams(Schema):
    patient_id: int


class DeleteParams(Schema):
    # the plan version the client last saw
    version: int


@router.get(
    "/implants",
    response={200: list[ImplantOut], 401: ProblemOut},
    summary="Implant catalog / 内植物目录",
)
def list_implants(request: HttpRequest) -> list[Implant]:
    return list(services.implant_catalog())


@router.get(
    "/plans",
    response={200: list[PlanSummaryOut], **ERRORS},
    summary="A patient's plans / 患者的手术规划",
)
@paginate(PageNumberPagination)
def list_plans(request: HttpRequest, params: Query[PatientParams]) -> QuerySet[Plan]:
    patient = access_patient(request.user, params.patient_id, reason="api plan list")
    return selectors.plans_of_patient(patient.pk)


@router.post("/plans", response={201: PlanOut, **ERRORS}, summary="Create a plan / 新建规划")
def create_plan(request: HttpRequest, payload: PlanIn) -> Status[Plan]:
    """A draft on one of the patient's simulation cases (a case of another patient: 400)."""
    patient, case = access_case_for_plan(request.user, payload.patient_id, payload.case_id)
    plan = services.create_plan(
        actor=signed_in_user(request), patient=patient, case=case, title=payload.title
    )
    return Status(201, selectors.plan_with_elements(plan.pk))


@router.get("/plans/{plan_id}", response={200: PlanOut, **ERRORS}, summary="Plan / 规划详情")
def get_plan(request: HttpRequest, plan_id: int) -> Plan:
    """The plan, its elements and each element's checks as last saved."""
    plan = access_plan(request.user, plan_id, reason="api plan")
    return selectors.plan_with_elements(plan.pk)


@router.post(
    "/plans/{plan_id}/elements",
    response={201: PlanOut, **ERRORS},
    summary="Add an element / 添加规划要素",
)
def add_element(request: HttpRequest, plan_id: int, payload: ElementWriteIn) -> Status[Plan]:
    """Checks are computed and stored with the element; the plan's version goes up by one. A
    `version` other than the plan's current one: 409 "plan_version_conflict"."""
    plan = access_plan(request.user, plan_id, write=True, reason="plan element add")
    services.add_element(
        actor=signed_in_user(request),
        plan=plan,
        version=payload.version,
        data=payload.element.data(),
    )
    return Status(201, selectors.plan_with_elements(plan.pk))


@router.put(
    "/plans/{plan_id}/elements/{element_id}",
    response={200: PlanOut, **ERRORS},
    summary="Change an element / 修改规划要素",
)
def update_element(
    request: HttpRequest, plan_id: int, element_id: int, payload: ElementWriteIn
) -> Plan:
    element = access_plan_element(request.user, plan_id, element_id, reason="plan element update")
    services.update_element(
        actor=signed_in_user(request),
        element=element,
        version=payload.version,
        data=payload.element.data(),
    )
    return selectors.plan_with_elements(plan_id)


@router.delete(
    "/plans/{plan_id}/elements/{element_id}",
    response={200: PlanOut, **ERRORS},
    summary="Remove an element / 删除规划要素",
)
def delete_element(
    request: HttpRequest, plan_id: int, element_id: int, params: Query[DeleteParams]
) -> Plan:
    element = access_plan_element(request.user, plan_id, element_id, reason="plan element delete")
    services.delete_element(actor=signed_in_user(request), element=element, version=params.version)
    return selectors.plan_with_elements(plan_id)


@router.post(
    "/plans/{plan_id}/check",
    response={200: ChecksOut, **ERRORS},
    summary="Check an unsaved element / 检查未保存的要素",
)
def check_element(request: HttpRequest, plan_id: int, payload: CheckIn) -> dict[str, Any]:
    """The checks of an element being placed (dragged) on the plan's case; nothing is written.
    The fields are those of a saved element's `checks` (docs/planning.md)."""
    plan = access_plan(request.user, plan_id, reason="plan check")
    return services.compute_checks(case=plan.case, data=payload.element.data())


@router.post(
    "/plans/{plan_id}/approve",
    response={200: PlanOut, **ERRORS},
    summary="Approve a plan / 批准规划",
)
def approve_plan(request: HttpRequest, plan_id: int, payload: VersionIn) -> Plan:
    """A draft becomes approved, read-only from then on; the case's earlier approved plan is
    superseded."""
    plan = access_plan(request.user, plan_id, write=True, reason="plan approve")
    services.approve_plan(actor=signed_in_user(request), plan=plan, version=payload.version)
    return selectors.plan_with_elements(plan.pk)


@router.get(
    "/plans/{plan_id}/bone-mesh",
    response={200: None, 304: None, **ERRORS},
    url_name="planning_bone_mesh",
    summary="The case's bone mesh (binary glTF) / 病例骨骼三维模型",
    openapi_extra={
        "responses": {
            "200": {
                "description": "model/gltf-binary, case-frame mm (docs/planning.md)",
                "content": {
                    "model/gltf-binary": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        }
    },
)
def bone_mesh(request: HttpRequest, plan_id: int) -> HttpResponse:
    """The bones of the plan's case, decimated for a browser, in the frame of the plan's points.
    ETag per case content; `If-None-Match` with it: 304. Read through the case's access rule."""
    # imported here: the mesh code loads VTK, which the shell need not load at start-up
    from clinical_shell.planning.bone_mesh import bone_mesh_response

    plan = access_plan(request.user, plan_id, reason="plan bone mesh")
    return bone_mesh_response(request, plan.case)


# ---- the planner's slice views and protected zones (planning/slices.py) ----


class SliceViewOut(Schema):
    name: str
    # the case axis the view looks along; slice k is index k on it
    normal_axis: int
    count: int
    # pixel column c is index c (n - 1 - c when flipped) along right_axis; rows along down_axis
    right_axis: int
    right_flip: bool
    down_axis: int
    down_flip: bool
    width: int
    height: int
    # the patient directions on the four sides: left, right, top, bottom (A/P/L/R/S/I)
    letters: dict[str, str]


class SliceGeometryOut(Schema):
    shape: list[int]
    spacing_mm: float
    window_centre_hu: float
    window_width_hu: float
    views: dict[str, SliceViewOut]


def _private_body(
    request: HttpRequest, body: Callable[[], bytes], etag: str, media_type: str
) -> HttpResponse:
    """`body()` under `etag`, or 304 when the client holds it. The caller has opened the plan
    (audited) first: "private, no-cache" makes the browser ask every time, as for the mesh."""
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    asked = request.headers.get("If-None-Match", "")
    if etag in parse_etags(asked) or asked.strip() == "*":
        return HttpResponseNotModified(headers=headers)
    return HttpResponse(body(), content_type=media_type, headers=headers)


@router.get(
    "/plans/{plan_id}/slices",
    response={200: SliceGeometryOut, **ERRORS},
    url_name="planning_slice_geometry",
    summary="The case's slice views: geometry / 病例断层视图的几何",
)
def slice_geometry(request: HttpRequest, plan_id: int) -> dict[str, Any]:
    """How the axial, sagittal and coronal slices of the plan's case lie in the case frame (the
    frame of the plan's points), for placing the crosshair and the elements on them."""
    plan = access_plan(request.user, plan_id, reason="plan slices")
    return slices.slice_geometry(plan.case)


@router.get(
    "/plans/{plan_id}/slices/{view}/{index}",
    response={200: None, 304: None, **ERRORS},
    url_name="planning_slice",
    summary="One slice of the case's CT (PNG) / 病例 CT 的一个断层",
    openapi_extra={
        "responses": {
            "200": {
                "description": "image/png, 8-bit, bone window, radiological convention",
                "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def slice_image(
    request: HttpRequest, plan_id: int, view: slices.ViewName, index: int
) -> HttpResponse:
    """Slice `index` (0-based, `count` in the geometry) of the view; 422 "slice_out_of_range"
    outside the volume. ETag per case content, view, slice and window."""
    plan = access_plan(request.user, plan_id, reason="plan slice")
    case = plan.case
    key = hashlib.sha256(
        f"{case.content_hash}|{view}|{index}|{slices.WINDOW_CENTRE_HU}|{slices.WINDOW_WIDTH_HU}".encode()
    ).hexdigest()[:32]
    # out of range is refused before any ETag answers for it
    slices.check_slice_index(case, view, index)
    return _private_body(
        request, lambda: slices.slice_png(case, view, index), f'"{key}"', "image/png"
    )


@router.get(
    "/plans/{plan_id}/zone-mesh",
    response={200: None, 304: None, **ERRORS},
    url_name="planning_zone_mesh",
    summary="The case's protected zones (binary glTF) / 病例的保护结构三维模型",
    openapi_extra={
        "responses": {
            "200": {
                "description": "model/gltf-binary, case-frame mm; meshes named nerve / vessel",
                "content": {
                    "model/gltf-binary": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        }
    },
)
def zone_mesh(request: HttpRequest, plan_id: int) -> HttpResponse:
    """The nerve and vessel labels of the plan's case, and the protected tubes confirmed on it,
    as surfaces for the 3D view. ETag per case content, annotation version and format."""
    plan = access_plan(request.user, plan_id, reason="plan zone mesh")
    case = plan.case
    # the tubes the surgeon confirmed on the case (its latest annotation version), as the
    # checks measure them; the ETag names that version too
    tubes = annotation_selectors.confirmed_tubes(case.pk)
    version = tubes[0] if tubes else ""
    digest = hashlib.sha256(f"{case.content_hash}|{version}".encode()).hexdigest()[:32]
    etag = f'"{digest}-z{slices.ZONE_FORMAT}"'
    return _private_body(request, lambda: slices.zone_glb(case, tubes), etag, "model/gltf-binary")
