"""Quality warnings: raised once per period and cause, acknowledged with an action note, closed;
overdue ones escalate to the prefecture center's quality office.

Who is told: the quality managers (network role) of the institution concerned and of the
prefecture center, and the named heads (科主任, `Department.head`) of the orthopedic (township:
general) department of the institution concerned, or of the county's hospital for a county
figure; a head may acknowledge and close the warnings of their own institution.
Summaries are written in both languages when raised (indicator and place names are data).
Threshold warnings are raised only from monthly figures that are reliable (enough cases) at
institution, county and prefecture level; per-surgeon figures are shown, never broadcast.
"""

from datetime import date, datetime, timedelta
from typing import cast

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone, translation
from django.utils.functional import Promise, lazy
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from clinical_shell.audit import services as audit
from clinical_shell.network.models import Institution, Membership, Role
from clinical_shell.network.selectors import department_heads, headed_departments
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
    headed: list[int] = []
    if warning.institution_id is not None:
        places.append(warning.institution_id)
        headed.append(warning.institution_id)
    if county:
        in_county = Institution.objects.filter(county=county)
        places += list(in_county.values_list("pk", flat=True))
        headed += list(
            in_county.filter(level=Institution.Level.COUNTY).values_list("pk", flat=True)
        )
    return _quality_managers(places) | department_heads(headed)


def _bilingual(zh: str, en: str) -> Promise:
    """Text that reads as `en` in English and `zh` otherwise (for notifications, which store
    both languages)."""

    def chosen() -> str:
        return en if (translation.get_language() or "").startswith("en") else zh

    return cast(Promise, lazy(chosen, str)())


UNITS = {"%": ("", ""), "min": (" 分钟", " min"), "h": (" 小时", " h"), "cases": (" 例", " cases")}


def _value_text(value: float, unit: str) -> tuple[str, str]:
    if unit == "%":
        shown = f"{value * 100:.1f}%"
        return shown, shown
    zh, en = UNITS.get(unit, (f" {unit}", f" {unit}"))
    return f"{value:.3g}{zh}", f"{value:.3g}{en}"


def _place(level: str, key: str) -> tuple[str, str]:
    if level == Level.INSTITUTION:
        name = Institution.objects.filter(pk=int(key)).values_list("name", flat=True).first()
        return (name or key), (name or key)
    if level == Level.COUNTY:
        return key, key
    return "全州", "whole prefecture"


def _raise(
    *,
    kind: str,
    cause: str,
    month: date,
    summary: tuple[str, str],
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
                summary=summary[0][:300],
                summary_en=summary[1][:300],
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
        title=format_lazy("{}: {}", WarningKind(kind).label, _bilingual(*summary)),
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
        value_zh, value_en = _value_text(result.value or 0.0, result.indicator.unit)
        place_zh, place_en = _place(result.level, result.scope_key)
        counts = (
            f" ({result.numerator}/{result.denominator})" if result.numerator is not None else ""
        )
        summary = (
            f"{result.indicator.name_zh} {month:%Y-%m} {place_zh} = {value_zh}{counts}",
            f"{result.indicator.name_en} {month:%Y-%m} {place_en} = {value_en}{counts}",
        )
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
        where = booking.institution.name
        warning = _raise(
            kind=WarningKind.PRIVILEGE_OVERRIDE,
            cause=f"booking:{booking.pk}",
            month=month,
            summary=(
                f"{where} {booking.procedure_name} {booking.scheduled_on:%Y-%m-%d}",
                f"{where}: {booking.procedure_name}, {booking.scheduled_on:%Y-%m-%d}",
            ),
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
    ).select_related("encounter__institution")
    for fact in deaths:
        where = fact.encounter.institution.name
        day = timezone.localtime(fact.occurred_at).date()
        warning = _raise(
            kind=WarningKind.DEATH_AFTER_KEY_OPERATION,
            cause=f"fact:{fact.pk}",
            month=month,
            # the encounter number, never the patient: notifications may be read by others
            summary=(
                f"{where} 就诊 #{fact.encounter_id} {day:%Y-%m-%d}",
                f"{where}, encounter #{fact.encounter_id}, {day:%Y-%m-%d}",
            ),
            institution_id=fact.encounter.institution_id,
        )
        if warning is not None:
            raised.append(warning)
    return raised


def can_handle(user: User, warning: QualityWarning) -> bool:
    if warning.institution_id is not None and warning.institution_id in headed_departments(
        int(user.pk)
    ):
        return True
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
                title=format_lazy(
                    "{}: {}",
                    _("质控预警逾期未处理"),
                    _bilingual(warning.summary, warning.summary_en or warning.summary),
                ),
                url=f"/quality/warnings/{warning.pk}/",
                kind="quality.warning.escalated",
            )
            escalated += 1
    return escalated
