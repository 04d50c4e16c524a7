"""Background jobs: one row per piece of long work, the truth about it (Huey only carries wake-ups).

A job is queued, then claimed by exactly one worker (queued -> running in one conditional
update), and ends done, failed or cancelled. A job whose worker died is put back in line by the
recovery scan; its task writes its output to a temporary sibling and renames it, so running it
again completes it once.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("排队中")
        RUNNING = "running", _("进行中")
        DONE = "done", _("已完成")
        FAILED = "failed", _("失败")
        CANCELLED = "cancelled", _("已取消")

    FINISHED: ClassVar = (Status.DONE, Status.FAILED, Status.CANCELLED)

    # the registered task that runs it (see registry.job_task)
    kind = models.CharField(max_length=64)
    # what the job works on, "<app label>.<model>:<id>": who may see it is decided per kind
    subject = models.CharField(max_length=120)
    payload = models.JSONField(default=dict)
    # heavy jobs count against settings.OSTEON_HEAVY_JOBS_MAX
    heavy = models.BooleanField(default=False)
    estimated_bytes = models.BigIntegerField(null=True, blank=True)
    # the same key twice gives the same job (a double click, a retried request)
    idempotency_key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # 0..1, never decreasing while the job runs
    progress = models.FloatField(default=0.0)
    step = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    # runs started (a worker killed mid-way and a retry after an error both start another)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=1)
    # not claimed before this time (backoff of a retry)
    not_before = models.DateTimeField(null=True, blank=True)
    # set by cancel_job on a running job; the task stops at its next step
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # the worker's last sign of life while running: progress or its heartbeat thread
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker_pid = models.IntegerField(null=True, blank=True)
    # the host the worker runs on: its pid says something only there
    worker_host = models.CharField(max_length=255, blank=True)

    class Meta:
        indexes: ClassVar = [
            models.Index(fields=["status", "heavy", "id"], name="job_line"),
            models.Index(fields=["subject"], name="job_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def topic(self) -> str:
        """The live-page topic its progress is published on."""
        return f"job.{self.pk}"


class ClaimLock(models.Model):
    """One row per lock name; claimers of a heavy slot update it first, which serialises them.

    (A row update takes the write lock on SQLite and a row lock on PostgreSQL: the count of
    running heavy jobs read after it is the one the claim is decided on.)
    """

    name = models.CharField(max_length=32, primary_key=True)
    touched_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name
