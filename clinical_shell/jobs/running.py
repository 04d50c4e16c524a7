"""Running jobs in a worker: claim, run the kind's task, report progress, end; the recovery scan.

The Huey queue only carries wake-ups ("look at job 42"); the job row decides. A wake-up for a job
that is not queued, not due yet, or waiting for a heavy slot does nothing (or, for a retry's
backoff, comes back when it is due), so duplicate wake-ups are harmless and recovery may send
them freely. A claim is one conditional update (queued -> running), so a job runs once at a time
whoever else was woken for it; a run whose job was taken from it (recovered, cancelled) can no
longer finish it (`JobContext.complete` checks the attempt it claimed).
"""

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from clinical_shell.audit import services as audit
from clinical_shell.jobs import registry, selectors
from clinical_shell.jobs.models import ClaimLock, Job

logger = logging.getLogger(__name__)

# the worker's sign of life while a task runs [s] (the stale limit is settings-defined, larger)
HEARTBEAT_S = 5.0
# progress written to the row at most this often [s] (each write is a transaction)
PROGRESS_INTERVAL_S = 0.3
# a job whose worker died this many runs in a row is failed, not run again (it may be the cause)
LOST_RUNS_LIMIT = 3
# queued jobs whose position changed are told so, the first this many of the line
POSITIONS_PUBLISHED = 50


class JobCancelledError(Exception):
    """The job was cancelled while it ran; raised at its next step."""


class JobSupersededError(Exception):
    """This run no longer owns its job (recovered after its worker went silent, or cancelled)."""


class JobFailedError(Exception):
    """A task's own failure with a message for people (not retried)."""


@dataclass
class JobContext:
    """What a task gets: its job as claimed, and the way to report progress and finish."""

    job: Job
    fraction: float = 0.0
    step: str = ""
    written_at: float = 0.0
    completed: bool = field(default=False)

    @property
    def job_id(self) -> int:
        return int(self.job.pk)

    @property
    def attempt(self) -> int:
        return int(self.job.attempts)

    @property
    def payload(self) -> dict[str, Any]:
        return dict(self.job.payload)

    def progress(self, step: str, fraction: float) -> None:
        """Report a step; raises JobCancelledError if the job was cancelled (call between steps).

        The fraction shown never decreases; writes are throttled, except when the step changes.
        """
        fraction = max(self.fraction, min(max(float(fraction), 0.0), 1.0))
        now = time.monotonic()
        changed = step != self.step
        self.fraction, self.step = fraction, step
        if not changed and now - self.written_at < PROGRESS_INTERVAL_S:
            return
        self.written_at = now
        report_progress(self.job_id, step, fraction, attempt=self.attempt)

    def complete(self, step: str = "") -> None:
        """Mark the job done. Call inside the transaction that commits the task's result: if the
        job was cancelled or taken from this run meanwhile, this raises and the result rolls back.
        """
        done = Job.objects.filter(
            pk=self.job_id,
            status=Job.Status.RUNNING,
            attempts=self.attempt,
            cancel_requested=False,
        ).update(
            status=Job.Status.DONE,
            progress=1.0,
            step=(step or gettext_noop("完成"))[:200],
            error="",
            finished_at=timezone.now(),
            heartbeat_at=timezone.now(),
        )
        if not done:
            _raise_why_not_running(self.job_id, self.attempt)
        self.completed = True


def _raise_why_not_running(job_id: int, attempt: int) -> None:
    row = Job.objects.filter(pk=job_id).values("status", "attempts", "cancel_requested").first()
    if (
        row is not None
        and row["status"] == Job.Status.RUNNING
        and row["attempts"] == attempt
        and row["cancel_requested"]
    ):
        raise JobCancelledError()
    raise JobSupersededError()


def report_progress(job_id: int, step: str, fraction: float, *, attempt: int | None = None) -> None:
    """Write a running job's step and fraction (0..1) and publish it (JobCancelledError: stop)."""
    running = Job.objects.filter(pk=job_id, status=Job.Status.RUNNING, cancel_requested=False)
    if attempt is not None:
        running = running.filter(attempts=attempt)
    written = running.update(
        progress=min(max(float(fraction), 0.0), 1.0),
        step=step[:200],
        heartbeat_at=timezone.now(),
    )
    if not written:
        _raise_why_not_running(job_id, attempt if attempt is not None else -1)
    publish_job(job_id)


# --- live topic ---------------------------------------------------------------------------------


def publish_job(job_id: int, *, position: int | None = None) -> None:
    """Send the job's state to its live topic (best effort: pages also poll)."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return
    _publish(job.topic, selectors.job_state(job, position=position))


def publish_positions(*, heavy: bool) -> None:
    """Tell the jobs waiting in one line their position (it moved: one started, ended or left)."""
    for position, job in enumerate(
        selectors.queued_in_line(heavy=heavy)[:POSITIONS_PUBLISHED], start=1
    ):
        _publish(job.topic, selectors.job_state(job, position=position))


def _publish(topic: str, event: dict[str, Any]) -> None:
    from clinical_shell.realtime.events import publish

    try:
        publish(topic, event)
    except Exception:
        # the channel layer (Redis) may be down: the job goes on, the page polls
        logger.warning("live event on %s not sent", topic, exc_info=True)


# --- claiming and running -----------------------------------------------------------------------


def _eligible(now: datetime) -> Q:
    return Q(not_before__isnull=True) | Q(not_before__lte=now)


def claim(job_id: int) -> tuple[Job | None, datetime | None]:
    """(the job, now running in this worker, None) or (None, when to look again or None).

    A heavy job starts only when fewer than OSTEON_HEAVY_JOBS_MAX heavy jobs run and no heavy
    job due earlier waits ahead of it (first in line, first served); otherwise it waits, and
    the end of a heavy job wakes the next (see `wake_next_heavy`).
    """
    with transaction.atomic():
        job = Job.objects.filter(pk=job_id).first()
        if job is None or job.status != Job.Status.QUEUED:
            return None, None
        if job.heavy:
            _lock("heavy")
        # read after the lock: a run that ended before this claim ended before its start time
        now = timezone.now()
        if job.not_before is not None and job.not_before > now:
            return None, job.not_before
        if job.heavy:
            running = selectors.running_heavy_count()
            ahead = (
                selectors.queued_in_line(heavy=True).filter(_eligible(now), id__lt=job.pk).count()
            )
            if running + ahead >= selectors.heavy_jobs_max():
                return None, None
        claimed = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
            status=Job.Status.RUNNING,
            attempts=F("attempts") + 1,
            progress=0.0,
            step=gettext_noop("开始"),
            started_at=now,
            heartbeat_at=now,
            worker_pid=os.getpid(),
            worker_host=socket.gethostname(),
        )
        if not claimed:
            return None, None
    return Job.objects.get(pk=job_id), None


def _lock(name: str) -> None:
    """Serialise claimers on `name` until this transaction ends (see ClaimLock)."""
    if not ClaimLock.objects.filter(name=name).update(touched_at=timezone.now()):
        ClaimLock.objects.get_or_create(name=name)
        ClaimLock.objects.filter(name=name).update(touched_at=timezone.now())


def run_job(job_id: int) -> None:
    """A wake-up for `job_id` (the Huey task body): claim it and run its task to an end."""
    from clinical_shell.jobs.tasks import wake

    kind_name = Job.objects.filter(pk=job_id).values_list("kind", flat=True).first()
    if kind_name is None:
        return
    if kind_name not in registry.kinds():
        # a worker of another version: leave the job to one that knows its kind
        logger.error("job %s: kind %r unknown to this worker, not claimed", job_id, kind_name)
        return
    job, look_again_at = claim(job_id)
    if job is None:
        if look_again_at is not None:
            wake(job_id, at=look_again_at)
        return
    kind = registry.kind(job.kind)
    context = JobContext(job=job)
    heartbeat = _Heartbeat(job.pk, job.attempts)
    heartbeat.start()
    publish_job(job.pk)
    if job.heavy:
        publish_positions(heavy=True)
    try:
        kind.run(context)
        if not context.completed:
            with transaction.atomic():
                context.complete()
    except JobCancelledError:
        _end(job, Job.Status.CANCELLED, step=gettext_noop("已取消"))
    except JobSupersededError:
        logger.info("job %s: run %s superseded, its result dropped", job.pk, job.attempts)
    except JobFailedError as exc:
        _end(job, Job.Status.FAILED, error=str(exc))
    except Exception as exc:
        if isinstance(exc, kind.retry_on) and job.attempts < job.max_attempts:
            _retry_later(job, exc, delay_s=kind.retry_backoff_s * 2 ** (job.attempts - 1))
        else:
            logger.exception("job %s (%s) failed", job.pk, job.kind)
            _end(job, Job.Status.FAILED, error=_internal_error(exc))
    finally:
        heartbeat.stop()
        publish_job(job.pk)
        if job.heavy:
            publish_positions(heavy=True)
            wake_next_heavy()


def _internal_error(exc: BaseException) -> str:
    what = _("内部错误")
    return f"{what}: {type(exc).__name__}: {exc}"[:2000]


def _end(job: Job, status: str, *, step: str = "", error: str = "") -> bool:
    """End a run's job (failed or cancelled) with its kind's end hook, if the run still owns it."""
    kind = registry.kind(job.kind)
    with transaction.atomic():
        ended = Job.objects.filter(
            pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts
        ).update(
            status=status,
            step=(step or (gettext_noop("失败") if status == Job.Status.FAILED else ""))[:200],
            error=error[:2000],
            finished_at=timezone.now(),
        )
        if not ended:
            return False
        job.refresh_from_db()
        audit.record(
            actor=job.created_by,
            action="job.end",
            success=status != Job.Status.FAILED,
            target=job,
            detail={"kind": job.kind, "status": status, "error": error[:500]},
        )
        if kind.on_end is not None:
            kind.on_end(job)
    return True


def _retry_later(job: Job, exc: BaseException, *, delay_s: float) -> None:
    from clinical_shell.jobs.tasks import wake

    due = timezone.now() + timedelta(seconds=delay_s)
    error = _internal_error(exc)
    with transaction.atomic():
        queued = Job.objects.filter(
            pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts, cancel_requested=False
        ).update(
            status=Job.Status.QUEUED,
            not_before=due,
            error=error,
            step=gettext_noop("出错，稍后重试"),
            worker_pid=None,
            worker_host="",
        )
        if not queued:
            return
        audit.record(
            actor=job.created_by,
            action="job.retry",
            success=False,
            target=job,
            detail={"kind": job.kind, "attempt": job.attempts, "error": error[:500]},
        )
        job_id = job.pk
        transaction.on_commit(lambda: wake(job_id, at=due))


def wake_next_heavy() -> None:
    """Wake the heavy jobs first in line, as many as there are free slots."""
    from clinical_shell.jobs.tasks import wake

    free = selectors.heavy_jobs_max() - selectors.running_heavy_count()
    if free <= 0:
        return
    line = selectors.queued_in_line(heavy=True).filter(_eligible(timezone.now()))
    for job_id in line.values_list("id", flat=True)[:free]:
        wake(job_id)


class _Heartbeat:
    """A thread that keeps a running job's heartbeat fresh while its task works."""

    def __init__(self, job_id: int, attempt: int) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"job-{job_id}-heartbeat")
        self.thread.daemon = True

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=HEARTBEAT_S * 2)

    def _beat(self) -> None:
        try:
            while not self.stopped.wait(HEARTBEAT_S):
                Job.objects.filter(
                    pk=self.job_id, status=Job.Status.RUNNING, attempts=self.attempt
                ).update(heartbeat_at=timezone.now())
        except Exception:
            logger.warning("job %s: heartbeat stopped", self.job_id, exc_info=True)
        finally:
            connections.close_all()  # this thread's own connection


# --- recovery -----------------------------------------------------------------------------------


def process_exists(pid: int) -> bool:
    """Whether a process with this id exists on this host (signal 0 checks, sends nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def lost_reason(job: Job, *, now: datetime | None = None) -> str:
    """Why a running job's worker is gone ("" while it may still be working)."""
    if job.status != Job.Status.RUNNING:
        return ""
    if (
        job.worker_pid is not None
        and job.worker_host == socket.gethostname()
        and not process_exists(job.worker_pid)
    ):
        return _("工作进程（pid %(pid)d）已退出") % {"pid": job.worker_pid}
    last = job.heartbeat_at or job.started_at or job.created_at
    silent_s = ((now or timezone.now()) - last).total_seconds()
    if silent_s > settings.OSTEON_JOB_STALE_SECONDS:
        return _("工作进程已 %(seconds)d 秒无响应") % {"seconds": int(silent_s)}
    return ""


def recover_jobs() -> list[int]:
    """Put back in line every running job whose worker is gone; wake every queued job.

    Run when a worker starts and every minute by the worker's scheduler. A job that lost its
    worker LOST_RUNS_LIMIT times, or was being cancelled, ends instead (its kind's end hook
    removes what the dead run left). Returns the ids of the jobs recovered or ended.
    """
    from clinical_shell.jobs.tasks import wake

    touched: list[int] = []
    for job in Job.objects.filter(status=Job.Status.RUNNING).order_by("id"):
        reason = lost_reason(job)
        if reason and _recover(job, reason):
            touched.append(job.pk)
    now = timezone.now()
    for job_id, not_before in (
        selectors.unfinished_jobs()
        .filter(status=Job.Status.QUEUED)
        .order_by("id")
        .values_list("id", "not_before")
    ):
        wake(job_id, at=not_before if not_before is not None and not_before > now else None)
    return touched


def _recover(job: Job, reason: str) -> bool:
    kind = registry.kind(job.kind)
    with transaction.atomic():
        still = Job.objects.filter(
            pk=job.pk,
            status=Job.Status.RUNNING,
            attempts=job.attempts,
            heartbeat_at=job.heartbeat_at,
        )
        if job.cancel_requested or job.attempts >= LOST_RUNS_LIMIT:
            status = Job.Status.CANCELLED if job.cancel_requested else Job.Status.FAILED
            error = (
                ""
                if job.cancel_requested
                else _("%(reason)s，已中断 %(count)d 次，不再重试")
                % {"reason": reason, "count": job.attempts}
            )
            if not still.update(status=status, error=error, finished_at=timezone.now()):
                return False
            job.refresh_from_db()
            if kind.on_end is not None:
                kind.on_end(job)
        else:
            status = Job.Status.QUEUED
            if not still.update(
                status=status,
                step=gettext_noop("工作进程中断，重新排队"),
                worker_pid=None,
                worker_host="",
            ):
                return False
        audit.record(
            actor=None,
            action="job.recover",
            success=status != Job.Status.FAILED,
            target=job,
            detail={"kind": job.kind, "reason": reason, "attempts": job.attempts, "to": status},
        )
    return True
