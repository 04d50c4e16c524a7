"""Quality warnings: raised once per period and cause, acknowledged with an action note, closed;
overdue ones escalate to the prefecture center's quality office.

Who is told: the quality managers (network role) of the institution concerned and of the
prefecture center. The network has no department-head role, so no department head is told yet.
Threshold warnings are raised only from monthly figures that are reliable (enough cases) at
institution, county and prefecture level; per-surgeon figures are shown, never broadcast.
"""

from datetime import date, datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from clinical_shell.audit import services as audit
from clinical_shell.network.models import Institution, Membership, Role
from clinical_shell.notifications.services import notify
from clinical_shell.quality import periods
from clinical_shell.quality.indicators.catalogue import ARTHROPLASTY, SPINE
from clinical_shell.quality.models import (
    ClinicalFact,
    FactKind,
    IndicatorResult,
    Level,
    PeriodKind,
    QualityWarning,
    Status,
    WarningKind,
    WarningStatus,
)
from clinical_shell.records.models import Procedure

KEY_OPERATIONS = ARTHROPLASTY + SPINE
RESPONSE_TIME = {
    WarningKind.THRESHOLD_WARNING: timedelta(days=7),
    WarningKind.THRESHOLD_ALARM: timedelta(days=3),
    WarningKind.PRIVILEGE_OVERRIDE: timedelta(days=3),
    WarningKind.DEATH_AFTER_KEY_OPERATION: timedelta(days=3),
}


def _quality_managers(institutions: QuerySet[Institution] | list[int]) -> set[User]:
    members = Membership.objects.filter(
        role=Role.QUALITY_MANAGER, active=True, institution__in=institutions
    ).select_related("person__user")
    return {m.person.user for m in members}


def _center_ids() -> list[int]:
    return list(
        Institution.objects.filter(level=Institution.Level.CENTER).values_list("pk", flat=True)
    )


def responsible(warning: QualityWarning, *, county: str = "") -> set[User]:
    places = _center_ids()
    if warning.institution_id is not None:
        places.append(warning.institution_id)
    if county:
        places += list(Institution.objects.filter(county=county).values_list("pk", flat=True))
    return _quality_managers(places)


def _raise(
    *,
    kind: str,
    cause: str,
    month: date,
    summary: str,
    institution_id: int | None = None,
    indicator_id: int | None = None,
    county: str = "",
) -> QualityWarning | None:
    """Create the warning unless one exists for the same kind, cause and period; notify."""
    now = timezone.now()
    try:
        with transaction.atomic():
            warning = QualityWarning.objects.create(
                kind=kind,
                cause=cause[:160],
                period_start=month,
                summary=summary[:300],
                institution_id=institution_id,
                indicator_id=indicator_id,
                raised_at=now,
                due_at=now + RESPONSE_TIME[WarningKind(kind)],
            )
    except IntegrityError:
        return None  # already raised for this period and cause
    audit.record(
        actor=None, action="quality.warning.raise", target=warning, detail={"cause": cause}
    )
    notify(
        responsible(warning, county=county),
        title=format_lazy("{}: {}", WarningKind(kind).label, summary),
        body=_("请确认并填写处理措施"),
        url=f"/quality/warnings/{warning.pk}/",
        kind="quality.warning",
    )
    return warning


def raise_threshold_warnings(month: date) -> list[QualityWarning]:
    results = IndicatorResult.objects.filter(
        period_kind=PeriodKind.MONTH,
        period_start=month,
        reliable=True,
        status__in=[Status.WARNING, Status.ALARM],
        level__in=[Level.INSTITUTION, Level.COUNTY, Level.PREFECTURE],
    ).select_related("indicator")
    raised = []
    for result in results:
        kind = (
            WarningKind.THRESHOLD_ALARM
            if result.status == Status.ALARM
            else WarningKind.THRESHOLD_WARNING
        )
        institution_id = int(result.scope_key) if result.level == Level.INSTITUTION else None
        county = result.scope_key if result.level == Level.COUNTY else ""
        shown = result.value if result.value is not None else 0.0
        where = f"{result.level}:{result.scope_key}"
        summary = f"{result.indicator.name_zh} {month:%Y-%m} {where} = {shown:.3g}"
        if result.numerator is not None:
            summary += f" ({result.numerator}/{result.denominator})"
        warning = _raise(
            kind=kind,
            cause=f"{result.indicator.code}:{result.level}:{result.scope_key}",
            month=month,
            summary=summary,
            institution_id=institution_id,
            indicator_id=result.indicator_id,
            county=county,
        )
        if warning is not None:
            raised.append(warning)
    return raised


def raise_event_warnings(day: date) -> list[QualityWarning]:
    """Single events that each demand review, in the month of `day`."""
    from clinical_shell.scheduling.selectors import overrides

    month = periods.month_start(day)
    window = periods.month_window(month)
    raised = []
    for booking in overrides(window.start).filter(created_at__lt=window.end):
        warning = _raise(
            kind=WarningKind.PRIVILEGE_OVERRIDE,
            cause=f"booking:{booking.pk}",
            month=month,
            summary=f"{booking.procedure_name} {booking.scheduled_on:%Y-%m-%d}",
            institution_id=booking.institution_id,
        )
        if warning is not None:
            raised.append(warning)
    key_operation = Q()
    for prefix in KEY_OPERATIONS:
        key_operation |= Q(icd9cm3_code__startswith=prefix)
    operated = Procedure.objects.filter(key_operation, deleted_at__isnull=True).values(
        "encounter_id"
    )
    deaths = ClinicalFact.objects.filter(
        kind=FactKind.DEATH_30D,
        occurred_at__gte=window.start,
        occurred_at__lt=window.end,
        encounter_id__in=operated,
    ).select_related("encounter")
    for fact in deaths:
        warning = _raise(
            kind=WarningKind.DEATH_AFTER_KEY_OPERATION,
            cause=f"fact:{fact.pk}",
            month=month,
            summary=f"encounter {fact.encounter_id} {fact.occurred_at:%Y-%m-%d}",
            institution_id=fact.encounter.institution_id,
        )
        if warning is not None:
            raised.append(warning)
    return raised


def can_handle(user: User, warning: QualityWarning) -> bool:
    places = Membership.objects.filter(
        person__user=user, role=Role.QUALITY_MANAGER, active=True
    ).values_list("institution_id", "institution__level")
    for institution_id, level in places:
        if level == Institution.Level.CENTER or institution_id == warning.institution_id:
            return True
    return False


def _locked(warning: QualityWarning, user: User) -> QualityWarning:
    if not can_handle(user, warning):
        audit.record(actor=user, action="quality.warning.refused", success=False, target=warning)
        raise PermissionDenied
    return QualityWarning.objects.select_for_update().get(pk=warning.pk)


@transaction.atomic
def acknowledge(*, actor: User, warning: QualityWarning, action_note: str) -> QualityWarning:
    if not action_note.strip():
        raise ValidationError({"action_note": _("必须填写处理措施")})
    locked = _locked(warning, actor)
    if locked.status != WarningStatus.OPEN:
        raise ValidationError({"status": _("该预警已确认或已关闭")})
    locked.status = WarningStatus.ACKNOWLEDGED
    locked.acknowledged_by = actor
    locked.acknowledged_at = timezone.now()
    locked.action_note = action_note.strip()
    locked.save()
    audit.record(actor=actor, action="quality.warning.acknowledge", target=locked)
    return locked


@transaction.atomic
def close(*, actor: User, warning: QualityWarning) -> QualityWarning:
    locked = _locked(warning, actor)
    if locked.status != WarningStatus.ACKNOWLEDGED:
        raise ValidationError({"status": _("须先确认并填写处理措施")})
    locked.status = WarningStatus.CLOSED
    locked.closed_by = actor
    locked.closed_at = timezone.now()
    locked.save()
    audit.record(actor=actor, action="quality.warning.close", target=locked)
    return locked


def escalate_overdue(now: datetime | None = None) -> int:
    """Open warnings past their due time go one level up (the center's quality office and the
    system administrators are told) and get a new due time."""
    now = now or timezone.now()
    escalated = 0
    with transaction.atomic():
        overdue = QualityWarning.objects.select_for_update(skip_locked=True).filter(
            status=WarningStatus.OPEN, due_at__lt=now
        )
        for warning in overdue:
            warning.escalation_level += 1
            warning.escalated_at = now
            warning.due_at = now + RESPONSE_TIME[WarningKind(warning.kind)]
            warning.save(update_fields=["escalation_level", "escalated_at", "due_at"])
            audit.record(
                actor=None,
                action="quality.warning.escalate",
                target=warning,
                detail={"level": warning.escalation_level},
            )
            admins = Membership.objects.filter(
                role=Role.ADMINISTRATOR, active=True, institution__in=_center_ids()
            ).select_related("person__user")
            notify(
                _quality_managers(_center_ids()) | {m.person.user for m in admins},
                title=format_lazy("{}: {}", _("质控预警逾期未处理"), warning.summary),
                url=f"/quality/warnings/{warning.pk}/",
                kind="quality.warning.escalated",
            )
            escalated += 1
    return escalated
