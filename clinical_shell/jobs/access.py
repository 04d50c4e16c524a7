"""Who may watch a job: whoever may see its subject, as its kind declares (see registry)."""

from django.contrib.auth.models import AnonymousUser, User

from clinical_shell.jobs import registry
from clinical_shell.jobs.models import Job


def may_view_job(user: User | AnonymousUser, job: Job) -> bool:
    if not user.is_authenticated:
        return False
    try:
        rule = registry.kind(job.kind).can_view
    except LookupError:
        return False  # a kind this process does not know: nobody
    return rule(user, job)


def can_subscribe(user: User, topic: str) -> bool:
    """The live-topic rule for "job.<id>": the job exists and the user may see its subject."""
    prefix, _, raw_id = topic.partition(".")
    if prefix != "job" or not raw_id.isdigit():
        return False
    job = Job.objects.filter(pk=int(raw_id)).first()
    return job is not None and may_view_job(user, job)
