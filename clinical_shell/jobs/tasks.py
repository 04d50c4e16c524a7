"""The Huey tasks of the jobs app: the wake-up that runs a job, and the minute's recovery scan.

Huey stores the wake-ups (SQLite file by default, Redis at scale); results are not kept (a job's
outcome is its row). Huey's own retries are not used: a retry is decided on the row, where the
page and the next worker see it (see running.run_job).
"""

from datetime import datetime

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from clinical_shell.jobs import running


@db_task()  # type: ignore[untyped-decorator]  # huey is untyped
def run_job(job_id: int) -> None:
    running.run_job(job_id)


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]
def recover_lost_jobs() -> None:
    running.recover_jobs()


def wake(job_id: int, *, at: datetime | None = None) -> None:
    """Ask a worker to look at `job_id` now, or at `at`."""
    if at is None:
        run_job(job_id)
        return
    delay_s = max(0.0, (at - timezone.now()).total_seconds())
    run_job.schedule(args=(job_id,), delay=delay_s)
