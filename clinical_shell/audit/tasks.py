"""Periodic signed checkpoint of the audit chain (Huey, run by `osteon shell worker`)."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from clinical_shell.audit.checkpoints import write_checkpoint


# every 10 minutes: the most history that can be cut from the tail unnoticed
@db_periodic_task(crontab(minute="*/10"))  # type: ignore[untyped-decorator]  # huey is untyped
def audit_checkpoint() -> None:
    write_checkpoint()
