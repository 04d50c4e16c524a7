"""`/api/v1/administration`: the audit log and account administration, under the same rules
and audit as the pages; refusals are problem details (403/404/409/422), nothing changed."""

from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.administration import access, selectors, services
from clinical_shell.administration.schemas import (
    AccountIn,
    AccountOut,
    AuditEventOut,
    AuditParams,
    CreatedAccountOut,
    DepartmentOut,
    DepartmentPatch,
    MembershipOut,
    RoleIn,
    TemporaryPasswordOut,
    UserParams,
)
from clinical_shell.audit.models import AuditEvent
from clinical_shell.errors import DomainError, NotFoundError, ProblemOut
from clinical_shell.network.models import Department, Institution, Membership, Person

router = Router(tags=["administration / 系统管理"])

ERRORS: dict[int, type[Schema]] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
}


def _account(user_id: int) -> User:
    found = selectors.account(user_id)
    if found is None:
        raise NotFoundError("user_not_found", _("未找到该账户"))
    return found


def _institution(institution_id: int) -> Institution:
    found = Institution.objects.filter(pk=institution_id).first()
    if found is None:
        raise NotFoundError("institution_not_found", _("未找到该机构"))
    return found


@router.get("/audit", response={200: list[AuditEventOut], **ERRORS}, summary="Audit log / 审计日志")
@paginate(PageNumberPagination, page_size=selectors.AUDIT_PAGE_SIZE)
def list_audit(request: HttpRequest, params: Query[AuditParams]) -> QuerySet[AuditEvent]:
    """Newest first; the read itself is audited with its filter."""
    user = signed_in_user(request)
    access.require_audit_reader(user)
    if params.outcome not in ("", *AuditEvent.Outcome.values):
        raise DomainError("bad_filter", _("未知的结果筛选"), status=422)
    audit_filter = selectors.AuditFilter(
        patient_id=params.patient_id,
        username=params.username.strip(),
        action_prefix=params.action.strip(),
        outcome=params.outcome,
        since=params.since,
        until=params.until,
    )
    upto_id = selectors.latest_event_id()  # not this read's own event
    services.record_audit_read(actor=user, audit_filter=audit_filter, export=False)
    return selectors.audit_events(audit_filter, upto_id=upto_id)


@router.get("/users", response={200: list[AccountOut], **ERRORS}, summary="Accounts / 用户")
@paginate(PageNumberPagination, page_size=selectors.USER_PAGE_SIZE)
def list_users(request: HttpRequest, params: Query[UserParams]) -> QuerySet[User]:
    scope = access.require_administrator(signed_in_user(request))
    return selectors.accounts(
        scope,
        selectors.UserFilter(
            query=params.q.strip(),
            institution_id=params.institution_id,
            role=params.role,
            active=params.active,
            locked=params.locked,
        ),
    )


@router.post(
    "/users", response={201: CreatedAccountOut, **ERRORS}, summary="New account / 新建用户"
)
def create_user(request: HttpRequest, payload: AccountIn) -> Any:
    """The temporary password is in this answer only (generated when none was given)."""
    actor = signed_in_user(request)
    access.require_administrator(actor)
    created = services.create_account(
        actor=actor,
        username=payload.username,
        full_name=payload.full_name,
        title=payload.title,
        institution=_institution(payload.institution_id),
        role=payload.role,
        password=payload.password,
    )
    return Status(201, {"account": created.person.user, "temporary_password": created.password})


@router.post(
    "/users/{user_id}/deactivate", response={200: AccountOut, **ERRORS}, summary="Deactivate / 停用"
)
def deactivate_user(request: HttpRequest, user_id: int) -> User:
    return services.deactivate_account(actor=signed_in_user(request), user=_account(user_id))


@router.post(
    "/users/{user_id}/reactivate", response={200: AccountOut, **ERRORS}, summary="Reactivate / 恢复"
)
def reactivate_user(request: HttpRequest, user_id: int) -> User:
    return services.reactivate_account(actor=signed_in_user(request), user=_account(user_id))


@router.post(
    "/users/{user_id}/unlock", response={200: AccountOut, **ERRORS}, summary="Unlock / 解锁"
)
def unlock_user(request: HttpRequest, user_id: int) -> User:
    return services.unlock_account(actor=signed_in_user(request), user=_account(user_id))


@router.post(
    "/users/{user_id}/reset-password",
    response={200: TemporaryPasswordOut, **ERRORS},
    summary="Reset password / 重置密码",
)
def reset_password(request: HttpRequest, user_id: int) -> Any:
    account = _account(user_id)
    password = services.reset_password(actor=signed_in_user(request), user=account)
    return {"account": account, "temporary_password": password}


@router.post(
    "/users/{user_id}/roles",
    response={201: MembershipOut, **ERRORS},
    summary="Add a role / 添加角色",
)
def add_role(request: HttpRequest, user_id: int, payload: RoleIn) -> Any:
    membership = services.add_role(
        actor=signed_in_user(request),
        user=_account(user_id),
        institution=_institution(payload.institution_id),
        role=payload.role,
    )
    return Status(201, membership)


@router.delete(
    "/users/{user_id}/roles/{membership_id}",
    response={200: MembershipOut, **ERRORS},
    summary="End a role / 取消角色",
)
def remove_role(request: HttpRequest, user_id: int, membership_id: int) -> Membership:
    actor = signed_in_user(request)
    access.require_administrator(actor)
    membership = Membership.objects.filter(pk=membership_id, person__user_id=user_id).first()
    if membership is None:
        raise NotFoundError("membership_not_found", _("未找到该角色"))
    return services.remove_role(actor=actor, membership=membership)


@router.patch(
    "/departments/{department_id}",
    response={200: DepartmentOut, **ERRORS},
    summary="Edit a department / 编辑科室",
)
def edit_department(request: HttpRequest, department_id: int, payload: DepartmentPatch) -> Any:
    actor = signed_in_user(request)
    access.require_administrator(actor)
    department = Department.objects.filter(pk=department_id).select_related("head").first()
    if department is None:
        raise NotFoundError("department_not_found", _("未找到该科室"))
    head = None
    if payload.head_person_id is not None:
        head = Person.objects.filter(pk=payload.head_person_id).select_related("user").first()
        if head is None:
            raise NotFoundError("person_not_found", _("未找到该人员"))
    return services.update_department(
        actor=actor, department=department, name=payload.name, code=payload.code, head=head
    )
