"""Reading stored indicator results, funnel plots, the cases behind a figure, open warnings.

Interface for the dashboards (views call only these):

  indicator_results(*, month, period_kind="month", level="prefecture", key="all")
      -> list[IndicatorFigure]: one per active indicator: value, numerator, denominator, reliable,
         status (ok/warning/alarm/no_data), target/warning/alarm, unit, direction, and `trend`
         (the last 12 monthly values of that scope, oldest first, None where no data).
         Reads stored results only (services.recompute_month / the jobs fill them): 2 queries.
  funnel(code, *, month, period_kind="month", level="institution") -> FunnelData
      points (scope key, n, numerator, value) and the network proportion `p` with binomial
      control limits (95 % and 99.8 %) at each point's n and along a curve of n.
  cases_behind(user, code, *, month, period_kind, level, key, numerator=False)
      -> CasesBehind (quality.cases): the rows behind that figure, whatever its source
         (encounters, referrals, consultations, bookings, assessments), that `user` may see
         (the institutions where the user is a clinician or quality manager; the center's
         quality managers see all). Audited.
  open_warnings(user) -> QuerySet[QualityWarning] the user may handle, not closed, due first.
  visible_warnings(user) -> the same, with closed ones.
"""

from dataclasses import dataclass, field
from datetime import date

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from clinical_shell.audit import services as audit
from clinical_shell.network.models import Institution, Membership, Role
from clinical_shell.network.selectors import headed_departments
from clinical_shell.quality import cases, periods
from clinical_shell.quality.cases import CasesBehind
from clinical_shell.quality.indicators import engine, stats
from clinical_shell.quality.models import (
    IndicatorDefinition,
    IndicatorResult,
    Level,
    PeriodKind,
    QualityWarning,
    Status,
    WarningStatus,
)
from clinical_shell.records.access import clinical_institution_ids
from clinical_shell.records.models import Encounter


@dataclass(frozen=True)
class IndicatorFigure:
    code: str
    name_zh: str
    name_en: str
    unit: str
    direction: str
    aggregate: str
    value: float | None
    numerator: int | None
    denominator: int
    reliable: bool
    status: str
    target: float | None
    warning: float | None
    alarm: float | None
    trend: list[float | None] = field(default_factory=list)


def indicator_results(
    *,
    month: date,
    period_kind: str = PeriodKind.MONTH,
    level: str = Level.PREFECTURE,
    key: str = "all",
) -> list[IndicatorFigure]:
    month = periods.month_start(month)
    months = periods.last_months(month)
    stored = IndicatorResult.objects.filter(
        level=level, scope_key=key, period_kind=PeriodKind.MONTH, period_start__in=months
    ).values_list("indicator_id", "period_start", "value")
    trend: dict[int, dict[date, float | None]] = {}
    for indicator_id, start, value in stored:
        trend.setdefault(indicator_id, {})[start] = value
    current = {
        r.indicator_id: r
        for r in IndicatorResult.objects.filter(
            level=level, scope_key=key, period_kind=period_kind, period_start=month
        )
    }
    figures = []
    for definition in IndicatorDefinition.objects.filter(active=True):
        result = current.get(definition.pk)
        figures.append(
            IndicatorFigure(
                code=definition.code,
                name_zh=definition.name_zh,
                name_en=definition.name_en,
                unit=definition.unit,
                direction=definition.direction,
                aggregate=definition.aggregate,
                value=result.value if result else None,
                numerator=result.numerator if result else None,
                denominator=result.denominator if result else 0,
                reliable=result.reliable if result else False,
                status=result.status if result else Status.NO_DATA,
                target=definition.target,
                warning=definition.warning,
                alarm=definition.alarm,
                trend=[trend.get(definition.pk, {}).get(m) for m in months],
            )
        )
    return figures


@dataclass(frozen=True)
class FunnelPoint:
    key: str
    n: int
    numerator: int | None
    value: float | None
    limits: stats.Limits | None


@dataclass(frozen=True)
class FunnelData:
    code: str
    p: float | None
    points: list[FunnelPoint]
    curve: list[stats.Limits]


def funnel(
    code: str, *, month: date, period_kind: str = PeriodKind.MONTH, level: str = Level.INSTITUTION
) -> FunnelData:
    """Units against the network's proportion with binomial control limits (rates only)."""
    month = periods.month_start(month)
    results = IndicatorResult.objects.filter(
        indicator__code=code, period_kind=period_kind, period_start=month
    )
    overall = results.filter(level=Level.PREFECTURE).first()
    p = None
    if overall and overall.numerator is not None and overall.denominator:
        p = overall.numerator / overall.denominator
    points = []
    for r in results.filter(level=level, denominator__gt=0).order_by("scope_key"):
        limits = stats.funnel_limits(r.denominator, p) if p is not None else None
        points.append(FunnelPoint(r.scope_key, r.denominator, r.numerator, r.value, limits))
    curve = []
    if p is not None and points:
        top = max(point.n for point in points)
        curve = [
            stats.funnel_limits(n, p) for n in sorted({max(1, top * i // 40) for i in range(1, 41)})
        ]
    return FunnelData(code=code, p=p, points=points, curve=curve)


def _all_seeing(user: User) -> bool:
    return Membership.objects.filter(
        person__user=user,
        role=Role.QUALITY_MANAGER,
        active=True,
        institution__level=Institution.Level.CENTER,
    ).exists()


def visible_institution_ids(user: User) -> list[int] | None:
    """None: all of them (the center's quality office)."""
    if _all_seeing(user):
        return None
    quality = Membership.objects.filter(
        person__user=user, role=Role.QUALITY_MANAGER, active=True
    ).values_list("institution_id", flat=True)
    return sorted(set(clinical_institution_ids(user)) | set(quality))


def cases_behind(
    user: User,
    code: str,
    *,
    month: date,
    period_kind: str = PeriodKind.MONTH,
    level: str = Level.PREFECTURE,
    key: str = "all",
    numerator: bool = False,
) -> CasesBehind:
    definition = IndicatorDefinition.objects.get(code=code)
    spec = definition.spec
    source = spec.get("source", "")
    month = periods.month_start(month)
    window = (
        periods.rolling12_window(month)
        if period_kind == PeriodKind.ROLLING_12
        else periods.month_window(month)
    )
    audit.record(
        actor=user,
        action="quality.cases.view",
        target=definition,
        detail={"month": month.isoformat(), "level": level, "key": key, "numerator": numerator},
    )
    if not cases.listed(source):
        return cases.behind(source, Encounter.objects.none())
    rows = (
        engine.numerator_rows(spec, definition.aggregate, window)
        if numerator
        else engine.cohort(spec, window)
    )
    if level != Level.PREFECTURE:
        wanted: int | str = int(key) if level in (Level.INSTITUTION, Level.SURGEON) else key
        rows = rows.annotate(_g=engine.group_of(spec, level)).filter(_g=wanted)
    allowed = visible_institution_ids(user)
    if allowed is not None:
        rows = rows.filter(**{f"{cases.institution_field(source)}__in": allowed})
    return cases.behind(source, rows)


def visible_warnings(user: User) -> QuerySet[QualityWarning]:
    """The center's quality office sees all; an institution's quality managers and the heads of
    its clinical departments see that institution's."""
    found = QualityWarning.objects.select_related("indicator", "institution")
    if _all_seeing(user):
        return found
    places = set(
        Membership.objects.filter(
            person__user=user, role=Role.QUALITY_MANAGER, active=True
        ).values_list("institution_id", flat=True)
    )
    places |= set(headed_departments(int(user.pk)))
    return found.filter(Q(institution_id__in=sorted(places)))


def open_warnings(user: User) -> QuerySet[QualityWarning]:
    return visible_warnings(user).exclude(status=WarningStatus.CLOSED).order_by("due_at", "pk")
