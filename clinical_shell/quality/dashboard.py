"""What the dashboard pages show, built on the quality selectors: who may see which scope, the
month shown, figures as display rows, the map's points. No indicator is computed here."""

from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import User
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from clinical_shell.errors import PermissionDeniedError
from clinical_shell.network.models import Institution, Membership, Role
from clinical_shell.network.selectors import headed_departments, institutions
from clinical_shell.quality import geography, periods, selectors
from clinical_shell.quality.models import IndicatorResult, Level, PeriodKind, Status

# the order in which a scope's worst status is decided
SEVERITY = {Status.ALARM: 3, Status.WARNING: 2, Status.OK: 1, Status.NO_DATA: 0}

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("hip", ("hip-",)),
    ("surgery", ("ssi-", "arthroplasty-", "spine-", "severe-trauma-")),
    ("network", ("up-referral", "down-referral", "teleconsultation")),
    ("workforce", ("privilege-", "training-", "credentialing-")),
)


def group_title(group: str) -> str:
    return {
        "hip": _("髋部骨折"),
        "surgery": _("手术质量与安全"),
        "network": _("转诊与远程会诊"),
        "workforce": _("授权、培训与资格认证"),
        "other": _("其他指标"),
    }[group]


def group_of(code: str) -> str:
    for group, prefixes in GROUPS:
        if code.startswith(prefixes):
            return group
    return "other"


@dataclass(frozen=True)
class Scope:
    level: str
    key: str
    title: str
    institution: Institution | None = None


def _quality_places(user: User) -> list[Membership]:
    return list(
        Membership.objects.filter(
            person__user=user, role=Role.QUALITY_MANAGER, active=True
        ).select_related("institution")
    )


def sees_network(user: User) -> bool:
    return any(m.institution.level == Institution.Level.CENTER for m in _quality_places(user))


def home_scope(user: User) -> Scope:
    """The network for the center's quality office; else the user's own institution (a
    department head's: the institution whose department they head)."""
    places = _quality_places(user)
    if not places:
        headed = headed_departments(int(user.pk))
        if headed:
            institution = Institution.objects.get(pk=headed[0])
            return Scope(Level.INSTITUTION, str(institution.pk), institution.name, institution)
        raise PermissionDeniedError(
            "not_quality_office", _("质控看板仅供质控办公室(质控管理员)及科主任查看")
        )
    if any(m.institution.level == Institution.Level.CENTER for m in places):
        return Scope(Level.PREFECTURE, "all", _("全州骨科质控"))
    institution = places[0].institution
    return Scope(Level.INSTITUTION, str(institution.pk), institution.name, institution)


def scope_for(user: User, level: str, key: str) -> Scope:
    """The scope asked for, if this user may see it (refused with a plain reason otherwise)."""
    places = _quality_places(user)
    network_wide = any(m.institution.level == Institution.Level.CENTER for m in places)
    if level == Level.PREFECTURE and network_wide:
        return Scope(Level.PREFECTURE, "all", _("全州骨科质控"))
    if level == Level.COUNTY and network_wide:
        return Scope(Level.COUNTY, key, key)
    if level == Level.INSTITUTION and key.isdigit():
        institution = Institution.objects.filter(pk=int(key)).first()
        if institution is not None and (
            network_wide
            or any(m.institution_id == institution.pk for m in places)
            or institution.pk in headed_departments(int(user.pk))
        ):
            return Scope(Level.INSTITUTION, key, institution.name, institution)
    if level == Level.SURGEON and network_wide:
        return Scope(Level.SURGEON, key, key)
    raise PermissionDeniedError(
        "not_quality_office", _("只有全州质控办公室或本机构质控管理员可以查看该范围的质控数据")
    )


def latest_month() -> date:
    """The latest month with stored figures (the month the pages open on), else this month."""
    found = IndicatorResult.objects.filter(period_kind=PeriodKind.MONTH).aggregate(
        last=Max("period_start")
    )["last"]
    return found or periods.month_start(timezone.localdate())


def parse_month(text: str | None) -> date:
    if text:
        try:
            year, month = text.split("-")[:2]
            return date(int(year), int(month), 1)
        except ValueError:
            pass
    return latest_month()


def name_of(figure: selectors.IndicatorFigure) -> str:
    return figure.name_en if get_language() == "en" else figure.name_zh


def shown_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "%":
        return f"{value * 100:.1f} %"
    if unit in ("cases", "例"):
        return f"{value:.0f}"
    return f"{value:.1f} {unit}"


def shown_threshold(value: float | None, unit: str) -> str:
    return "" if value is None else shown_value(value, unit)


@dataclass(frozen=True)
class Card:
    figure: selectors.IndicatorFigure
    name: str
    group: str
    shown: str
    counts: str
    target: str
    warning: str
    alarm: str
    sparkline: list[float | None]
    drillable: bool


def cards(figures: list[selectors.IndicatorFigure]) -> list[Card]:
    found = []
    for f in figures:
        if f.aggregate == "rate" and f.numerator is not None:
            counts = f"{f.numerator}/{f.denominator}"
        else:
            counts = str(f.denominator)
        scale = 100.0 if f.unit == "%" else 1.0
        found.append(
            Card(
                figure=f,
                name=name_of(f),
                group=group_of(f.code),
                shown=shown_value(f.value, f.unit),
                counts=counts,
                target=shown_threshold(f.target, f.unit),
                warning=shown_threshold(f.warning, f.unit),
                alarm=shown_threshold(f.alarm, f.unit),
                sparkline=[None if v is None else round(v * scale, 2) for v in f.trend],
                drillable=f.denominator > 0,
            )
        )
    return found


def grouped(found: list[Card]) -> list[tuple[str, str, list[Card]]]:
    order = [g for g, _p in GROUPS] + ["other"]
    return [
        (g, group_title(g), [c for c in found if c.group == g])
        for g in order
        if any(c.group == g for c in found)
    ]


def worst(figures: list[selectors.IndicatorFigure]) -> str:
    shown = [f.status for f in figures]
    return max(shown, key=lambda s: SEVERITY.get(Status(s), 0), default=Status.NO_DATA)


@dataclass(frozen=True)
class MapPoint:
    institution: Institution
    longitude: float
    latitude: float
    status: str
    alarms: int
    warnings: int


def network_map(month: date) -> tuple[list[MapPoint], list[Institution], list[tuple[float, float]]]:
    """Each institution placed by its coordinates, coloured by its worst indicator status."""
    statuses: dict[str, list[str]] = {}
    # one query for the whole network (the stored monthly figures of every institution)
    for key, status in IndicatorResult.objects.filter(
        level=Level.INSTITUTION,
        period_kind=PeriodKind.MONTH,
        period_start=periods.month_start(month),
        indicator__active=True,
    ).values_list("scope_key", "status"):
        statuses.setdefault(key, []).append(status)
    placed: list[MapPoint] = []
    unplaced: list[Institution] = []
    for institution in institutions():
        # coordinates set in administration win over the demo region's table
        position = (
            (institution.longitude, institution.latitude)
            if institution.longitude is not None and institution.latitude is not None
            else geography.POSITIONS.get(institution.code)
        )
        if position is None:
            unplaced.append(institution)
            continue
        found = statuses.get(str(institution.pk), [])
        placed.append(
            MapPoint(
                institution=institution,
                longitude=position[0],
                latitude=position[1],
                status=max(found, key=lambda s: SEVERITY.get(Status(s), 0), default=Status.NO_DATA),
                alarms=found.count(Status.ALARM),
                warnings=found.count(Status.WARNING),
            )
        )
    frame = geography.outline([(p.longitude, p.latitude) for p in placed])
    return placed, unplaced, frame
