"""Background work of the quality app: recomputation jobs (one month, after new facts, and
nightly for the current and the previous month) and the escalation of overdue warnings."""

from datetime import date
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from clinical_shell.jobs.registry import job_task
from clinical_shell.jobs.running import JobContext
from clinical_shell.quality import periods, services, warnings

RECOMPUTE = "quality.recompute"


@job_task(RECOMPUTE, steps=("重算质控指标",))
def recompute(context: JobContext) -> None:
    """Recompute every indicator for the payload's month (and its rolling 12 months)."""
    context.progress(_("重算质控指标"), 0.1)
    services.recompute_month(date.fromisoformat(str(context.payload["month"])))


@db_periodic_task(crontab(minute="23", hour="2"))  # type: ignore[untyped-decorator]  # huey is untyped
def recompute_recent_months(*args: Any) -> None:
    this_month = periods.month_start(timezone.localdate())
    for month in (periods.add_months(this_month, -1), this_month):
        services.recompute_month(month)


@db_periodic_task(crontab(minute="*/15"))  # type: ignore[untyped-decorator]  # huey is untyped
def escalate_overdue_warnings(*args: Any) -> None:
    warnings.escalate_overdue()


def schedule_recompute(month: date) -> None:
    """Ask the worker to recompute one month (a fact of that month was recorded)."""
    from clinical_shell.jobs.services import enqueue

    month = periods.month_start(month)
    enqueue(
        actor=None,
        kind=RECOMPUTE,
        subject=f"quality {month:%Y-%m}",
        payload={"month": month.isoformat()},
    )
