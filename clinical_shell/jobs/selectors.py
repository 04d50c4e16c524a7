"""Reads of background jobs for pages, the API and the live topic (access checked by callers)."""

from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils.translation import gettext, gettext_noop

from clinical_shell.jobs import registry
from clinical_shell.jobs.models import Job

# the steps the jobs app itself writes on a job; a kind declares its own (registry.job_task)
GENERAL_STEPS = (
    gettext_noop("排队中"),
    gettext_noop("开始"),
    gettext_noop("完成"),
    gettext_noop("失败"),
    gettext_noop("已取消"),
    gettext_noop("正在取消"),
    gettext_noop("出错，稍后重试"),
    gettext_noop("工作进程中断，重新排队"),
)


def heavy_jobs_max() -> int:
    return max(1, int(settings.OSTEON_HEAVY_JOBS_MAX))


def queued_in_line(*, heavy: bool) -> QuerySet[Job]:
    """Queued jobs of one line (heavy or light), first in line first."""
    return Job.objects.filter(status=Job.Status.QUEUED, heavy=heavy).order_by("id")


def queue_position(job: Job) -> int | None:
    """1 for the next job of its line to start; None once it is no longer waiting."""
    if job.status != Job.Status.QUEUED:
        return None
    return queued_in_line(heavy=job.heavy).filter(id__lt=job.pk).count() + 1


def running_heavy_count() -> int:
    return Job.objects.filter(status=Job.Status.RUNNING, heavy=True).count()


def jobs_of_subject(subject: str) -> QuerySet[Job]:
    return Job.objects.filter(subject=subject).order_by("-id")


def unfinished_jobs() -> QuerySet[Job]:
    return Job.objects.filter(Q(status=Job.Status.QUEUED) | Q(status=Job.Status.RUNNING))


def step_label(step: str) -> str:
    """A stored step (a Chinese msgid) in the active language."""
    return gettext(step) if step else ""


def step_labels() -> dict[str, str]:
    """Every known step in the active language, for a page that shows steps as they arrive."""
    return {step: gettext(step) for step in (*GENERAL_STEPS, *registry.declared_steps())}


def job_state(job: Job, *, position: int | None = None) -> dict[str, Any]:
    """What a page shows of a job, as published on its live topic and read by polling."""
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "status_label": str(job.get_status_display()),
        "progress": round(job.progress, 4),
        "step": job.step,
        "step_label": step_label(job.step),
        "error": job.error,
        "attempts": job.attempts,
        "cancel_requested": job.cancel_requested,
        "queue_position": position if position is not None else queue_position(job),
        "heavy_jobs_max": heavy_jobs_max() if job.heavy else None,
    }
