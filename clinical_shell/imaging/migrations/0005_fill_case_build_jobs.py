# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
# data: each existing build gets its job row, with the status, progress and error it had

from typing import Any

from django.db import migrations

# a build left queued or running by the old worker process has no worker to finish it now
_UNFINISHED = ("queued", "running")
_LOST = "构建进程已不存在（系统升级），请重新构建 / the old build worker is gone, please retry"


def fill_jobs(apps: Any, schema_editor: Any) -> None:
    build_model = apps.get_model("imaging", "CaseBuildJob")
    job_model = apps.get_model("jobs", "Job")
    for build in build_model.objects.filter(job__isnull=True).order_by("id"):
        unfinished = build.status in _UNFINISHED
        build.job = job_model.objects.create(
            kind="case_build",
            subject=f"imaging.casebuildjob:{build.pk}",
            payload={"case_build_id": build.pk},
            heavy=True,
            idempotency_key=f"case_build:{build.pk}",
            status="failed" if unfinished else build.status,
            progress=build.progress,
            step=build.step,
            error=_LOST if unfinished else build.error,
            attempts=1 if build.started_at else 0,
            created_by_id=build.requested_by_id,
            started_at=build.started_at,
            finished_at=build.finished_at or (build.heartbeat_at if unfinished else None),
            heartbeat_at=build.heartbeat_at,
            worker_pid=build.worker_pid,
            worker_host=build.worker_host,
        )
        build.save(update_fields=["job"])


def empty_jobs(apps: Any, schema_editor: Any) -> None:
    build_model = apps.get_model("imaging", "CaseBuildJob")
    job_model = apps.get_model("jobs", "Job")
    for build in build_model.objects.filter(job__isnull=False).select_related("job"):
        job = build.job
        build.status = job.status if job.status != "cancelled" else "failed"
        build.progress, build.step, build.error = job.progress, job.step, job.error
        build.started_at, build.finished_at = job.started_at, job.finished_at
        build.heartbeat_at, build.worker_pid = job.heartbeat_at, job.worker_pid
        build.worker_host = job.worker_host
        build.job = None
        build.save()
        job_model.objects.filter(pk=job.pk).delete()


class Migration(migrations.Migration):
    dependencies = [("imaging", "0004_case_build_job_link")]

    operations = [migrations.RunPython(fill_jobs, empty_jobs)]
