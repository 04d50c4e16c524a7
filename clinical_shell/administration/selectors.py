"""Reads for the administration pages: the audit log filtered, accounts, institutions and their
departments and history, stations and enrolment codes (through the stations app's selectors)."""

from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy

from clinical_shell.accounts import throttle
from clinical_shell.accounts.models import SignInThrottle
from clinical_shell.audit.models import AuditEvent
from clinical_shell.network.models import Department, Institution, Membership, Person
from clinical_shell.stations import selectors as stations
from clinical_shell.stations.models import EnrolmentCode, Station

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


def institution(institution_id: int) -> Institution | None:
    return Institution.objects.select_related("parent").filter(pk=institution_id).first()


def parent_choices() -> QuerySet[Institution]:
    """Institutions another one can hang under (the center and county hospitals)."""
    return Institution.objects.filter(
        level__in=[Institution.Level.CENTER, Institution.Level.COUNTY]
    ).order_by("level", "code")


INSTITUTION_HISTORY_SIZE = 20


_FIELD_LABELS = {
    "name": gettext_lazy("机构名称"),
    "name_en": gettext_lazy("英文名称"),
    "level": gettext_lazy("级别"),
    "county": gettext_lazy("所属县市"),
    "parent_id": gettext_lazy("上级机构"),
    "longitude": gettext_lazy("经度"),
    "latitude": gettext_lazy("纬度"),
    "active": gettext_lazy("启用"),
}


@dataclass(frozen=True)
class FieldChange:
    label: str
    before: str
    after: str


@dataclass(frozen=True)
class InstitutionHistoryRow:
    occurred_at: datetime
    actor_username: str
    created: bool  # the institution's creation (no fields listed)
    changes: list[FieldChange]


def institution_history(institution_id: int) -> list[InstitutionHistoryRow]:
    """The institution's latest recorded changes (creation and edits), newest first, each field
    with its value before and after as people read it."""
    events = list(
        AuditEvent.objects.filter(
            target_type=Institution._meta.label_lower,
            target_id=str(institution_id),
            action__in=["network.institution_create", "admin.institution_update"],
        ).order_by("-occurred_at", "-id")[:INSTITUTION_HISTORY_SIZE]
    )
    parent_ids = {
        side.get("parent_id")
        for event in events
        for side in (event.detail.get("before", {}), event.detail.get("after", {}))
    }
    names = dict(Institution.objects.filter(pk__in=parent_ids - {None}).values_list("pk", "name"))

    def shown(field: str, value: object) -> str:
        if value is None or value == "":
            return "—"
        if field == "level" and value in Institution.Level.values:
            return str(Institution.Level(value).label)
        if field == "active":
            return str(gettext_lazy("启用") if value else gettext_lazy("停用"))
        if field == "parent_id" and isinstance(value, int):
            return names.get(value, str(value))
        return str(value)

    rows = []
    for event in events:
        before, after = event.detail.get("before", {}), event.detail.get("after", {})
        changes = [
            FieldChange(
                str(_FIELD_LABELS.get(field, field)),
                shown(field, before.get(field)),
                shown(field, after.get(field)),
            )
            for field in after
        ]
        rows.append(
            InstitutionHistoryRow(
                occurred_at=event.occurred_at,
                actor_username=event.actor_username,
                created=event.action == "network.institution_create",
                changes=changes,
            )
        )
    return rows


def stations_in(scope: list[int] | None) -> QuerySet[Station]:
    """Stations of the institutions in `scope` (None: all), revoked ones last."""
    ids = list(manageable_institutions(scope).values_list("pk", flat=True))
    return stations.stations_at(ids).order_by(
        "status", "institution__level", "institution__code", "room", "name"
    )


def enrolment_codes_in(scope: list[int] | None) -> QuerySet[EnrolmentCode]:
    ids = list(manageable_institutions(scope).values_list("pk", flat=True))
    return stations.enrolment_codes_at(ids)


def station(station_id: int) -> Station | None:
    return (
        Station.objects.select_related("institution", "signed_in_user__person", "current_session")
        .filter(pk=station_id)
        .first()
    )
