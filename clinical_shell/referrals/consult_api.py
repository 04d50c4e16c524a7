"""`/api/v1/consultations`: teleconsultation and MDT actions under the same access
rules and audit as the pages; field problems listed one by one (422)."""

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import ProblemOut, problem_response, problem_title
from clinical_shell.referrals import consult_selectors as selectors
from clinical_shell.referrals import consult_services as consult
from clinical_shell.referrals.consult_models import Consultation, MdtCase, MdtMeeting

router = Router(tags=["consultations / 远程会诊与MDT"])

ERRORS: dict[int, type[Schema]] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
}
T = TypeVar("T")


def _run(fn: Callable[[], T]) -> T | HttpResponse:
    try:
        return fn()
    except consult.ConsultFormError as exc:
        return problem_response(
            status=exc.status,
            code=exc.code,
            title=problem_title(exc.status),
            detail=str(exc.message),
            errors=[{"field": k, "message": str(v)} for k, v in exc.errors.items()],
        )


class SlotIn(Schema):
    institution_id: int
    specialty: str
    starts_at: datetime
    minutes: int = 30


class SlotOut(Schema):
    id: int
    expert_id: int
    institution_id: int
    specialty: str
    starts_at: datetime
    ends_at: datetime


class ConsultationIn(Schema):
    patient_id: int
    requesting_institution_id: int
    priority: str = "routine"
    specialty: str = ""
    expert_id: int | None = None
    slot_id: int | None = None
    question: str = ""
    history: str = ""
    findings: str = ""
    diagnosis_treatment: str = ""
    consent_by: str = ""
    consent_relationship: str = ""
    consent_at: datetime | None = None
    consent_signature: str = ""
    study_ids: list[int] = Field(default_factory=list)
    document_ids: list[int] = Field(default_factory=list)


class ConsultationOut(Schema):
    id: int
    patient_id: int
    requesting_institution_id: int
    requested_by_id: int
    priority: str
    state: str
    specialty: str
    expert_id: int | None
    slot_id: int | None
    question: str
    history: str
    findings: str
    diagnosis_treatment: str
    consent_by: str
    consent_relationship: str
    consent_at: datetime
    created_at: datetime
    answer_due_at: datetime
    escalated_at: datetime | None
    closed_at: datetime | None


class AttachmentOut(Schema):
    kind: str
    id: int
    label: str
    body: str = ""


class AnswerIn(Schema):
    opinion: str
    recommendations: str
    recommend_up_referral: bool = False


class OpinionOut(Schema):
    consultation_id: int
    author_id: int
    opinion: str
    recommendations: str
    recommend_up_referral: bool
    signed_at: datetime
    signature: str
    verified: bool


class MeetingIn(Schema):
    institution_id: int
    title: str
    scheduled_at: datetime
    specialties: list[str]
    participant_ids: list[int] = Field(default_factory=list)


class CaseOut(Schema):
    id: int
    patient_id: int
    summary: str
    decision: str
    signed_by_id: int | None
    signed_at: datetime | None
    verified: bool
    study_ids: list[int]


class MeetingOut(Schema):
    id: int
    title: str
    institution_id: int
    chair_id: int
    scheduled_at: datetime
    specialties: list[str]
    participant_ids: list[int]
    minutes: str
    ended_at: datetime | None
    cases: list[CaseOut]


class CaseIn(Schema):
    patient_id: int
    summary: str
    study_ids: list[int] = Field(default_factory=list)


class MinutesIn(Schema):
    minutes: str


class DecisionIn(Schema):
    decision: str


def _opinion(c: Consultation) -> dict[str, Any]:
    r = c.opinion
    return {
        "consultation_id": c.pk,
        "author_id": r.author_id,
        "opinion": r.opinion,
        "recommendations": r.recommendations,
        "recommend_up_referral": r.recommend_up_referral,
        "signed_at": r.signed_at,
        "signature": r.signature,
        "verified": consult.verify_opinion(r),
    }


def _case(case: MdtCase) -> dict[str, Any]:
    return {
        "id": case.pk,
        "patient_id": case.patient_id,
        "summary": case.summary,
        "decision": case.decision,
        "signed_by_id": case.signed_by_id,
        "signed_at": case.signed_at,
        "verified": consult.verify_case(case),
        "study_ids": [a.object_id for a in case.attachments.all()],
    }


def _meeting(m: MdtMeeting) -> dict[str, Any]:
    return {
        "id": m.pk,
        "title": m.title,
        "institution_id": m.institution_id,
        "chair_id": m.chair_id,
        "scheduled_at": m.scheduled_at,
        "specialties": m.specialties,
        "participant_ids": sorted(m.participants.values_list("pk", flat=True)),
        "minutes": m.minutes,
        "ended_at": m.ended_at,
        "cases": [_case(c) for c in m.cases.select_related("meeting")],
    }


@router.get("/slots", response={200: list[SlotOut], **ERRORS}, summary="Free slots / 专家时段")
def list_slots(request: HttpRequest, specialty: str = "") -> list[Any]:
    signed_in_user(request)
    return consult.free_slots(specialty)


@router.post("/slots", response={201: SlotOut, **ERRORS}, summary="Publish a slot / 发布时段")
def publish_slot(request: HttpRequest, payload: SlotIn) -> Any:
    user = signed_in_user(request)
    result = _run(lambda: consult.publish_slot(actor=user, **payload.dict()))
    return result if isinstance(result, HttpResponse) else Status(201, result)


@router.get("", response={200: list[ConsultationOut], **ERRORS}, summary="My consultations")
def list_consultations(request: HttpRequest) -> list[Any]:
    user = signed_in_user(request)
    rows = list(selectors.my_consultations(user)[:200])
    selectors.audit_listed(user, rows)
    return rows


@router.post("", response={201: ConsultationOut, **ERRORS}, summary="Request / 申请会诊")
def request_consultation(request: HttpRequest, payload: ConsultationIn) -> Any:
    user = signed_in_user(request)
    data = payload.dict(exclude={"patient_id", "requesting_institution_id", "study_ids"})
    data.pop("document_ids")
    result = _run(
        lambda: consult.request_consultation(
            actor=user,
            patient_id=payload.patient_id,
            requesting_institution_id=payload.requesting_institution_id,
            data=data,
            study_ids=payload.study_ids,
            document_ids=payload.document_ids,
        )
    )
    return result if isinstance(result, HttpResponse) else Status(201, result)


@router.get("/{int:consultation_id}", response={200: ConsultationOut, **ERRORS})
def get_consultation(request: HttpRequest, consultation_id: int) -> Any:
    return consult.access_consultation(signed_in_user(request), consultation_id)


@router.get(
    "/{int:consultation_id}/attachments",
    response={200: list[AttachmentOut], **ERRORS},
    summary="Attached records / 所附资料",
)
def get_attachments(request: HttpRequest, consultation_id: int) -> list[dict[str, Any]]:
    user = signed_in_user(request)
    c = consult.access_consultation(user, consultation_id)
    items = consult.read_attachments(user, c)
    return [
        {"kind": "study", "id": s.pk, "label": s.description or s.study_uid}
        for s in items["studies"]
    ] + [
        {"kind": "document", "id": d.pk, "label": d.title, "body": d.body}
        for d in items["documents"]
    ]


@router.post(
    "/{int:consultation_id}/answer",
    response={201: OpinionOut, **ERRORS},
    summary="Signed opinion / 出具会诊意见",
)
def answer(request: HttpRequest, consultation_id: int, payload: AnswerIn) -> Any:
    user = signed_in_user(request)
    consult.access_consultation(user, consultation_id, action="consultation.answer")
    result = _run(
        lambda: consult.answer(actor=user, consultation_id=consultation_id, **payload.dict())
    )
    if isinstance(result, HttpResponse):
        return result
    return Status(201, _opinion(result.consultation))


@router.get("/{int:consultation_id}/opinion", response={200: OpinionOut, **ERRORS})
def get_opinion(request: HttpRequest, consultation_id: int) -> Any:
    c = consult.access_consultation(signed_in_user(request), consultation_id)
    if not hasattr(c, "opinion"):
        return problem_response(
            status=404, code="opinion_not_found", title=problem_title(404), detail="—"
        )
    return _opinion(c)


@router.post("/{int:consultation_id}/close", response={200: ConsultationOut, **ERRORS})
def close(request: HttpRequest, consultation_id: int) -> Any:
    user = signed_in_user(request)
    consult.access_consultation(user, consultation_id, action="consultation.close")
    return consult.close(actor=user, consultation_id=consultation_id)


@router.post("/{int:consultation_id}/cancel", response={200: ConsultationOut, **ERRORS})
def cancel(request: HttpRequest, consultation_id: int) -> Any:
    user = signed_in_user(request)
    consult.access_consultation(user, consultation_id, action="consultation.cancel")
    return consult.close(actor=user, consultation_id=consultation_id, cancel=True)


@router.get("/mdt", response={200: list[MeetingOut], **ERRORS}, summary="My MDT meetings")
def list_meetings(request: HttpRequest) -> list[Any]:
    return [_meeting(m) for m in selectors.my_meetings(signed_in_user(request))[:100]]


@router.post("/mdt", response={201: MeetingOut, **ERRORS}, summary="Create an MDT meeting")
def create_meeting(request: HttpRequest, payload: MeetingIn) -> Any:
    user = signed_in_user(request)
    result = _run(lambda: consult.create_meeting(actor=user, **payload.dict()))
    return result if isinstance(result, HttpResponse) else Status(201, _meeting(result))


@router.get("/mdt/{int:meeting_id}", response={200: MeetingOut, **ERRORS})
def get_meeting(request: HttpRequest, meeting_id: int) -> Any:
    return _meeting(consult.access_meeting(signed_in_user(request), meeting_id))


@router.post("/mdt/{int:meeting_id}/cases", response={201: CaseOut, **ERRORS})
def add_case(request: HttpRequest, meeting_id: int, payload: CaseIn) -> Any:
    user = signed_in_user(request)
    consult.access_meeting(user, meeting_id)
    result = _run(lambda: consult.add_case(actor=user, meeting_id=meeting_id, **payload.dict()))
    return result if isinstance(result, HttpResponse) else Status(201, _case(result))


@router.post("/mdt/{int:meeting_id}/minutes", response={200: MeetingOut, **ERRORS})
def save_minutes(request: HttpRequest, meeting_id: int, payload: MinutesIn) -> Any:
    user = signed_in_user(request)
    consult.access_meeting(user, meeting_id)
    return _meeting(consult.save_minutes(actor=user, meeting_id=meeting_id, **payload.dict()))


@router.post("/mdt/cases/{int:case_id}/decision", response={200: CaseOut, **ERRORS})
def decide_case(request: HttpRequest, case_id: int, payload: DecisionIn) -> Any:
    user = signed_in_user(request)
    case = MdtCase.objects.filter(pk=case_id).first()
    consult.access_meeting(user, case.meeting_id if case is not None else 0)
    result = _run(lambda: consult.decide_case(actor=user, case_id=case_id, **payload.dict()))
    return result if isinstance(result, HttpResponse) else _case(result)


@router.post("/mdt/{int:meeting_id}/end", response={200: MeetingOut, **ERRORS})
def end_meeting(request: HttpRequest, meeting_id: int) -> Any:
    user = signed_in_user(request)
    consult.access_meeting(user, meeting_id)
    return _meeting(consult.end_meeting(actor=user, meeting_id=meeting_id))
