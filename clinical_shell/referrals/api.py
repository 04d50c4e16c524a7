"""`/api/v1/referrals`: every referral action, under the same access rules and audit as the
pages; refusals and illegal moves are problem details (403/404/409/422), nothing changed."""

from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import NotFoundError, ProblemOut, problem_response, problem_title
from clinical_shell.network.models import Institution
from clinical_shell.referrals import rules, selectors, services
from clinical_shell.referrals.access import access_referral
from clinical_shell.referrals.models import Referral, TransferApproval
from clinical_shell.referrals.schemas import (
    ApprovalOut,
    CriteriaParams,
    CriterionOut,
    DecisionIn,
    DeclinedOut,
    DeclineIn,
    EventOut,
    InboxParams,
    ReasonIn,
    ReferralIn,
    ReferralOut,
    ShareIn,
    ShareOut,
    VersionIn,
)

router = Router(tags=["referrals / 双向转诊"])

ERRORS: dict[int, type[Schema]] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
}

T = TypeVar("T")


def _form_problem(exc: services.ReferralFormError) -> HttpResponse:
    """Field problems listed one by one (the problem handler alone would drop them)."""
    return problem_response(
        status=exc.status,
        code=exc.code,
        title=problem_title(exc.status),
        detail=str(exc.message),
        errors=[{"field": k, "message": str(v)} for k, v in exc.errors.items()],
    )


def _run(fn: Callable[[], T]) -> T | HttpResponse:
    try:
        return fn()
    except services.ReferralFormError as exc:
        return _form_problem(exc)


def _institution(institution_id: int | None) -> Institution | None:
    if institution_id is None:
        return None
    institution = Institution.objects.filter(pk=institution_id).first()
    if institution is None:
        raise NotFoundError(
            "institution_not_found",
            _("未找到编号为 %(institution_id)s 的机构") % {"institution_id": institution_id},
        )
    return institution


def _visible(request: HttpRequest, referral_id: int, action: str) -> Referral:
    """Refuse (audited, 403/404) before any action on a referral the caller may not see."""
    return access_referral(signed_in_user(request), referral_id, action=action)


@router.get("", response={200: list[ReferralOut], **ERRORS}, summary="Inbox / 转诊收件箱")
@paginate(PageNumberPagination)
def list_referrals(request: HttpRequest, params: Query[InboxParams]) -> QuerySet[Referral]:
    """One box (incoming, outgoing, overdue, approvals) of your institutions, filtered."""
    user = signed_in_user(request)
    return selectors.inbox(user, selectors.InboxFilter(**params.dict()))


@router.get("/criteria", response={200: list[CriterionOut], **ERRORS}, summary="Criteria / 指征")
def list_criteria(request: HttpRequest, params: Query[CriteriaParams]) -> list[Any]:
    """The checklist a sender of this institution's level sees for this direction."""
    signed_in_user(request)
    institution = _institution(params.institution_id)
    assert institution is not None
    return rules.criteria_for(params.direction, institution.level)


@router.post("", response={201: ReferralOut, **ERRORS}, summary="Draft a referral / 新建转诊")
def create_referral(request: HttpRequest, payload: ReferralIn) -> Any:
    user = signed_in_user(request)
    sender = _institution(payload.from_institution_id)
    assert sender is not None
    receiver = _institution(payload.to_institution_id)
    result = _run(
        lambda: services.create_draft(
            actor=user,
            patient_id=payload.patient_id,
            direction=payload.direction,
            from_institution=sender,
            to_institution=receiver,
            outside_hospital=payload.outside_hospital,
            urgency=payload.urgency,
            reason=payload.reason,
            criteria=payload.criteria,
            handover=payload.handover,
        )
    )
    return result if isinstance(result, HttpResponse) else Status(201, result)


@router.get("/{referral_id}", response={200: ReferralOut, **ERRORS}, summary="A referral / 转诊")
def get_referral(request: HttpRequest, referral_id: int) -> Referral:
    return _visible(request, referral_id, "referral.read")


@router.get(
    "/{referral_id}/events", response={200: list[EventOut], **ERRORS}, summary="Its moves / 流转"
)
def list_events(request: HttpRequest, referral_id: int) -> list[Any]:
    return list(_visible(request, referral_id, "referral.read").events.all())


@router.get(
    "/{referral_id}/shares",
    response={200: list[ShareOut], **ERRORS},
    summary="What travels with it / 共享资料",
)
def list_shares(request: HttpRequest, referral_id: int) -> list[Any]:
    """Readable by the sender, and by the receiver only while the referral is open (audited)."""
    user = signed_in_user(request)
    referral = _visible(request, referral_id, "referral.read")
    selectors.require_shares(user, referral)
    return selectors.shared_items(user, referral)


@router.post(
    "/{referral_id}/shares",
    response={201: ShareOut, **ERRORS},
    summary="Attach a record of the patient / 附加资料",
)
def add_share(request: HttpRequest, referral_id: int, payload: ShareIn) -> Any:
    user = signed_in_user(request)
    _visible(request, referral_id, "referral.share")
    row = services.share(
        actor=user, referral_id=referral_id, kind=payload.kind, object_id=payload.object_id
    )
    return Status(201, {"kind": row.kind, "object_id": row.object_id, "label": "", "body": ""})


def _action(request: HttpRequest, referral_id: int, name: str, fn: Callable[[], T]) -> Any:
    _visible(request, referral_id, f"referral.{name}")
    return _run(fn)


@router.post("/{referral_id}/send", response={200: ReferralOut, **ERRORS}, summary="Send / 发送")
def send(request: HttpRequest, referral_id: int, payload: VersionIn) -> Any:
    user = signed_in_user(request)
    return _action(
        request,
        referral_id,
        "send",
        lambda: services.send(actor=user, referral_id=referral_id, version=payload.version),
    )


@router.post(
    "/{referral_id}/accept", response={200: ReferralOut, **ERRORS}, summary="Accept / 接收"
)
def accept(request: HttpRequest, referral_id: int, payload: VersionIn) -> Any:
    user = signed_in_user(request)
    return _action(
        request,
        referral_id,
        "accept",
        lambda: services.accept(
            actor=user, referral_id=referral_id, note=payload.note, version=payload.version
        ),
    )


@router.post(
    "/{referral_id}/decline",
    response={200: DeclinedOut, **ERRORS},
    summary="Decline, optionally onward / 拒绝（可转往上级）",
)
def decline(request: HttpRequest, referral_id: int, payload: DeclineIn) -> Any:
    user = signed_in_user(request)
    onward_to = _institution(payload.onward_to_id)

    def run() -> dict[str, Any]:
        referral, onward = services.decline(
            actor=user,
            referral_id=referral_id,
            reason=payload.reason,
            onward_to=onward_to,
            version=payload.version,
        )
        return {"referral": referral, "onward": onward}

    return _action(request, referral_id, "decline", run)


@router.post(
    "/{referral_id}/arrive", response={200: ReferralOut, **ERRORS}, summary="Arrived / 患者到达"
)
def arrive(request: HttpRequest, referral_id: int, payload: VersionIn) -> Any:
    user = signed_in_user(request)
    return _action(
        request,
        referral_id,
        "arrive",
        lambda: services.arrive(actor=user, referral_id=referral_id, version=payload.version),
    )


@router.post(
    "/{referral_id}/complete", response={200: ReferralOut, **ERRORS}, summary="Complete / 完成"
)
def complete(request: HttpRequest, referral_id: int, payload: VersionIn) -> Any:
    user = signed_in_user(request)
    return _action(
        request,
        referral_id,
        "complete",
        lambda: services.complete(
            actor=user, referral_id=referral_id, note=payload.note, version=payload.version
        ),
    )


@router.post(
    "/{referral_id}/return", response={200: ReferralOut, **ERRORS}, summary="Return / 退回"
)
def return_referral(request: HttpRequest, referral_id: int, payload: ReasonIn) -> Any:
    user = signed_in_user(request)
    return _action(
        request,
        referral_id,
        "return",
        lambda: services.return_referral(
            actor=user, referral_id=referral_id, reason=payload.reason, version=payload.version
        ),
    )


@router.post(
    "/{referral_id}/cancel", response={200: ReferralOut, **ERRORS}, summary="Cancel / 取消"
)
def cancel(request: HttpRequest, referral_id: int, payload: VersionIn) -> Any:
    user = signed_in_user(request)
    return _action(
        request,
        referral_id,
        "cancel",
        lambda: services.cancel(
            actor=user, referral_id=referral_id, reason=payload.note, version=payload.version
        ),
    )


@router.post(
    "/{referral_id}/transfer-decision",
    response={200: ApprovalOut, **ERRORS},
    summary="Center approves a transfer out / 转出本州审批",
)
def transfer_decision(request: HttpRequest, referral_id: int, payload: DecisionIn) -> Any:
    user = signed_in_user(request)

    def run() -> TransferApproval:
        return services.decide_transfer(
            actor=user, referral_id=referral_id, approve=payload.approve, note=payload.note
        )

    return _action(request, referral_id, "transfer_decision", run)
