"""Referral actions: each checks who may do it and from which state, moves the state machine
in one transaction, audits it and tells the people concerned."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError
from clinical_shell.imaging.models import Study
from clinical_shell.network import selectors as network_selectors
from clinical_shell.network.models import CLINICAL_ROLES, Institution, Person
from clinical_shell.notifications.services import notify
from clinical_shell.realtime.events import publish
from clinical_shell.records.access import access_patient
from clinical_shell.records.models import Document, Encounter, Patient
from clinical_shell.referrals import rules
from clinical_shell.referrals.access import keeps_refusals, require_party
from clinical_shell.referrals.models import (
    Direction,
    Referral,
    ReferralEvent,
    ReferralShare,
    State,
    TimeLimit,
    TransferApproval,
    Urgency,
)

# defaults when no TimeLimit row says otherwise (minutes to answer)
DEFAULT_ANSWER_MINUTES = {Urgency.ROUTINE: 48 * 60, Urgency.URGENT: 4 * 60, Urgency.EMERGENCY: 30}


class ReferralError(DomainError):
    status = 422


class TransitionError(DomainError):
    status = 409


@dataclass(frozen=True)
class Move:
    """A legal move: from which states, to which, by which side."""

    sources: frozenset[str]
    target: str
    side: str


MOVES = {
    "send": Move(frozenset({State.DRAFT}), State.SENT, "sender"),
    "accept": Move(frozenset({State.SENT}), State.ACCEPTED, "receiver"),
    "decline": Move(frozenset({State.SENT}), State.DECLINED, "receiver"),
    "arrive": Move(frozenset({State.ACCEPTED}), State.ARRIVED, "receiver"),
    "complete": Move(frozenset({State.ARRIVED}), State.COMPLETED, "receiver"),
    "return": Move(frozenset({State.ACCEPTED, State.ARRIVED}), State.RETURNED, "receiver"),
    "cancel": Move(frozenset({State.DRAFT, State.SENT}), State.CANCELLED, "sender"),
}


def _receiving_side(referral: Referral) -> str:
    # a transfer out has no receiver in the network: the sender records the outside answers
    return "sender" if referral.direction == Direction.OUT else "receiver"


def _move(
    *, actor: User, referral_id: int, action: str, note: str = "", version: int | None = None
) -> Referral:
    rule = MOVES[action]
    referral = Referral.objects.select_for_update().get(pk=referral_id)
    side = rule.side if rule.side == "sender" else _receiving_side(referral)
    require_party(actor, referral, side=side, action=f"referral.{action}")
    if version is not None and version != referral.version:
        raise TransitionError("referral_changed", _("该转诊已被他人更新，请刷新后重试"), status=409)
    if referral.state not in rule.sources:
        raise TransitionError(
            "illegal_transition",
            _("当前状态为“%(state)s”，不能执行该操作") % {"state": State(referral.state).label},
        )
    previous = referral.state
    referral.state = rule.target
    referral.version += 1
    now = timezone.now()
    if rule.target in (State.ACCEPTED, State.DECLINED):
        referral.answered_at = now
    if rule.target in (State.DECLINED, State.COMPLETED, State.RETURNED, State.CANCELLED):
        referral.ended_at = now
    referral.save()
    ReferralEvent.objects.create(
        referral=referral, from_state=previous, to_state=rule.target, actor=actor, note=note[:500]
    )
    audit.record(
        actor=actor,
        action=f"referral.{action}",
        patient_id=referral.patient_id,
        target=referral,
        reason=note[:500],
        detail={"from": previous, "to": rule.target},
    )
    return referral


def _clinicians(institution_id: int | None) -> list[User]:
    if institution_id is None:
        return []
    return list(
        User.objects.filter(
            person__memberships__institution_id=institution_id,
            person__memberships__active=True,
            person__memberships__role__in=list(CLINICAL_ROLES),
            is_active=True,
        ).distinct()
    )


def department_heads(institution_id: int | None) -> list[User]:
    """Who an overdue answer escalates to: the named head (科主任) of the receiving institution's
    orthopedic (township: general) department; where none is named, its chief and associate
    chief physicians, or all its clinicians if it has none."""
    if institution_id is None:
        return []
    named = network_selectors.department_heads([institution_id])
    if named:
        return sorted(named, key=lambda u: u.pk)
    heads = [
        u
        for u in _clinicians(institution_id)
        if Person.objects.filter(
            user=u, title__in=[Person.Title.CHIEF_PHYSICIAN, Person.Title.ASSOCIATE_CHIEF]
        ).exists()
    ]
    return heads or _clinicians(institution_id)


def _link(referral: Referral) -> str:
    return f"/referrals/{referral.pk}/"


def _tell(users: list[User], referral: Referral, title: Any, kind: str) -> None:
    # no patient name: a notification may be read on a shared screen; the page shows the rest
    notify(users, title=title, url=_link(referral), kind=kind)


def create_draft(
    *,
    actor: User,
    patient_id: int,
    direction: str,
    from_institution: Institution,
    to_institution: Institution | None,
    outside_hospital: str = "",
    urgency: str = Urgency.ROUTINE,
    reason: str,
    criteria: list[str],
    handover: dict[str, str] | None = None,
) -> Referral:
    """A draft from `from_institution` (where the actor writes records) for a patient they see."""
    # outside the transaction: a refused read of the patient stays on record
    patient = access_patient(actor, patient_id, write=True, reason="referral")
    with transaction.atomic():
        return _create_draft(
            actor=actor,
            patient=patient,
            direction=direction,
            from_institution=from_institution,
            to_institution=to_institution,
            outside_hospital=outside_hospital,
            urgency=urgency,
            reason=reason,
            criteria=criteria,
            handover=handover,
        )


@keeps_refusals
def _create_draft(
    *,
    actor: User,
    patient: Patient,
    direction: str,
    from_institution: Institution,
    to_institution: Institution | None,
    outside_hospital: str,
    urgency: str,
    reason: str,
    criteria: list[str],
    handover: dict[str, str] | None,
) -> Referral:
    errors: dict[str, str] = {}
    if direction not in Direction.values:
        errors["direction"] = _("转诊方向无效")
    elif not rules.direction_fits(direction, from_institution, to_institution):
        errors["to_institution"] = _("接收机构与转诊方向不符（上转到更高级别，下转到更低级别）")
    if direction == Direction.OUT and not outside_hospital.strip():
        errors["outside_hospital"] = _("请填写州外接收医院")
    if urgency not in Urgency.values:
        errors["urgency"] = _("紧急程度无效")
    if not reason.strip():
        errors["reason"] = _("请填写转诊原因")
    if direction in Direction.values:
        allowed = {c.code for c in rules.criteria_for(direction, from_institution.level)}
        unknown = [code for code in criteria if code not in allowed]
        if not criteria:
            errors["criteria"] = _("请至少勾选一项转诊指征")
        elif unknown:
            errors["criteria"] = _("以下指征不适用：%(codes)s") % {"codes": ", ".join(unknown)}
    if errors:
        raise ReferralFormError(errors)
    probe = Referral(from_institution=from_institution)
    require_party(actor, probe, side="sender", action="referral.create")
    referral = Referral.objects.create(
        patient=patient,
        direction=direction,
        urgency=urgency,
        from_institution=from_institution,
        to_institution=to_institution if direction != Direction.OUT else None,
        outside_hospital=outside_hospital.strip()[:128],
        reason=reason.strip()[:2000],
        criteria=sorted(set(criteria)),
        handover={
            k: str(v)[:4000] for k, v in (handover or {}).items() if k in rules.HANDOVER_FIELDS
        },
        created_by=actor,
    )
    audit.record(
        actor=actor,
        action="referral.create",
        patient_id=patient.pk,
        target=referral,
        detail={"direction": direction},
    )
    return referral


class ReferralFormError(ReferralError):
    """Every field problem at once (the form shows them all, the API lists them)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("referral_invalid", _("转诊信息不完整或有误"))
        self.errors = errors


_SHARE_MODELS: dict[str, Any] = {
    ReferralShare.Kind.DOCUMENT: Document,
    ReferralShare.Kind.STUDY: Study,
    ReferralShare.Kind.ENCOUNTER: Encounter,
}


def _written_at(item: Document | Study | Encounter) -> int | None:
    """The institution a shareable record belongs to (a study: the one that uploaded it)."""
    return item.uploaded_at_id if isinstance(item, Study) else item.institution_id


@keeps_refusals
def share(*, actor: User, referral_id: int, kind: str, object_id: int) -> ReferralShare:
    """Attach one of the patient's own records to a draft (or a sent referral, to add more)."""
    referral = Referral.objects.select_for_update().get(pk=referral_id)
    require_party(actor, referral, side="sender", action="referral.share")
    if referral.state not in (State.DRAFT, State.SENT, State.ACCEPTED):
        raise TransitionError("referral_closed", _("该转诊已结束，不能再添加资料"))
    model = _SHARE_MODELS.get(kind)
    item = model.objects.filter(pk=object_id).first() if model is not None else None
    if item is None or item.patient_id != referral.patient_id:
        # the same answer for "does not exist" and "belongs to another patient"
        error = ReferralError("share_not_this_patient", _("只能附上该患者本人的资料"))
        error.audit_event = {  # type: ignore[attr-defined]
            "actor": actor,
            "action": "referral.share",
            "success": False,
            "patient_id": referral.patient_id,
            "target": referral,
            "detail": {"kind": kind, "object_id": object_id},
        }
        raise error
    if _written_at(item) != referral.from_institution_id:
        # records follow their provenance: what another institution wrote is that one's to share
        error = ReferralError(
            "share_not_own_record",
            _("只能附上本机构书写的资料；其他机构的资料请由该机构共享"),
        )
        error.audit_event = {  # type: ignore[attr-defined]
            "actor": actor,
            "action": "referral.share",
            "success": False,
            "patient_id": referral.patient_id,
            "target": referral,
            "detail": {"kind": kind, "object_id": object_id, "why": "not_own_record"},
        }
        raise error
    row, _created = ReferralShare.objects.get_or_create(
        referral=referral, kind=kind, object_id=object_id
    )
    audit.record(
        actor=actor,
        action="referral.share",
        patient_id=referral.patient_id,
        target=referral,
        detail={"kind": kind, "object_id": object_id},
    )
    return row


def _answer_minutes(urgency: str) -> int:
    row = TimeLimit.objects.filter(urgency=urgency).first()
    return row.answer_within_minutes if row else DEFAULT_ANSWER_MINUTES[Urgency(urgency)]


@keeps_refusals
def send(*, actor: User, referral_id: int, version: int | None = None) -> Referral:
    referral = Referral.objects.select_for_update().get(pk=referral_id)
    if referral.direction == Direction.DOWN:
        missing = rules.missing_handover(referral.handover)
        if missing:
            raise ReferralFormError(
                {
                    key: _("下转必须附带：%(what)s") % {"what": rules.HANDOVER_FIELDS[key]}
                    for key in missing
                }
            )
    referral = _move(actor=actor, referral_id=referral_id, action="send", version=version)
    now = timezone.now()
    referral.sent_at = now
    referral.answer_due_at = now + timedelta(minutes=_answer_minutes(referral.urgency))
    referral.save(update_fields=["sent_at", "answer_due_at"])
    if referral.direction == Direction.OUT:
        TransferApproval.objects.get_or_create(referral=referral)
        centers = Institution.objects.filter(level=Institution.Level.CENTER)
        approvers = [u for c in centers for u in _clinicians(c.pk)]
        _tell(approvers, referral, gettext_lazy("转出本州申请待审批"), "referral.approval")
    else:
        title = (
            gettext_lazy("急诊转诊预通知：患者即将转入")
            if referral.urgency == Urgency.EMERGENCY
            else gettext_lazy("收到新的转诊")
        )
        _tell(_clinicians(referral.to_institution_id), referral, title, "referral.incoming")
        if referral.urgency == Urgency.EMERGENCY:
            event = {"kind": "emergency_referral", "referral": referral.pk}
            institution = referral.to_institution_id
            transaction.on_commit(lambda: publish(f"referrals.{institution}", event))
    return referral


@keeps_refusals
def accept(
    *, actor: User, referral_id: int, note: str = "", version: int | None = None
) -> Referral:
    referral = _move(
        actor=actor, referral_id=referral_id, action="accept", note=note, version=version
    )
    _tell(
        _clinicians(referral.from_institution_id),
        referral,
        gettext_lazy("转诊已被接收"),
        "referral.accepted",
    )
    return referral


@keeps_refusals
def decline(
    *,
    actor: User,
    referral_id: int,
    reason: str,
    onward_to: Institution | None = None,
    version: int | None = None,
) -> tuple[Referral, Referral | None]:
    """Decline with a reason; with `onward_to`, the patient is sent on there at once (a new
    referral from the same sender, carrying the same shares), e.g. the county to the center."""
    if not reason.strip():
        raise ReferralFormError({"reason": _("拒绝时必须填写原因")})
    referral = _move(
        actor=actor, referral_id=referral_id, action="decline", note=reason, version=version
    )
    referral.decline_reason = reason.strip()[:500]
    referral.save(update_fields=["decline_reason"])
    onward: Referral | None = None
    if onward_to is not None:
        if not rules.direction_fits(referral.direction, referral.from_institution, onward_to) or (
            onward_to.pk == referral.to_institution_id
        ):
            raise ReferralFormError({"onward_to": _("转往的机构与转诊方向不符")})
        onward = Referral.objects.create(
            patient_id=referral.patient_id,
            direction=referral.direction,
            urgency=referral.urgency,
            from_institution_id=referral.from_institution_id,
            to_institution=onward_to,
            reason=referral.reason,
            criteria=referral.criteria,
            handover=referral.handover,
            created_by=actor,
            onward_from=referral,
            state=State.DRAFT,
        )
        ReferralShare.objects.bulk_create(
            [
                ReferralShare(referral=onward, kind=s.kind, object_id=s.object_id)
                for s in referral.shares.all()
            ]
        )
        audit.record(
            actor=actor,
            action="referral.onward",
            patient_id=referral.patient_id,
            target=onward,
            detail={"from_referral": referral.pk, "to": onward_to.code},
        )
        # the decliner sends it on behalf of the sender: the sender's clinicians are told
        onward.state = State.SENT
        onward.sent_at = timezone.now()
        onward.answer_due_at = onward.sent_at + timedelta(minutes=_answer_minutes(onward.urgency))
        onward.save()
        ReferralEvent.objects.create(
            referral=onward,
            from_state=State.DRAFT,
            to_state=State.SENT,
            actor=actor,
            note=_("由上一接收机构转往"),
        )
        _tell(_clinicians(onward_to.pk), onward, gettext_lazy("收到新的转诊"), "referral.incoming")
    _tell(
        _clinicians(referral.from_institution_id),
        referral,
        gettext_lazy("转诊被拒绝"),
        "referral.declined",
    )
    return referral, onward


def _require_approval(referral: Referral) -> None:
    if referral.direction != Direction.OUT:
        return
    approval = TransferApproval.objects.filter(referral=referral).first()
    if approval is None or approval.decision != TransferApproval.Decision.APPROVED:
        raise TransitionError(
            "transfer_not_approved", _("转出本州须经州骨科中心审批同意后方可完成")
        )


@keeps_refusals
def arrive(*, actor: User, referral_id: int, version: int | None = None) -> Referral:
    _require_approval(Referral.objects.get(pk=referral_id))
    return _move(actor=actor, referral_id=referral_id, action="arrive", version=version)


@keeps_refusals
def complete(
    *, actor: User, referral_id: int, note: str = "", version: int | None = None
) -> Referral:
    _require_approval(Referral.objects.get(pk=referral_id))
    referral = _move(
        actor=actor, referral_id=referral_id, action="complete", note=note, version=version
    )
    _tell(
        _clinicians(referral.from_institution_id),
        referral,
        gettext_lazy("转诊已完成"),
        "referral.completed",
    )
    return referral


@keeps_refusals
def return_referral(
    *, actor: User, referral_id: int, reason: str, version: int | None = None
) -> Referral:
    if not reason.strip():
        raise ReferralFormError({"reason": _("退回时必须填写原因")})
    referral = _move(
        actor=actor, referral_id=referral_id, action="return", note=reason, version=version
    )
    _tell(
        _clinicians(referral.from_institution_id),
        referral,
        gettext_lazy("转诊被退回"),
        "referral.returned",
    )
    return referral


@keeps_refusals
def cancel(
    *, actor: User, referral_id: int, reason: str = "", version: int | None = None
) -> Referral:
    referral = _move(
        actor=actor, referral_id=referral_id, action="cancel", note=reason, version=version
    )
    if referral.events.filter(to_state=State.SENT).exists():
        _tell(
            _clinicians(referral.to_institution_id),
            referral,
            gettext_lazy("转诊已被取消"),
            "referral.cancelled",
        )
    return referral


@keeps_refusals
def decide_transfer(
    *, actor: User, referral_id: int, approve: bool, note: str = ""
) -> TransferApproval:
    """The prefecture center approves or rejects a transfer out of the region (not its author)."""
    referral = Referral.objects.select_for_update().get(pk=referral_id)
    require_party(actor, referral, side="center", action="referral.transfer_decision")
    if referral.direction != Direction.OUT:
        raise TransitionError("not_a_transfer_out", _("该转诊不是转出本州，无需审批"))
    if referral.created_by_id == actor.pk:
        error = TransitionError("own_transfer", _("不能审批自己提出的转出申请"), status=403)
        error.audit_event = {  # type: ignore[attr-defined]
            "actor": actor,
            "action": "referral.transfer_decision",
            "success": False,
            "patient_id": referral.patient_id,
            "target": referral,
            "detail": {"why": "own_request"},
        }
        raise error
    approval = TransferApproval.objects.select_for_update().get(referral=referral)
    if approval.decision != TransferApproval.Decision.PENDING:
        raise TransitionError("already_decided", _("该申请已审批"))
    if not approve and not note.strip():
        raise ReferralFormError({"note": _("驳回时必须填写理由")})
    approval.decision = (
        TransferApproval.Decision.APPROVED if approve else TransferApproval.Decision.REJECTED
    )
    approval.decided_by = actor
    approval.decided_at = timezone.now()
    approval.note = note.strip()[:500]
    approval.save()
    audit.record(
        actor=actor,
        action="referral.transfer_decision",
        patient_id=referral.patient_id,
        target=referral,
        reason=approval.note,
        detail={"decision": approval.decision},
    )
    _tell(
        _clinicians(referral.from_institution_id),
        referral,
        gettext_lazy("转出本州申请已批准") if approve else gettext_lazy("转出本州申请被驳回"),
        "referral.transfer_decision",
    )
    return approval


def escalate_overdue(now: Any = None) -> int:
    """Tell the receiving department heads about referrals not answered in time, once each."""
    now = now or timezone.now()
    count = 0
    overdue = Referral.objects.filter(
        state=State.SENT, answer_due_at__lt=now, escalated_at__isnull=True
    ).exclude(direction=Direction.OUT)
    for referral in overdue:
        with transaction.atomic():
            updated = Referral.objects.filter(pk=referral.pk, escalated_at__isnull=True).update(
                escalated_at=now
            )
            if not updated:
                continue
            _tell(
                department_heads(referral.to_institution_id),
                referral,
                gettext_lazy("转诊超时未处理，请及时处理"),
                "referral.overdue",
            )
            audit.record(
                actor=None,
                action="referral.escalate",
                patient_id=referral.patient_id,
                target=referral,
            )
            count += 1
    return count
