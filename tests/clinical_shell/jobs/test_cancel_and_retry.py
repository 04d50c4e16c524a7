"""Cancelling a running case build, and a build retried after a pause when an I/O error hit it."""

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from job_helpers import build_status, wait_until, worker_log
from shell_personas import Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging.models import SimulationCase
from clinical_shell.jobs.models import Job
from clinical_shell.records.models import Patient


def request_build(client: Client, series: object, spacing_mm: float) -> tuple[int, int]:
    created = client.post(
        f"/api/v1/imaging/series/{series.pk}/case-builds",  # type: ignore[attr-defined]
        data={"spacing_mm": spacing_mm},
        content_type="application/json",
    )
    assert created.status_code == 202, created.content
    return int(created.json()["id"]), int(created.json()["job_id"])


@pytest.mark.django_db(transaction=True)
def test_a_running_build_is_cancelled_at_its_next_step_and_leaves_nothing(
    stores: Path,
    slow_phantom: list[Path],
    small_phantoms: list[list[Path]],
    upload: Callable[[list[Path]], object],
    worker: Callable[..., object],
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
    tmp_path: Path,
) -> None:
    series = upload(slow_phantom)
    client = signed_in_client(personas.county_surgeon)
    worker()
    build_id, job_id = request_build(client, series, 0.5)
    wait_until(
        "the build runs",
        lambda: Job.objects.filter(pk=job_id, status="running", progress__gte=0.3).exists(),
    )
    response = client.post(f"/api/v1/imaging/case-builds/{build_id}/cancel")
    assert response.status_code == 202, response.content
    assert response.json()["cancel_requested"] is True
    wait_until(
        "the build stops", lambda: Job.objects.filter(pk=job_id, status="cancelled").exists()
    )
    assert build_status(client, build_id)["status"] == "cancelled"
    # nothing kept: no case, no bundle, no work directory, no temporary sibling
    assert not SimulationCase.objects.exists()
    wait_until("the store is empty", lambda: not stores.exists() or not any(stores.iterdir()))
    cancelled = AuditEvent.objects.filter(
        action="case.build_cancel", patient_id=patient_in_shuangbai.pk
    )
    assert cancelled.count() == 1
    assert AuditEvent.objects.filter(
        action="job.cancel", actor_user_id=personas.county_surgeon.pk, target_id=str(job_id)
    ).exists()
    # its heavy slot is free again: the next build runs and completes
    next_series = upload(small_phantoms[0])
    _, next_job = request_build(client, next_series, 1.0)
    wait_until("the next build ends", lambda: Job.objects.get(pk=next_job).is_finished)
    assert Job.objects.get(pk=next_job).status == "done", worker_log(tmp_path)


@pytest.mark.django_db(transaction=True)
def test_an_io_error_is_retried_after_a_pause_and_the_build_completes(
    stores: Path,
    small_phantoms: list[list[Path]],
    upload: Callable[[list[Path]], object],
    worker: Callable[..., object],
    personas: Personas,
    signed_in_client: Callable[[User], Client],
    tmp_path: Path,
) -> None:
    series = upload(small_phantoms[1])
    # the case store is not usable yet (a file where its directory belongs): writing fails
    stores.write_text("not a directory")
    client = signed_in_client(personas.county_surgeon)
    worker()
    build_id, job_id = request_build(client, series, 1.0)
    wait_until(
        "the first run fails and the job waits to be retried",
        lambda: (
            Job.objects.filter(pk=job_id, status="queued", attempts=1).exclude(error="").exists()
        ),
    )
    job = Job.objects.get(pk=job_id)
    assert job.not_before is not None and "Error" in job.error
    body = build_status(client, build_id)
    assert body["status"] == "queued" and body["attempts"] == 1
    assert AuditEvent.objects.filter(action="job.retry", target_id=str(job_id)).count() == 1
    # the store is back before the pause ends: the second run completes
    stores.unlink()
    wait_until("the build ends", lambda: Job.objects.get(pk=job_id).is_finished)
    job.refresh_from_db()
    assert job.status == "done", (job.error, worker_log(tmp_path))
    assert job.attempts == 2 and job.error == ""
    assert SimulationCase.objects.count() == 1
    assert sorted(p.name for p in stores.iterdir()) == [str(build_id)]


@pytest.mark.django_db(transaction=True)
def test_a_build_failing_every_time_ends_failed_after_its_retries(
    stores: Path,
    small_phantoms: list[list[Path]],
    upload: Callable[[list[Path]], object],
    worker: Callable[..., object],
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
    settings: object,
) -> None:
    from clinical_shell.jobs import registry

    series = upload(small_phantoms[2])
    stores.write_text("not a directory")
    client = signed_in_client(personas.county_surgeon)
    worker()
    build_id, job_id = request_build(client, series, 1.0)
    wait_until("the build ends", lambda: Job.objects.get(pk=job_id).is_finished)
    job = Job.objects.get(pk=job_id)
    assert job.status == "failed" and job.attempts == 1 + registry.kind("case_build").retries
    assert "Error" in job.error
    assert AuditEvent.objects.filter(action="job.retry", target_id=str(job_id)).count() == 2
    failure = AuditEvent.objects.get(action="case.build", outcome="failure")
    assert failure.patient_id == patient_in_shuangbai.pk
    assert build_status(client, build_id)["status"] == "failed"
