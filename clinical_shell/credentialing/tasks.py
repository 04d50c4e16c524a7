"""Background work of credentialing: the daily re-credentialing reminder."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from clinical_shell.credentialing import services


@db_periodic_task(crontab(hour="7", minute="0"))  # type: ignore[untyped-decorator]  # huey is untyped
def remind_expiring_privileges() -> None:
    """Every morning: surgeons whose privilege expires in 60, 30 or 7 days are told (and the
    chair of the committee that granted it)."""
    services.remind_expiring_privileges()
