"""Reads for the administration pages: the audit log filtered, accounts, departments."""

from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from clinical_shell.accounts import throttle
from clinical_shell.accounts.models import SignInThrottle
from clinical_shell.audit.models import AuditEvent
from clinical_shell.network.models import Department, Institution, Membership, Person

AUDIT_PAGE_SIZE = 50
USER_PAGE_SIZE = 50


@dataclass(frozen=True)
class AuditFilter:
    """What the audit browser was asked for; every field optional (empty: no condition)."""

    patient_id: int | None = None
    username: str = ""
    action_prefix: str = ""
    outcome: str = ""
    since: date | None = None  # first day included, in the server's time zone
    until: date | None = None  # last day included

    def as_detail(self) -> dict[str, str | int]:
        """The filter as it is written into the audit event of the read (empty fields left out)."""
        return {
            k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(self).items() if v
        }


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def audit_events(f: AuditFilter, *, upto_id: int | None = None) -> QuerySet[AuditEvent]:
    """Events matching `f`, newest first; with `upto_id`, none written after that one."""
    events = AuditEvent.objects.all()
    if upto_id is not None:
        events = events.filter(id__lte=upto_id)
    if f.patient_id is not None:
        events = events.filter(patient_id=f.patient_id)
    if f.username:
        events = events.filter(actor_username=f.username)
    if f.action_prefix:
        events = events.filter(action__startswith=f.action_prefix)
    if f.outcome:
        events = events.filter(outcome=f.outcome)
    if f.since is not None:
        events = events.filter(occurred_at__gte=_day_start(f.since))
    if f.until is not None:
        events = events.filter(occurred_at__lt=_day_start(f.until + timedelta(days=1)))
    return events.order_by("-occurred_at", "-id")


def latest_event_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


@dataclass(frozen=True)
class UserFilter:
    query: str = ""  # part of the name or username
    institution_id: int | None = None
    role: str = ""
    active: bool | None = None
    locked: bool | None = None


def locked_usernames() -> set[str]:
    keys = SignInThrottle.objects.filter(locked_at__isnull=False, key__startswith="account:")
    prefix_len = len(throttle.account_key(""))
    return {key[prefix_len:] for key in keys.values_list("key", flat=True)}


def accounts(scope: list[int] | None, f: UserFilter) -> QuerySet[User]:
    """Accounts with a person, within `scope` (None: all institutions), name order."""
    users = get_user_model().objects.filter(person__isnull=False)
    if scope is not None:
        users = users.filter(person__memberships__institution_id__in=scope)
    if f.query:
        users = users.filter(
            Q(username__icontains=f.query) | Q(person__full_name__icontains=f.query)
        )
    if f.institution_id is not None:
        users = users.filter(person__memberships__institution_id=f.institution_id)
    if f.role:
        users = users.filter(person__memberships__role=f.role, person__memberships__active=True)
    if f.active is not None:
        users = users.filter(is_active=f.active)
    if f.locked is not None:
        locked = locked_usernames()
        users = (
            users.filter(username__in=locked) if f.locked else users.exclude(username__in=locked)
        )
    memberships = Membership.objects.select_related("institution", "department").order_by(
        "institution__level", "institution__code", "role"
    )
    return (
        users.distinct()
        .select_related("person")
        .prefetch_related(Prefetch("person__memberships", queryset=memberships))
        .order_by("username")
    )


def account(user_id: int) -> User | None:
    return (
        get_user_model()
        .objects.filter(pk=user_id, person__isnull=False)
        .select_related("person")
        .first()
    )


def is_locked(user: User) -> bool:
    return throttle.is_locked(throttle.account_key(user.get_username()))


def manageable_institutions(scope: list[int] | None) -> QuerySet[Institution]:
    institutions = Institution.objects.order_by("level", "code")
    return institutions if scope is None else institutions.filter(pk__in=scope)


def departments_of(institution: Institution) -> QuerySet[Department]:
    return institution.departments.select_related("head").order_by("code")


def active_members(institution_id: int) -> QuerySet[Person]:
    """People with an active membership at the institution and an active account: who may head
    one of its departments."""
    return (
        Person.objects.filter(
            memberships__institution_id=institution_id,
            memberships__active=True,
            user__is_active=True,
        )
        .distinct()
        .order_by("full_name")
    )
