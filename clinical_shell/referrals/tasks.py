"""Periodic work of referrals: escalate answers that are overdue."""

from typing import Any

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from clinical_shell.referrals.services import escalate_overdue


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]  # huey is untyped
def escalate_overdue_referrals(*args: Any) -> None:
    escalate_overdue()


# teleconsultation's periodic escalation, registered with huey through this module
from clinical_shell.referrals.consult_tasks import escalate_overdue_consultations  # noqa: E402, F401
