"""Writes on background jobs: put one in line, cancel one. Every change audited.

The job row is written in the caller's transaction; the task queue is told after commit (a
rolled-back request queues nothing, and a wake-up never names a row that does not exist).
"""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError
from clinical_shell.jobs import registry
from clinical_shell.jobs.models import Job


def memory_limit_bytes() -> int:
    return int(settings.OSTEON_JOB_MEMORY_LIMIT_BYTES)


def check_memory(estimated_bytes: int | None) -> None:
    """Refuse up front a job that would need more memory than one job may use."""
    limit = memory_limit_bytes()
    if estimated_bytes is not None and estimated_bytes > limit:
        raise DomainError(
            "job_too_large",
            _(
                "该任务预计需要 %(need).1f GiB 内存，超过单个任务的上限 %(limit).1f GiB。"
                "请使用更粗的体素间距，或请管理员调整 OSTEON_JOB_MEMORY_LIMIT_BYTES。"
            )
            % {"need": estimated_bytes / 2**30, "limit": limit / 2**30},
            status=422,
        )


@transaction.atomic
def enqueue(
    *,
    actor: User | None,
    kind: str,
    subject: str,
    payload: dict[str, Any],
    heavy: bool | None = None,
    estimated_bytes: int | None = None,
    idempotency_key: str | None = None,
    wake: bool = True,
) -> Job:
    """Put a job of a registered kind in line; the worker is woken after commit.

    `heavy` defaults to what the kind declares. A job over the memory limit is refused
    (`DomainError` "job_too_large"). The same `idempotency_key` twice returns the first job.
    With wake=False no worker is told: the caller runs it (`running.run_job`) in its process.
    """
    declared = registry.kind(kind)
    is_heavy = declared.heavy if heavy is None else heavy
    if idempotency_key is not None:
        existing = Job.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    check_memory(estimated_bytes)
    job = Job.objects.create(
        kind=kind,
        subject=subject,
        payload=payload,
        heavy=is_heavy,
        estimated_bytes=estimated_bytes,
        idempotency_key=idempotency_key,
        max_attempts=1 + declared.retries,
        created_by=actor,
        step=gettext_noop("排队中"),
    )
    audit.record(
        actor=actor,
        action="job.enqueue",
        target=job,
        detail={
            "kind": kind,
            "subject": subject,
            "heavy": is_heavy,
            "estimated_bytes": estimated_bytes,
        },
    )
    if wake:
        from clinical_shell.jobs import tasks

        job_id = job.pk
        transaction.on_commit(lambda: tasks.wake(job_id))
    return job


@transaction.atomic
def cancel_job(*, actor: User, job: Job, reason: str = "") -> Job:
    """Cancel a job that has not finished.

    A queued job is cancelled at once; a running one is asked to stop and is cancelled by its
    worker at its next step, after removing what it had started to write. Preconditions: the
    caller checked the actor may change the job's subject.
    """
    locked = Job.objects.select_for_update().get(pk=job.pk)
    if locked.is_finished:
        raise DomainError("job_finished", _("任务已结束，无法取消"))
    if locked.status == Job.Status.QUEUED:
        locked.status = Job.Status.CANCELLED
        locked.step = gettext_noop("已取消")
        locked.finished_at = timezone.now()
        locked.save(update_fields=["status", "step", "finished_at"])
    else:
        locked.cancel_requested = True
        locked.step = gettext_noop("正在取消")
        locked.save(update_fields=["cancel_requested", "step"])
    audit.record(
        actor=actor,
        action="job.cancel",
        target=locked,
        reason=reason,
        detail={"kind": locked.kind, "subject": locked.subject, "was": job.status},
    )
    from clinical_shell.jobs.running import publish_job, publish_positions

    job_id, heavy = locked.pk, locked.heavy
    transaction.on_commit(lambda: publish_job(job_id))
    transaction.on_commit(lambda: publish_positions(heavy=heavy))
    return locked
