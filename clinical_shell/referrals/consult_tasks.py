"""Periodic work of teleconsultation: escalate requests past their time limit (imported by the
app's `tasks` module, which huey discovers)."""

from typing import Any

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from clinical_shell.referrals.consult_services import escalate_overdue


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]  # huey is untyped
def escalate_overdue_consultations(*args: Any) -> None:
    escalate_overdue()
