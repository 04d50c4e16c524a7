"""Imaging's background jobs: building a simulation case from a CT series (heavy)."""

from django.contrib.auth.models import AnonymousUser, User
from django.db import DatabaseError

from clinical_shell.errors import DomainError
from clinical_shell.imaging.access import access_case_build
from clinical_shell.imaging.case_builds import BUILD_STEPS, case_build_task, end_case_build
from clinical_shell.jobs.models import Job
from clinical_shell.jobs.registry import job_task


def may_view_case_build(user: User | AnonymousUser, job: Job) -> bool:
    """Whoever may read the patient's record may watch the build (the read is audited)."""
    build_id = job.payload.get("case_build_id")
    if not isinstance(build_id, int):
        return False
    try:
        access_case_build(user, build_id, reason="watch case build")
    except DomainError:
        return False
    return True


# an I/O or database error leaves nothing behind (the task removes its leftovers first), so
# the build is run again after a pause; a series the builder refuses is not
job_task(
    "case_build",
    heavy=True,
    retries=2,
    retry_backoff_s=2.0,
    retry_on=(OSError, DatabaseError),
    can_view=may_view_case_build,
    on_end=end_case_build,
    steps=BUILD_STEPS,
)(case_build_task)
