"""Who may see and move a referral, and what its receiving side may read through it.

The sending institution's clinicians own the referral. The receiving institution's clinicians
see it from the moment it is sent, and read exactly what it shares while it is open (sent,
accepted, arrived); once it ends they keep the referral's own page (the letter they answered)
but no longer the shared records. A transfer out of the region is also seen by the prefecture
center's surgeons, who approve it. Every refusal is audited.
"""

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, NotFoundError, PermissionDeniedError
from clinical_shell.network.models import CLINICAL_ROLES, RECORD_WRITER_ROLES, Institution, Role
from clinical_shell.network.selectors import institution_ids_with_roles
from clinical_shell.referrals.models import Direction, Referral, State

P = ParamSpec("P")
R = TypeVar("R")


def clinical_ids(user: User, *, write: bool = False) -> list[int]:
    return institution_ids_with_roles(
        int(user.pk), RECORD_WRITER_ROLES if write else CLINICAL_ROLES
    )


def approver_center_ids(user: User) -> list[int]:
    """Prefecture-center institutions where the user is a surgeon: the transfer-out approvers."""
    ids = institution_ids_with_roles(int(user.pk), frozenset({Role.SURGEON}))
    return list(
        Institution.objects.filter(pk__in=ids, level=Institution.Level.CENTER).values_list(
            "pk", flat=True
        )
    )


def visible_referrals(user: User) -> QuerySet[Referral]:
    mine = clinical_ids(user)
    centers = approver_center_ids(user)
    rule = Q(from_institution_id__in=mine) | (Q(to_institution_id__in=mine) & ~Q(state=State.DRAFT))
    if centers:
        rule |= Q(direction=Direction.OUT) & ~Q(state=State.DRAFT)
    return Referral.objects.filter(rule)


def _refuse(user: User, referral_id: int, action: str, why: str) -> PermissionDeniedError:
    """The refusal, carrying its audit event: written by `keeps_refusals` after the rollback of
    the action's transaction (written inside it, it would be rolled back with the action)."""
    error = PermissionDeniedError("referral_forbidden", _("您无权查看或处理该转诊"))
    error.audit_event = {  # type: ignore[attr-defined]
        "actor": user,
        "action": action,
        "success": False,
        "detail": {"referral": referral_id, "why": why},
    }
    return error


def keeps_refusals(fn: Callable[P, R]) -> Callable[P, R]:
    """Run `fn` in one transaction; a refusal's audit event is written after its rollback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with transaction.atomic():
                return fn(*args, **kwargs)
        except DomainError as error:
            pending = getattr(error, "audit_event", None)
            if pending is not None:
                audit.record(**pending)
            raise

    return wrapper


def access_referral(user: User, referral_id: int, *, action: str = "referral.read") -> Referral:
    """The referral if `user` may see it; the read is audited with the patient."""
    referral = (
        Referral.objects.select_related("patient", "from_institution", "to_institution")
        .filter(pk=referral_id)
        .first()
    )
    if referral is None:
        audit.record(actor=user, action=action, success=False, detail={"referral": referral_id})
        raise NotFoundError("referral_not_found", _("未找到该转诊"))
    if not visible_referrals(user).filter(pk=referral.pk).exists():
        error = _refuse(user, referral.pk, action, "not_a_party")
        audit.record(**error.audit_event)  # type: ignore[attr-defined]
        raise error
    audit.record(actor=user, action=action, patient_id=referral.patient_id, target=referral)
    return referral


def may_read_shares(user: User, referral: Referral) -> bool:
    """The sender always; the receiver only while the referral is open."""
    mine = set(clinical_ids(user))
    if referral.from_institution_id in mine:
        return True
    return referral.is_open and referral.to_institution_id in mine


def require_party(user: User, referral: Referral, *, side: str, action: str) -> None:
    """`side` is "sender", "receiver" or "center" (transfer-out approvers); writers only."""
    if side == "center":
        allowed = bool(approver_center_ids(user))
    else:
        institution_id = (
            referral.from_institution_id if side == "sender" else referral.to_institution_id
        )
        allowed = institution_id in clinical_ids(user, write=True)
    if not allowed:
        raise _refuse(user, referral.pk, action, f"not_{side}")


def may_hear_institution(user: User, topic: str) -> bool:
    """`referrals.<institution id>`: the institution's clinicians hear its incoming emergencies."""
    _prefix, _dot, rest = topic.partition(".")
    return rest.isdigit() and int(rest) in clinical_ids(user)
