"""Months as the unit of indicator periods, in the network's time zone (Asia/Shanghai)."""

from datetime import date, datetime, time

from django.utils import timezone

from clinical_shell.quality.indicators.engine import Span


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _at_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_default_timezone())


def month_window(month: date) -> Span:
    return Span(_at_midnight(month), _at_midnight(add_months(month, 1)))


def rolling12_window(last_month: date) -> Span:
    """The 12 months ending with (and including) `last_month`."""
    return Span(_at_midnight(add_months(last_month, -11)), _at_midnight(add_months(last_month, 1)))


def last_months(month: date, count: int = 12) -> list[date]:
    return [add_months(month, -i) for i in range(count - 1, -1, -1)]
