"""Every write of credentialing (catalog and rules, applications, votes, signed decisions,
privileges), audited in the same transaction; and the checks scheduling asks
(`check_privilege`, `institution_licensed`, in `checks.py`)."""

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinical_shell.audit import services as audit
from clinical_shell.credentialing import access
from clinical_shell.credentialing.checks import (
    PrivilegeCheck,
    check_privilege,
    institution_licensed,
)
from clinical_shell.credentialing.eligibility import check_eligibility
from clinical_shell.credentialing.models import (
    Application,
    Committee,
    Decision,
    InstitutionLicence,
    ModuleRequirement,
    PracticeRecord,
    Privilege,
    Requirement,
    Technique,
    TechniqueFiling,
    Vote,
)
from clinical_shell.errors import DomainError, PermissionDeniedError
from clinical_shell.network.models import Institution, Membership, Role
from clinical_shell.notifications.services import notify
from clinical_shell.training.models import Module

__all__ = [
    "PrivilegeCheck",
    "cast_vote",
    "check_privilege",
    "decide_application",
    "grant_privilege",
    "institution_licensed",
    "revoke_privilege",
    "submit_application",
    "suspend_privilege",
]

# the key of the decision HMAC is derived from the server's SECRET_KEY with this salt
DECISION_KEY_SALT = "osteon.credentialing.decision.v1"


# ---- catalog and rules (data an administrator edits) ------------------------------------------


@transaction.atomic
def save_technique(
    *,
    actor: User | None,
    code: str,
    name: str,
    category: str,
    name_en: str = "",
    orthopedic: bool = False,
    source: str = "",
    version: str = "",
    effective_from: date | None = None,
    verified: bool = False,
    active: bool = True,
) -> Technique:
    """Create or update a catalog item (a provincial addition, a revised national item)."""
    if category not in Technique.Category.values:
        raise DomainError("bad_category", _("未知技术类别：%(c)s") % {"c": category}, status=422)
    technique, created = Technique.objects.update_or_create(
        code=code,
        defaults={
            "name": name,
            "name_en": name_en,
            "category": category,
            "orthopedic": orthopedic,
            "source": source,
            "version": version,
            "effective_from": effective_from,
            "verified": verified,
            "active": active,
        },
    )
    audit.record(
        actor=actor,
        action="credentialing.technique_create" if created else "credentialing.technique_update",
        target=technique,
        detail={"code": code, "category": category, "active": active},
    )
    return technique


@transaction.atomic
def set_institution_licence(
    *, actor: User | None, institution: Institution, hospital_grade: int, max_surgical_grade: int
) -> InstitutionLicence:
    if not 1 <= hospital_grade <= 3 or not 1 <= max_surgical_grade <= 4:
        raise DomainError("bad_grade", _("医院等级须为 1–3，手术级别须为 1–4"), status=422)
    licence, _created = InstitutionLicence.objects.update_or_create(
        institution=institution,
        defaults={"hospital_grade": hospital_grade, "max_surgical_grade": max_surgical_grade},
    )
    audit.record(
        actor=actor,
        action="credentialing.licence_set",
        target=licence,
        detail={"hospital_grade": hospital_grade, "max_surgical_grade": max_surgical_grade},
    )
    return licence


@transaction.atomic
def file_technique(
    *,
    actor: User | None,
    institution: Institution,
    technique: Technique,
    filed_on: date,
    lead: User | None = None,
    status: str = TechniqueFiling.Status.FILED,
) -> TechniqueFiling:
    filing, _created = TechniqueFiling.objects.update_or_create(
        institution=institution,
        technique=technique,
        defaults={"filed_on": filed_on, "lead": lead, "status": status},
    )
    audit.record(
        actor=actor,
        action="credentialing.technique_filing",
        target=filing,
        detail={"technique": technique.code, "status": status},
    )
    return filing


@transaction.atomic
def set_practice_record(
    *, actor: User | None, user: User, practising_since: date, supervisor: User | None = None
) -> PracticeRecord:
    if supervisor is not None and supervisor.pk == user.pk:
        raise DomainError("self_supervisor", _("上级医师不能是本人"), status=422)
    record, _created = PracticeRecord.objects.update_or_create(
        user=user, defaults={"practising_since": practising_since, "supervisor": supervisor}
    )
    audit.record(
        actor=actor,
        action="credentialing.practice_record_set",
        target=record,
        detail={"practising_since": practising_since.isoformat()},
    )
    return record


@transaction.atomic
def set_committee(
    *,
    actor: User | None,
    institution: Institution,
    chair: User,
    quorum: int = 3,
    majority_percent: int = 50,
) -> Committee:
    if quorum < 1 or not 0 <= majority_percent < 100:
        raise DomainError("bad_rules", _("法定人数至少为 1，多数比例须小于 100%"), status=422)
    committee, _created = Committee.objects.update_or_create(
        institution=institution,
        defaults={"chair": chair, "quorum": quorum, "majority_percent": majority_percent},
    )
    audit.record(
        actor=actor,
        action="credentialing.committee_set",
        target=committee,
        detail={"chair": chair.pk, "quorum": quorum, "majority_percent": majority_percent},
    )
    return committee


@transaction.atomic
def save_requirement(
    *,
    actor: User | None,
    technique: Technique | None = None,
    grade: int | None = None,
    min_years_practice: int = 0,
    min_hospital_grade: int = 0,
    committee_approval: bool = True,
    validity_days: int = 730,
    modules: Sequence[tuple[Module, int, float, int]] = (),
    source: str = "",
) -> Requirement:
    """The requirement of a privilege; `modules` are (module, passes, min score, within days)."""
    if (technique is None) == (grade is None) or (grade is not None and not 1 <= grade <= 4):
        raise DomainError("bad_scope", _("须指定一项技术或一个手术级别（1–4）"), status=422)
    existing = Requirement.objects.filter(technique=technique, grade=grade, active=True).first()
    requirement = existing or Requirement(technique=technique, grade=grade)
    requirement.min_years_practice = min_years_practice
    requirement.min_hospital_grade = min_hospital_grade
    requirement.committee_approval = committee_approval
    requirement.validity_days = validity_days
    requirement.source = source
    requirement.save()
    requirement.module_requirements.all().delete()
    for module, passes, min_score, within_days in modules:
        if passes < 1 or within_days < 1:
            raise DomainError("bad_module_rule", _("通过次数与时间窗须为正数"), status=422)
        ModuleRequirement.objects.create(
            requirement=requirement,
            module=module,
            passes=passes,
            min_score=min_score,
            within_days=within_days,
        )
    audit.record(
        actor=actor,
        action="credentialing.requirement_save",
        target=requirement,
        detail={
            "technique": technique.code if technique is not None else None,
            "grade": grade,
            "modules": [[m.code, p, s, d] for m, p, s, d in modules],
        },
    )
    return requirement


# ---- applications, votes, decisions ------------------------------------------------------------


def _committee_members(institution: Institution) -> list[User]:
    members = [
        m.person.user
        for m in Membership.objects.filter(
            institution=institution, role=Role.COMMITTEE_MEMBER, active=True
        ).select_related("person__user")
    ]
    committee = Committee.objects.filter(institution=institution).select_related("chair").first()
    if committee is not None:
        members.append(committee.chair)
    return members


def _review_url(application: Application) -> str:
    return reverse("credentialing:application", args=[application.pk])


@transaction.atomic
def submit_application(
    *,
    actor: User,
    requirement: Requirement,
    institution: Institution,
    statement: str = "",
) -> Application:
    """The surgeon applies for a privilege at an institution where they practise. Refused
    (with what is missing) unless every automatic rule is met; without committee approval in
    the rules, the privilege is granted at once."""
    if not requirement.active:
        raise DomainError("requirement_inactive", _("该授权要求已停用"))
    if institution.pk not in access.clinician_institution_ids(actor):
        raise PermissionDeniedError("not_practising_here", _("只能为本人执业的机构申请授权"))
    committee = Committee.objects.filter(institution=institution).first()
    if requirement.committee_approval and committee is None:
        raise DomainError("no_committee", _("该机构尚未设立资格审核委员会"))
    eligibility = check_eligibility(actor, requirement, institution)
    if not eligibility.eligible:
        raise DomainError(
            "not_eligible",
            _("尚不符合条件：%(missing)s")
            % {"missing": "；".join(m.message for m in eligibility.missing)},
            status=422,
        )
    try:
        with transaction.atomic():
            application = Application.objects.create(
                applicant=actor,
                requirement=requirement,
                institution=institution,
                eligibility=eligibility.as_dict(),
                statement=statement[:4000],
            )
    except IntegrityError:
        raise DomainError("already_applied", _("已有一份同类申请正在审核")) from None
    audit.record(
        actor=actor,
        action="credentialing.application_submit",
        target=application,
        detail={"requirement": requirement.pk, "institution": institution.pk},
    )
    if not requirement.committee_approval:
        _grant_from(application, granted_by=None)
        return application
    name = actor.person.full_name if hasattr(actor, "person") else actor.get_username()
    notify(
        [u for u in _committee_members(institution) if u.pk != actor.pk],
        title=format_lazy(gettext_lazy("新的授权申请：{}（{}）"), name, str(requirement)),
        url=_review_url(application),
        kind="credentialing.application",
    )
    return application


@transaction.atomic
def withdraw_application(*, actor: User, application: Application) -> Application:
    application = Application.objects.select_for_update().get(pk=application.pk)
    if application.applicant_id != actor.pk:
        raise PermissionDeniedError("not_applicant", _("只有申请人可以撤回申请"))
    if application.status != Application.Status.UNDER_REVIEW:
        raise DomainError("not_under_review", _("该申请已结束"))
    application.status = Application.Status.WITHDRAWN
    application.decided_at = timezone.now()
    application.save(update_fields=["status", "decided_at"])
    audit.record(actor=actor, action="credentialing.application_withdraw", target=application)
    return application


def _why_not_voter(user: User, application: Application) -> DomainError | None:
    if not access.may_review(user, application.institution_id):
        return PermissionDeniedError("not_member", _("只有本机构资格审核委员会成员可以投票"))
    if application.applicant_id == user.pk:
        return PermissionDeniedError("applicant_cannot_vote", _("申请人不能为自己的申请投票"))
    if access.supervisor_of(application.applicant_id) == user.pk:
        return PermissionDeniedError("supervisor_cannot_vote", _("申请人的直接上级医师不能投票"))
    return None


def may_vote(user: User, application: Application) -> bool:
    return (
        application.status == Application.Status.UNDER_REVIEW
        and _why_not_voter(user, application) is None
        and not Vote.objects.filter(application=application, member_id=user.pk).exists()
    )


def cast_vote(*, actor: User, application: Application, approve: bool, comment: str = "") -> Vote:
    """One vote per member; the applicant and the applicant's direct supervisor do not vote.
    A refusal is audited (outside the vote's transaction, so the record stays)."""
    refusal = _why_not_voter(actor, application)
    if refusal is not None:
        audit.record(
            actor=actor,
            action="credentialing.vote",
            success=False,
            target=application,
            reason=refusal.code,
        )
        raise refusal
    return _record_vote(actor=actor, application=application, approve=approve, comment=comment)


@transaction.atomic
def _record_vote(*, actor: User, application: Application, approve: bool, comment: str) -> Vote:
    application = Application.objects.select_for_update().get(pk=application.pk)
    if application.status != Application.Status.UNDER_REVIEW:
        raise DomainError("not_under_review", _("该申请已结束，不能再投票"))
    if Vote.objects.filter(application=application, member_id=actor.pk).exists():
        raise DomainError("already_voted", _("您已对该申请投过票"))
    try:
        with transaction.atomic():
            vote = Vote.objects.create(
                application=application, member=actor, approve=approve, comment=comment[:4000]
            )
    except IntegrityError:
        raise DomainError("already_voted", _("您已对该申请投过票")) from None
    audit.record(
        actor=actor,
        action="credentialing.vote",
        target=application,
        detail={"approve": approve, "vote": vote.pk},
    )
    return vote


def tally(application: Application) -> tuple[int, int]:
    """(approvals, refusals) cast on the application."""
    votes = list(Vote.objects.filter(application=application).values_list("approve", flat=True))
    approvals = sum(1 for v in votes if v)
    return approvals, len(votes) - approvals


def outcome(committee: Committee, approvals: int, refusals: int) -> bool | None:
    """Granted (True), refused (False), or None while the quorum is not reached: approvals
    must be more than `majority_percent` % of the votes cast."""
    cast = approvals + refusals
    if cast < committee.quorum:
        return None
    return approvals * 100 > committee.majority_percent * cast


def _sign(payload: str, secret: str | None = None) -> str:
    return salted_hmac(DECISION_KEY_SALT, payload, secret=secret, algorithm="sha256").hexdigest()


def verify_decision(decision: Decision) -> bool:
    """Whether the stored payload still carries the chair's signature (nothing was edited).

    Signed with the current SECRET_KEY or one it replaced (SECRET_KEY_FALLBACKS): rotating the
    key must not turn every earlier decision into an unverifiable one."""
    keys = [None, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return any(
        hmac.compare_digest(_sign(decision.payload, key), decision.signature) for key in keys
    )


@transaction.atomic
def decide_application(*, actor: User, application: Application, note: str = "") -> Decision:
    """The chair records the committee's decision once the quorum is reached; the outcome
    follows the votes (the chair cannot overturn them) and the record is signed."""
    application = Application.objects.select_for_update().get(pk=application.pk)
    committee = Committee.objects.filter(institution_id=application.institution_id).first()
    if committee is None or committee.chair_id != actor.pk:
        raise PermissionDeniedError("not_chair", _("只有委员会主任委员可以作出决定"))
    if actor.pk in (application.applicant_id, access.supervisor_of(application.applicant_id)):
        raise PermissionDeniedError("chair_conflict", _("主任委员是申请人本人或其上级，须回避"))
    if application.status != Application.Status.UNDER_REVIEW:
        raise DomainError("not_under_review", _("该申请已结束"))
    approvals, refusals = tally(application)
    granted = outcome(committee, approvals, refusals)
    if granted is None:
        raise DomainError(
            "no_quorum",
            _("票数未达法定人数：需 %(quorum)s 票，现有 %(cast)s 票")
            % {"quorum": committee.quorum, "cast": approvals + refusals},
        )
    now = timezone.now()
    votes = [
        {
            "member": v.member_id,
            "approve": v.approve,
            "comment_sha256": hashlib.sha256(v.comment.encode()).hexdigest(),
        }
        for v in Vote.objects.filter(application=application).order_by("id")
    ]
    payload = json.dumps(
        {
            "application": application.pk,
            "applicant": application.applicant_id,
            "institution": application.institution_id,
            "requirement": application.requirement_id,
            "technique": (
                application.requirement.technique.code
                if application.requirement.technique is not None
                else None
            ),
            "grade": application.requirement.grade,
            "granted": granted,
            "approvals": approvals,
            "refusals": refusals,
            "quorum": committee.quorum,
            "majority_percent": committee.majority_percent,
            "votes": votes,
            "chair": actor.pk,
            "note_sha256": hashlib.sha256(note.encode()).hexdigest(),
            "decided_at": now.isoformat(),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    decision = Decision.objects.create(
        application=application,
        granted=granted,
        chair=actor,
        approvals=approvals,
        refusals=refusals,
        note=note[:4000],
        payload=payload,
        signature=_sign(payload),
        decided_at=now,
    )
    application.status = Application.Status.GRANTED if granted else Application.Status.REFUSED
    application.decided_at = now
    application.save(update_fields=["status", "decided_at"])
    audit.record(
        actor=actor,
        action="credentialing.decision",
        target=application,
        detail={"granted": granted, "approvals": approvals, "refusals": refusals},
    )
    if granted:
        _grant_from(application, granted_by=actor)
    title = (
        format_lazy(gettext_lazy("授权申请已批准：{}"), str(application.requirement))
        if granted
        else format_lazy(gettext_lazy("授权申请未获批准：{}"), str(application.requirement))
    )
    voters = [
        v.member for v in Vote.objects.filter(application=application).select_related("member")
    ]
    notify(
        [application.applicant, *voters],
        title=title,
        url=_review_url(application),
        kind="credentialing.decision",
    )
    return decision


def _grant_from(application: Application, *, granted_by: User | None) -> Privilege:
    requirement = application.requirement
    start = timezone.localdate()
    return grant_privilege(
        actor=granted_by,
        surgeon=application.applicant,
        institution=application.institution,
        technique=requirement.technique,
        grade=requirement.grade,
        valid_from=start,
        valid_until=start + timedelta(days=requirement.validity_days),
        application=application,
    )


# ---- privileges --------------------------------------------------------------------------------


@transaction.atomic
def grant_privilege(
    *,
    actor: User | None,
    surgeon: User,
    institution: Institution,
    technique: Technique | None,
    grade: int | None,
    valid_from: date,
    valid_until: date,
    application: Application | None = None,
) -> Privilege:
    """Record a privilege (from a committee decision, or carried over from paper records by an
    administrator: `application` None)."""
    if (technique is None) == (grade is None) or (grade is not None and not 1 <= grade <= 4):
        raise DomainError("bad_scope", _("须指定一项技术或一个手术级别（1–4）"), status=422)
    if valid_until < valid_from:
        raise DomainError("bad_dates", _("失效日期早于生效日期"), status=422)
    privilege = Privilege.objects.create(
        surgeon=surgeon,
        institution=institution,
        technique=technique,
        grade=grade,
        valid_from=valid_from,
        valid_until=valid_until,
        application=application,
    )
    audit.record(
        actor=actor,
        action="credentialing.privilege_grant",
        target=privilege,
        detail={
            "surgeon": surgeon.pk,
            "institution": institution.pk,
            "technique": technique.code if technique is not None else None,
            "grade": grade,
            "valid_from": valid_from.isoformat(),
            "valid_until": valid_until.isoformat(),
            "application": application.pk if application is not None else None,
        },
    )
    return privilege


def _change_status(
    *, actor: User, privilege: Privilege, to: str, reason: str, action: str, allowed_from: set[str]
) -> Privilege:
    privilege = Privilege.objects.select_for_update().get(pk=privilege.pk)
    if not access.may_manage(actor, privilege.institution_id):
        raise PermissionDeniedError("not_manager", _("只有委员会主任委员或机构管理员可以变更授权"))
    if not reason.strip():
        raise DomainError("reason_required", _("须填写原因"), status=422)
    if privilege.status not in allowed_from:
        raise DomainError("bad_transition", _("该授权当前状态不允许此操作"))
    previous = privilege.status
    privilege.status = to
    privilege.status_reason = reason.strip()[:500]
    privilege.status_changed_at = timezone.now()
    privilege.save(update_fields=["status", "status_reason", "status_changed_at"])
    audit.record(
        actor=actor,
        action=action,
        target=privilege,
        reason=privilege.status_reason,
        detail={"from": previous, "to": to},
    )
    labels: dict[str, Any] = {
        Privilege.Status.SUSPENDED: gettext_lazy("您的授权已暂停：{}（{}）"),
        Privilege.Status.REVOKED: gettext_lazy("您的授权已撤销：{}（{}）"),
        Privilege.Status.ACTIVE: gettext_lazy("您的授权已恢复：{}（{}）"),
    }
    notify(
        [privilege.surgeon],
        title=format_lazy(labels[to], privilege.scope_display, privilege.status_reason),
        url=reverse("credentialing:privileges"),
        kind="credentialing.privilege",
    )
    return privilege


@transaction.atomic
def suspend_privilege(*, actor: User, privilege: Privilege, reason: str) -> Privilege:
    return _change_status(
        actor=actor,
        privilege=privilege,
        to=Privilege.Status.SUSPENDED,
        reason=reason,
        action="credentialing.privilege_suspend",
        allowed_from={Privilege.Status.ACTIVE},
    )


@transaction.atomic
def reinstate_privilege(*, actor: User, privilege: Privilege, reason: str) -> Privilege:
    return _change_status(
        actor=actor,
        privilege=privilege,
        to=Privilege.Status.ACTIVE,
        reason=reason,
        action="credentialing.privilege_reinstate",
        allowed_from={Privilege.Status.SUSPENDED},
    )


@transaction.atomic
def revoke_privilege(*, actor: User, privilege: Privilege, reason: str) -> Privilege:
    """Final: a revoked privilege is never reinstated (the surgeon applies again)."""
    return _change_status(
        actor=actor,
        privilege=privilege,
        to=Privilege.Status.REVOKED,
        reason=reason,
        action="credentialing.privilege_revoke",
        allowed_from={Privilege.Status.ACTIVE, Privilege.Status.SUSPENDED},
    )


# ---- re-credentialing --------------------------------------------------------------------------

# days before expiry on which the surgeon and the chair are reminded
REMINDER_DAYS = (60, 30, 7)


@transaction.atomic
def remind_expiring_privileges(*, today: date | None = None) -> list[int]:
    """Tell the surgeon and the committee chair, 60, 30 and 7 days ahead, that an active
    privilege expires (re-credentialing: the surgeon applies again). Run once a day; returns
    the privileges reminded of."""
    today = today or timezone.localdate()
    due = [today + timedelta(days=d) for d in REMINDER_DAYS]
    reminded = []
    for privilege in Privilege.objects.filter(
        status=Privilege.Status.ACTIVE, valid_until__in=due
    ).select_related("surgeon", "technique", "institution"):
        chair = Committee.objects.filter(institution_id=privilege.institution_id).first()
        recipients = [privilege.surgeon] + ([chair.chair] if chair is not None else [])
        notify(
            recipients,
            title=format_lazy(
                gettext_lazy("授权即将到期，请重新认证：{}（{} 到期）"),
                privilege.scope_display,
                privilege.valid_until.isoformat(),
            ),
            url=reverse("credentialing:index"),
            kind="credentialing.expiry",
        )
        audit.record(
            actor=None,
            action="credentialing.expiry_reminder",
            target=privilege,
            detail={"valid_until": privilege.valid_until.isoformat()},
        )
        reminded.append(privilege.pk)
    return reminded
