"""`/api/v1/patients`: the same access policy and audit as the pages."""

from datetime import date
from typing import Literal

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status
from pydantic import Field

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.audit.reads import AuditedPageNumberPagination
from clinical_shell.errors import DomainError, NotFoundError, ProblemOut
from clinical_shell.network.models import Institution
from clinical_shell.records import coding, selectors, services
from clinical_shell.records.access import (
    access_duplicate,
    access_patient,
    clinical_institution_ids,
    memberships_of,
    record_scope,
    require_writer_at,
)
from clinical_shell.records.models import DuplicateCandidate, Encounter, MergeRequest, Patient
from clinical_shell.records.schemas import (
    CodeOut,
    CodeSearchParams,
    DuplicateOut,
    EncounterIn,
    EncounterOut,
    MergeDecisionIn,
    MergeIn,
    MergeRequestOut,
    PatientIn,
    PatientListOut,
    PatientOut,
)

router = Router(tags=["patients / 患者"])

ERRORS: dict[int, type[Schema]] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    422: ProblemOut,
}


class SearchParams(Schema):
    """Search text (as on the page) and filters; see docs/records.md, Search."""

    q: str = ""
    institution: int | None = None
    sex: Literal["", "M", "F", "U"] = ""
    age_min: int | None = Field(None, ge=0, le=150)
    age_max: int | None = Field(None, ge=0, le=150)
    registered_from: date | None = None
    registered_to: date | None = None
    visited_from: date | None = None
    visited_to: date | None = None
    mine: bool = False
    recent: bool = False
    sort: Literal[
        "",
        "name",
        "-name",
        "birth_date",
        "-birth_date",
        "sex",
        "-sex",
        "institution",
        "-institution",
        "last_visit",
        "-last_visit",
    ] = ""


def _institution(institution_id: int) -> Institution:
    institution = Institution.objects.filter(pk=institution_id).first()
    if institution is None:
        raise NotFoundError(
            "institution_not_found",
            _("未找到编号为 %(institution_id)s 的机构") % {"institution_id": institution_id},
        )
    return institution


@router.get("", response=list[PatientListOut], summary="Search patients / 检索患者")
@paginate(AuditedPageNumberPagination, audit_action="patient.search")
def list_patients(request: HttpRequest, params: Query[SearchParams]) -> QuerySet[Patient]:
    """By name prefix or given name (汉字), pinyin (zsf, zhangsan), birth date, an exact ID number
    or its last 4-6 characters, or the patient number; filters and sort as on the page
    (docs/records.md, Patient search)."""
    institution_ids = clinical_institution_ids(request.user)
    # the page returned is audited by the paginator, naming every patient on it
    request.audit_detail = {  # type: ignore[attr-defined]
        "query_kind": selectors.classify_query(params.q).kind,
        "via": "api",
    }
    user_id = signed_in_user(request).pk
    filters = selectors.SearchFilters(
        institution_id=params.institution,
        sex=params.sex,
        age_min=params.age_min,
        age_max=params.age_max,
        registered_from=params.registered_from,
        registered_to=params.registered_to,
        visited_from=params.visited_from,
        visited_to=params.visited_to,
        mine_user_id=user_id if params.mine else None,
        recent_user_id=user_id if params.recent else None,
    )
    return selectors.search_patients(
        institution_ids=institution_ids, text=params.q, filters=filters, sort=params.sort
    )


@router.post("", response={201: PatientOut, **ERRORS}, summary="Register a patient / 建档")
def create_patient(request: HttpRequest, payload: PatientIn) -> Status[Patient]:
    require_writer_at(request.user, payload.institution_id)
    patient = services.register_patient(
        actor=signed_in_user(request),
        institution=_institution(payload.institution_id),
        name=payload.name,
        sex=payload.sex,
        birth_date=payload.birth_date,
        resident_id=payload.resident_id,
        phone=payload.phone,
        address=payload.address,
    )
    return Status(201, patient)


@router.get("/duplicates", response=list[DuplicateOut], summary="Duplicate review queue / 疑似重复")
@paginate(AuditedPageNumberPagination, audit_action="patient.duplicates_list")
def list_duplicates(request: HttpRequest) -> QuerySet[DuplicateCandidate]:
    """Open pairs whose two patients are both in care where the caller writes records."""
    signed_in_user(request)
    request.audit_detail = {"via": "api"}  # type: ignore[attr-defined]
    return selectors.open_duplicates(
        institution_ids=clinical_institution_ids(request.user, write=True)
    )


@router.post(
    "/duplicates/{candidate_id}/merge",
    response={202: MergeRequestOut, **ERRORS},
    summary="Request a merge of a duplicate pair / 申请合并",
)
def merge_duplicate(
    request: HttpRequest, candidate_id: int, payload: MergeIn
) -> Status[MergeRequest]:
    """Nothing merges yet: another reviewer approves (`.../merge/approve`) or rejects it."""
    candidate, first, second = access_duplicate(request.user, candidate_id)
    if payload.survivor_id not in (first.pk, second.pk):
        raise DomainError(
            "survivor_not_in_pair",
            _("保留的档案须为这两份之一"),
            status=422,
        )
    survivor, merged = (first, second) if payload.survivor_id == first.pk else (second, first)
    merge_request = services.request_merge(
        actor=signed_in_user(request),
        candidate=candidate,
        survivor=survivor,
        merged=merged,
        reason=payload.reason,
    )
    return Status(202, merge_request)


def _pending(candidate_id: int) -> MergeRequest:
    pending = selectors.pending_merge_request(candidate_id)
    if pending is None:
        raise NotFoundError("no_merge_request", _("没有待批准的合并申请"))
    return pending


@router.post(
    "/duplicates/{candidate_id}/merge/approve",
    response={200: PatientOut, **ERRORS},
    summary="Approve a merge request (a second person) / 批准合并",
)
def approve_merge(request: HttpRequest, candidate_id: int, payload: MergeDecisionIn) -> Patient:
    """By someone other than the requester (403 `second_person_required`); merges now."""
    access_duplicate(request.user, candidate_id)
    return services.approve_merge(
        actor=signed_in_user(request), merge_request=_pending(candidate_id), note=payload.note
    )


@router.post(
    "/duplicates/{candidate_id}/merge/reject",
    response={200: MergeRequestOut, **ERRORS},
    summary="Reject a merge request (a second person) / 驳回合并",
)
def reject_merge(request: HttpRequest, candidate_id: int, payload: MergeDecisionIn) -> MergeRequest:
    access_duplicate(request.user, candidate_id)
    return services.reject_merge(
        actor=signed_in_user(request), merge_request=_pending(candidate_id), note=payload.note
    )


@router.post(
    "/duplicates/{candidate_id}/dismiss",
    response={200: DuplicateOut, **ERRORS},
    summary="Not the same person / 非重复",
)
def dismiss_duplicate(request: HttpRequest, candidate_id: int) -> DuplicateCandidate:
    candidate, _first, _second = access_duplicate(request.user, candidate_id)
    return services.dismiss_duplicate(actor=signed_in_user(request), candidate=candidate)


@router.get(
    "/codes",
    response={200: list[CodeOut], **ERRORS},
    url_name="record_codes",
    summary="Search the code tables / 编码检索 (ICD-10, ICD-9-CM-3, AO/OTA)",
)
def search_codes(request: HttpRequest, params: Query[CodeSearchParams]) -> list[coding.CodeEntry]:
    """By code prefix (S72, 79.3, 31A), Chinese name (股骨颈), pinyin initials (ggjgz) or English.

    The tables are curated orthopedic subsets (docs/records.md); no patient data, no audit.
    An unknown `system` is a 422 problem (`unknown_code_system`).
    """
    signed_in_user(request)
    return coding.search(
        params.system, params.q, limit=params.limit, selectable_only=params.selectable
    )


@router.get("/{patient_id}", response={200: PatientOut, **ERRORS}, summary="Patient / 患者详情")
def get_patient(request: HttpRequest, patient_id: int) -> Patient:
    return access_patient(request.user, patient_id, reason="api")


@router.get(
    "/{patient_id}/encounters",
    response={200: list[EncounterOut], **ERRORS},
    summary="Timeline across the network / 跨机构就诊记录",
)
@paginate(PageNumberPagination)
def list_encounters(request: HttpRequest, patient_id: int) -> QuerySet[Encounter]:
    memberships = memberships_of(request.user)
    patient = access_patient(
        request.user, patient_id, reason="api timeline", memberships=memberships
    )
    scope = record_scope(request.user, patient.pk, memberships=memberships)
    return selectors.patient_timeline(patient.pk, scope)


@router.post(
    "/{patient_id}/encounters",
    response={201: EncounterOut, **ERRORS},
    summary="Record an encounter / 录入就诊",
)
def create_encounter(
    request: HttpRequest, patient_id: int, payload: EncounterIn
) -> Status[Encounter]:
    patient = access_patient(request.user, patient_id, write=True, reason="api encounter")
    require_writer_at(request.user, payload.institution_id)
    data = services.EncounterIn(
        kind=payload.kind,
        started_at=payload.started_at,
        chief_complaint=payload.chief_complaint,
        notes=payload.notes,
        department_id=payload.department_id,
        diagnoses=[
            services.DiagnosisIn(d.icd10_code, d.description, d.ao_ota_code, d.primary)
            for d in payload.diagnoses
        ],
        procedures=[
            services.ProcedureIn(p.icd9cm3_code, p.description, p.performed_at)
            for p in payload.procedures
        ],
    )
    encounter = services.record_encounter(
        actor=signed_in_user(request),
        patient=patient,
        institution=_institution(payload.institution_id),
        data=data,
    )
    scope = record_scope(request.user, patient.pk)
    return Status(201, selectors.patient_timeline(patient.pk, scope).get(pk=encounter.pk))
