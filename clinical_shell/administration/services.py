"""Every administrative write: accounts, roles, institutions, departments, and the audited reading
of the log.

Each function is keyword-only with `actor` first, atomic, checks the actor's scope
(administration.access) and writes its audit event in the same transaction. Passwords never
reach the audit log: events name the account, not the password.
"""

import re
import secrets
import string
from dataclasses import asdict, dataclass, replace
from datetime import timedelta

from django.contrib.auth.models import User
from django.core.cache import cache
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinical_shell.accounts import passwords, throttle, tokens
from clinical_shell.administration import access
from clinical_shell.administration.selectors import AuditFilter
from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError
from clinical_shell.network import services as network
from clinical_shell.network.models import Department, Institution, Membership, Person, Role
from clinical_shell.notifications.services import notify
from clinical_shell.stations import services as stations
from clinical_shell.stations.models import Station


def nav_cache_key(user: User) -> str:
    # with the account's creation time: a test database reuses ids, a cache outlives it
    return f"administration:nav:{user.pk}:{user.date_joined.timestamp()}"


# no look-alikes (0/O, 1/l/I): a temporary password is read aloud or copied from a screen
_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")


def generate_password(length: int = 16) -> str:
    """A random password that passes the project's validators (letters, digits and a dash)."""
    while True:
        body = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        candidate = f"{body[:8]}-{body[8:]}"
        if any(c.isdigit() for c in candidate) and any(c.isalpha() for c in candidate):
            try:
                passwords.validate(candidate)
            except passwords.WeakPasswordError:
                continue
            return candidate


def forget_nav_flag(user: User) -> None:
    """The header's administration and quality links are cached per user (context.py): drop them
    on role and department-head changes."""
    cache.delete(nav_cache_key(user))


def _require_active(institution: Institution) -> None:
    if not institution.active:
        raise DomainError(
            "institution_inactive",
            _("%(name)s 已停用：不能再为它新建账户或分配角色") % {"name": institution.name},
        )


@dataclass(frozen=True)
class NewAccount:
    person: Person
    password: str  # shown once to the administrator, stored only as a hash


@transaction.atomic
def create_account(
    *,
    actor: User,
    username: str,
    full_name: str,
    institution: Institution,
    role: str,
    title: str = Person.Title.NONE,
    department: Department | None = None,
    password: str = "",
) -> NewAccount:
    """A person with one role at one institution; with no password given, a strong one is made.

    Either way the owner must change it at the first sign-in."""
    access.require_manages_institution(actor, institution.pk)
    _require_active(institution)
    username, full_name = username.strip(), full_name.strip()
    if not username or not full_name:
        raise DomainError("missing_field", _("请填写用户名和姓名"), status=422)
    chosen = password or generate_password()
    person = network.create_person(
        actor=actor, username=username, password=chosen, full_name=full_name, title=title
    )
    network.add_membership(
        actor=actor, person=person, institution=institution, role=role, department=department
    )
    audit.record(
        actor=actor,
        action="admin.account_create",
        target=person.user,
        detail={"institution": institution.pk, "role": role, "generated": not password},
    )
    return NewAccount(person=person, password=chosen)


@transaction.atomic
def deactivate_account(*, actor: User, user: User) -> User:
    """The account can no longer sign in; its sessions and API tokens end. Its history stays."""
    access.require_manages_user(actor, user)
    if user.pk == actor.pk:
        raise DomainError("self_deactivation", _("不能停用自己的账户"))
    if user.is_active:
        user.is_active = False
        user.save(update_fields=["is_active"])
        tokens.revoke_all_for(user, "deactivated")
    audit.record(actor=actor, action="admin.account_deactivate", target=user)
    forget_nav_flag(user)
    return user


@transaction.atomic
def reactivate_account(*, actor: User, user: User) -> User:
    access.require_manages_user(actor, user)
    if not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
    audit.record(actor=actor, action="admin.account_reactivate", target=user)
    return user


@transaction.atomic
def reset_password(*, actor: User, user: User) -> str:
    """A new temporary password (returned, never logged); the owner must change it at sign-in.

    Other sessions and tokens end (accounts.passwords)."""
    access.require_manages_user(actor, user)
    temporary = generate_password()
    passwords.reset_by_administrator(actor=actor, user=user, password=temporary)
    return temporary


@transaction.atomic
def unlock_account(*, actor: User, user: User) -> User:
    """Lift a lock left by failed sign-ins (the accounts app's throttle row for the name) and
    tell the owner. accounts.signin.unlock_by_administrator does the same for administrators
    of the user's own institution; this one follows the administration scope (center: all)."""
    access.require_manages_user(actor, user)
    key = throttle.account_key(user.get_username())
    if not throttle.is_locked(key):
        raise DomainError("not_locked", _("该账户没有被锁定"))
    throttle.clear(key)
    audit.record(actor=actor, action="auth.account_unlock", target=user, detail={"by": "admin"})
    notify(
        [user],
        title=gettext_lazy("你的账户已由管理员解锁"),
        url="/accounts/sign-in/",
        kind="account_unlocked",
    )
    return user


@transaction.atomic
def add_role(
    *,
    actor: User,
    user: User,
    institution: Institution,
    role: str,
    department: Department | None = None,
) -> Membership:
    """Give `user` a role at `institution` (or make an ended one active again)."""
    access.require_manages_institution(actor, institution.pk)
    _require_active(institution)
    if role not in Role.values:
        raise DomainError("bad_role", _("未知角色：%(role)s") % {"role": role}, status=422)
    person = Person.objects.get(user=user)
    membership = network.add_membership(
        actor=actor, person=person, institution=institution, role=role, department=department
    )
    if not membership.active:
        membership.active = True
        membership.save(update_fields=["active"])
    audit.record(
        actor=actor,
        action="admin.role_add",
        target=membership,
        detail={"user": user.pk, "institution": institution.pk, "role": role},
    )
    forget_nav_flag(user)
    return membership


@transaction.atomic
def remove_role(*, actor: User, membership: Membership) -> Membership:
    """End a role (the row stays, inactive: records and the log still name it)."""
    access.require_manages_institution(actor, membership.institution_id)
    user = User.objects.get(person__pk=membership.person_id)
    user_id = user.pk
    if user_id == actor.pk and membership.role == Role.ADMINISTRATOR:
        raise DomainError("self_demotion", _("不能取消自己的管理员角色"))
    membership.active = False
    membership.save(update_fields=["active"])
    audit.record(
        actor=actor,
        action="admin.role_remove",
        target=membership,
        detail={"user": user_id, "institution": membership.institution_id, "role": membership.role},
    )
    forget_nav_flag(user)
    return membership


@transaction.atomic
def update_department(
    *, actor: User, department: Department, name: str, code: str, head: Person | None
) -> Department:
    """Rename a department, change its code, name its head (科主任) among the active members."""
    access.require_manages_institution(actor, department.institution_id)
    name, code = name.strip(), code.strip().upper()
    if not name or not code:
        raise DomainError("missing_field", _("请填写科室名称和代码"), status=422)
    taken = (
        Department.objects.filter(institution_id=department.institution_id, code=code)
        .exclude(pk=department.pk)
        .exists()
    )
    if taken:
        raise DomainError("code_taken", _("本机构已有该科室代码：%(code)s") % {"code": code})
    if head is not None:
        working = Membership.objects.filter(
            person=head, institution_id=department.institution_id, active=True
        ).exists()
        if not working or not head.user.is_active:
            raise DomainError("head_not_member", _("科主任须是本机构在职人员"), status=422)
    before = {"name": department.name, "code": department.code, "head": department.head_id}
    former_head = department.head
    department.name, department.code, department.head = name, code, head
    department.save(update_fields=["name", "code", "head"])
    # a department head sees the quality page: the header's links of both heads change
    for person in (former_head, head):
        if person is not None:
            forget_nav_flag(person.user)
    audit.record(
        actor=actor,
        action="admin.department_update",
        target=department,
        detail={
            "before": before,
            "after": {"name": name, "code": code, "head": department.head_id},
        },
    )
    return department


@transaction.atomic
def create_department(*, actor: User, institution: Institution, name: str, code: str) -> Department:
    access.require_manages_institution(actor, institution.pk)
    name, code = name.strip(), code.strip().upper()
    if not name or not code:
        raise DomainError("missing_field", _("请填写科室名称和代码"), status=422)
    if Department.objects.filter(institution=institution, code=code).exists():
        raise DomainError("code_taken", _("本机构已有该科室代码：%(code)s") % {"code": code})
    department = Department.objects.create(institution=institution, name=name, code=code)
    audit.record(actor=actor, action="admin.department_create", target=department)
    return department


@transaction.atomic
def record_audit_read(*, actor: User, audit_filter: AuditFilter, export: bool) -> None:
    """Reading the log is itself logged: one event per page or export, with the filter."""
    access.require_audit_reader(actor)
    audit.record(
        actor=actor,
        action="audit.export" if export else "audit.browse",
        patient_id=audit_filter.patient_id,
        detail={"filter": audit_filter.as_detail()},
    )


# ---- institutions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstitutionChange:
    """An institution as the administrator wants it (every editable field, changed or not)."""

    name: str
    name_en: str
    level: str
    county: str
    parent_id: int | None
    longitude: float | None  # WGS-84 degrees
    latitude: float | None
    active: bool

    @classmethod
    def of(cls, institution: Institution) -> "InstitutionChange":
        """The institution as it is now."""
        return cls(
            name=institution.name,
            name_en=institution.name_en,
            level=institution.level,
            county=institution.county,
            parent_id=institution.parent_id,
            longitude=institution.longitude,
            latitude=institution.latitude,
            active=institution.active,
        )


class InstitutionInvalidError(DomainError):
    """Every problem with an institution change at once, keyed by field ."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("institution_invalid", "；".join(errors.values()), status=422)
        self.errors = errors


# only the center's administrators may move an institution in the network: its level and parent
# decide whose administrators see what (a center-level institution's administrators see all)
_NETWORK_FIELDS = ("level", "county", "parent_id", "active")
# the parent each level hangs under (network/chuxiong.py)
_PARENT_LEVEL = {
    Institution.Level.COUNTY: Institution.Level.CENTER,
    Institution.Level.TOWNSHIP: Institution.Level.COUNTY,
}


def institution_errors(
    *, actor: User, institution: Institution, change: InstitutionChange
) -> dict[str, str]:
    """Every problem with `change` at once, keyed by field; empty when it may be saved."""
    errors: dict[str, str] = {}
    if not change.name.strip():
        errors["name"] = _("请填写机构名称")
    elif len(change.name.strip()) > 128:
        errors["name"] = _("机构名称不能超过 128 个字符")
    if len(change.name_en.strip()) > 128:
        errors["name_en"] = _("英文名称不能超过 128 个字符")
    if not change.county.strip():
        errors["county"] = _("请填写所属县市")
    elif len(change.county.strip()) > 32:
        errors["county"] = _("县市名称不能超过 32 个字符")
    errors.update(_position_errors(change.longitude, change.latitude))

    before = InstitutionChange.of(institution)
    if access.require_administrator(actor) is not None:
        for field in _NETWORK_FIELDS:
            if getattr(change, field) != getattr(before, field):
                errors[field] = _(
                    "只有州级中心的管理员可以修改机构级别、所属县市、上级机构和启用状态"
                )
        return errors
    errors.update(_network_errors(institution, before, change))
    return errors


def _position_errors(longitude: float | None, latitude: float | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    if (longitude is None) != (latitude is None):
        errors["latitude" if latitude is None else "longitude"] = _(
            "经度和纬度须同时填写或同时留空"
        )
    if longitude is not None and not -180 <= longitude <= 180:
        errors["longitude"] = _("经度须在 -180 到 180 之间")
    if latitude is not None and not -90 <= latitude <= 90:
        errors["latitude"] = _("纬度须在 -90 到 90 之间")
    return errors


def _network_errors(
    institution: Institution, before: InstitutionChange, change: InstitutionChange
) -> dict[str, str]:
    """Level, parent and active flag: the center stays the one center, each level under the
    level above it, nobody left under a closed institution."""
    errors: dict[str, str] = {}
    center = Institution.Level.CENTER
    if change.level not in Institution.Level.values:
        errors["level"] = _("未知的机构级别")
    elif change.level != before.level and center in (change.level, before.level):
        errors["level"] = _("州级中心的级别不能修改，其他机构也不能改为州级中心")
    parent = (
        Institution.objects.filter(pk=change.parent_id).first()
        if change.parent_id is not None
        else None
    )
    if change.level == center:
        if change.parent_id is not None:
            errors["parent_id"] = _("州级中心没有上级机构")
    elif change.level in _PARENT_LEVEL:
        wanted = Institution.Level(_PARENT_LEVEL[Institution.Level(change.level)])
        if parent is None or parent.pk == institution.pk or parent.level != wanted:
            errors["parent_id"] = _("上级机构须是一家%(level)s") % {"level": wanted.label}
        elif change.active and not parent.active:
            errors["parent_id"] = _("上级机构已停用")
    if not change.active and before.active:
        if before.level == center:
            errors["active"] = _("州级中心不能停用")
        else:
            open_children = institution.children.filter(active=True).count()
            if open_children:
                errors["active"] = _("请先停用其下属的 %(n)s 家机构") % {"n": open_children}
    return errors


@transaction.atomic
def update_institution(
    *, actor: User, institution: Institution, change: InstitutionChange
) -> Institution:
    """Save an institution's names, place in the network, position and active flag.

    Raises InstitutionInvalidError with every problem at once. The audit event holds the changed
    fields before and after (the institution page's history reads it)."""
    access.require_manages_institution(actor, institution.pk)
    institution = Institution.objects.select_for_update().get(pk=institution.pk)
    change = InstitutionChange(
        name=change.name.strip(),
        name_en=change.name_en.strip(),
        level=change.level,
        county=change.county.strip(),
        parent_id=change.parent_id,
        longitude=change.longitude,
        latitude=change.latitude,
        active=change.active,
    )
    errors = institution_errors(actor=actor, institution=institution, change=change)
    if errors:
        raise InstitutionInvalidError(errors)
    before = asdict(InstitutionChange.of(institution))
    after = asdict(change)
    changed = [field for field in after if after[field] != before[field]]
    if not changed:
        return institution
    for field in changed:
        setattr(institution, field, after[field])
    institution.save(update_fields=changed)
    audit.record(
        actor=actor,
        action="admin.institution_update",
        target=institution,
        detail={
            "before": {field: before[field] for field in changed},
            "after": {field: after[field] for field in changed},
        },
    )
    return institution


# an institution code is printed on referral letters and used in record numbers: plain ASCII
_INSTITUTION_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$")


def new_institution_errors(*, actor: User, code: str, change: InstitutionChange) -> dict[str, str]:
    """Every problem with creating an institution at once, keyed by field; empty when it may be
    created. Only the center's administrators add institutions (they place them in the network)."""
    access.require_center_administrator(actor)
    errors: dict[str, str] = {}
    code = code.strip()
    if not code:
        errors["code"] = _("请填写机构代码")
    elif not _INSTITUTION_CODE.match(code):
        errors["code"] = _("机构代码须为 2–32 位字母、数字、连字符或下划线，以字母或数字开头")
    elif Institution.objects.filter(code__iexact=code).exists():
        errors["code"] = _("该机构代码已被使用")
    # checked as an institution that already had the level and was open: what differs from the
    # edit checks is only that the network's one center cannot get a second
    as_if = Institution(level=change.level, active=True)
    errors.update(
        institution_errors(actor=actor, institution=as_if, change=replace(change, active=True))
    )
    if change.level == Institution.Level.CENTER:
        errors["level"] = _("网络中只有一家州级中心，不能再新建")
    return errors


@transaction.atomic
def create_institution(*, actor: User, code: str, change: InstitutionChange) -> Institution:
    """Add an institution to the network, open. Raises InstitutionInvalidError with every
    problem at once; `network.institution_create` is audited with the values it starts with."""
    change = replace(
        change,
        name=change.name.strip(),
        name_en=change.name_en.strip(),
        county=change.county.strip(),
        active=True,
    )
    errors = new_institution_errors(actor=actor, code=code, change=change)
    if errors:
        raise InstitutionInvalidError(errors)
    return network.create_institution(
        actor=actor,
        code=code.strip(),
        name=change.name,
        name_en=change.name_en,
        level=change.level,
        county=change.county,
        parent=Institution.objects.get(pk=change.parent_id) if change.parent_id else None,
        longitude=change.longitude,
        latitude=change.latitude,
    )


# ---- stations (the stations app's services, under the administration scope) --------------------


@transaction.atomic
def issue_enrolment_code(
    *, actor: User, institution: Institution, room: str, ttl: timedelta
) -> stations.IssuedCode:
    """A one-time code for a new station at `institution`/`room`, shown once (stations stores
    its hash). The center's administrators issue codes for any institution, others only for
    their own (the stations app's own page asks for an administrator role there)."""
    access.require_manages_institution(actor, institution.pk)
    _require_active(institution)
    return stations.create_enrolment_code(actor=actor, institution=institution, room=room, ttl=ttl)


@transaction.atomic
def revoke_station(*, actor: User, station: Station, reason: str) -> Station:
    """Cut a station off the bridge for good (stations.services.revoke_station), by an
    administrator of its institution or of the center."""
    access.require_manages_institution(actor, station.institution_id)
    return stations.revoke_station(actor=actor, station=station, reason=reason)
