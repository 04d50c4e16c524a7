"""The printable monthly report: for one scope and month, one page per indicator group with each
figure, the counts behind it, its thresholds, the 12-month trend as numbers, and the warnings of
the month."""

from datetime import date

from django.utils import timezone

from clinical_shell.quality import dashboard, periods, selectors
from clinical_shell.quality.models import Level, PeriodKind, QualityWarning


def context(*, scope: dashboard.Scope, month: date) -> dict[str, object]:
    figures = selectors.indicator_results(month=month, level=scope.level, key=scope.key)
    rolling = {
        f.code: f
        for f in selectors.indicator_results(
            month=month, period_kind=PeriodKind.ROLLING_12, level=scope.level, key=scope.key
        )
    }
    cards = dashboard.cards(figures)
    rows = [
        (
            card,
            dashboard.cards([rolling[card.figure.code]])[0]
            if card.figure.code in rolling
            else None,
        )
        for card in cards
    ]
    month_warnings = QualityWarning.objects.filter(period_start=month).select_related(
        "indicator", "institution"
    )
    if scope.level == Level.INSTITUTION:
        month_warnings = month_warnings.filter(institution_id=int(scope.key))
    return {
        "scope": scope,
        "month": month,
        "generated_at": timezone.localtime(),
        "trend_months": [f"{m:%m}" for m in periods.last_months(month)],
        "pages": [
            (group, title, [r for r in rows if r[0].group == group])
            for group, title, _cards in dashboard.grouped(cards)
        ],
        "warnings": month_warnings.order_by("kind", "pk"),
    }
