"""Reads of the imaging index for pages, the API and other apps (access checked by the caller)."""

import os
import socket

from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone

from clinical_shell.imaging.models import CaseBuildJob, Instance, Series, SimulationCase, Study


def studies_of_patient(patient_id: int) -> QuerySet[Study]:
    return studies_of_any(Study.objects.filter(patient_id=patient_id)).order_by(
        "-study_date", "-id"
    )


def waiting_studies(institution_ids: list[int]) -> QuerySet[Study]:
    """Studies uploaded at these institutions that wait to be linked to a patient."""
    return (
        Study.objects.filter(patient__isnull=True, uploaded_at_id__in=institution_ids)
        .select_related("uploaded_at")
        .annotate(series_count=Count("series", distinct=True))
        .order_by("-created_at", "-id")
    )


def instances_in_viewing_order(series_id: int) -> QuerySet[Instance]:
    # CT slices by position along the normal, radiographs and the rest by instance number
    return Instance.objects.filter(series_id=series_id).order_by(
        "slice_position_mm", "number", "id"
    )


def study_with_series(study_id: int) -> Study:
    """One study with its series and their instance counts (the caller checked access)."""
    return studies_of_any(Study.objects.filter(pk=study_id)).get()


def studies_of_any(studies: QuerySet[Study]) -> QuerySet[Study]:
    series = Series.objects.annotate(instance_count=Count("instances")).order_by("number", "id")
    return studies.select_related("uploaded_at").prefetch_related(
        Prefetch("series", queryset=series)
    )


def cases_of_patient(patient_id: int) -> QuerySet[SimulationCase]:
    return (
        SimulationCase.objects.filter(patient_id=patient_id)
        .select_related("series", "job")
        .order_by("-created_at", "-id")
    )


def case_builds_of_patient(patient_id: int, *, limit: int = 20) -> QuerySet[CaseBuildJob]:
    return (
        CaseBuildJob.objects.filter(patient_id=patient_id)
        .select_related("series", "requested_by__person")
        .order_by("-requested_at", "-id")[:limit]
    )


def case_build_lost_reason(job: CaseBuildJob, *, stale_seconds: float) -> str:
    """Why a job that has not finished never will ("" while it may): its worker is gone.

    Gone means its process no longer exists on this host, or it has written nothing (no
    heartbeat) for `stale_seconds`; a queued job that no worker ever claimed goes stale too.
    """
    if job.is_finished:
        return ""
    if (
        job.status == CaseBuildJob.Status.RUNNING
        and job.worker_pid is not None
        and job.worker_host == socket.gethostname()
        and not process_exists(job.worker_pid)
    ):
        return (
            f"构建进程（pid {job.worker_pid}）已退出，任务未完成 / the build worker "
            f"(pid {job.worker_pid}) exited before the job finished"
        )
    last = job.heartbeat_at or job.requested_at
    silent_s = (timezone.now() - last).total_seconds()
    if silent_s > stale_seconds:
        minutes = int(silent_s // 60)
        return (
            f"构建进程已 {minutes} 分钟无响应，视为中断 / the build worker has not reported for "
            f"{minutes} min and is presumed dead"
        )
    return ""


def case_build_is_lost(job: CaseBuildJob, *, stale_seconds: float) -> bool:
    """A job not finished whose worker is gone (it will not finish by itself)."""
    return bool(case_build_lost_reason(job, stale_seconds=stale_seconds))


def process_exists(pid: int) -> bool:
    """Whether a process with this id exists on this host (signal 0 checks, sends nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
