"""The accounts app's periodic task: retention of sign-in failures and counters (Huey)."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from clinical_shell.accounts.retention import purge_sign_in_records


@db_periodic_task(crontab(minute="17", hour="3"))  # type: ignore[untyped-decorator]  # huey is untyped
def purge_sign_in_records_daily() -> None:
    purge_sign_in_records()
