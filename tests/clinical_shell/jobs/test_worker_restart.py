"""Kill -9 the worker during a case build, start it again: the build completes once."""

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from job_helpers import build_status, wait_until, worker_log
from shell_personas import Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging.models import CaseBuildJob, SimulationCase
from clinical_shell.jobs.models import Job
from clinical_shell.records.models import Patient
from sim_core.case.bundle import load_bundle


@pytest.mark.django_db(transaction=True)
def test_a_build_whose_worker_is_killed_completes_once_after_restart(
    stores: Path,
    slow_phantom: list[Path],
    upload: Callable[[list[Path]], object],
    worker: Callable[..., object],
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
    tmp_path: Path,
) -> None:
    series = upload(slow_phantom)
    client = signed_in_client(personas.county_surgeon)
    first = worker()
    created = client.post(
        f"/api/v1/imaging/series/{series.pk}/case-builds",  # type: ignore[attr-defined]
        data={"spacing_mm": 0.5},
        content_type="application/json",
    )
    assert created.status_code == 202, created.content
    build_id, job_id = int(created.json()["id"]), int(created.json()["job_id"])

    # kill the worker mid-way: the series read, the bone being segmented
    wait_until(
        "the build is segmenting",
        lambda: Job.objects.filter(pk=job_id, status="running", progress__gte=0.5).exists(),
    )
    os.killpg(first.pid, signal.SIGKILL)  # type: ignore[attr-defined]
    first.wait(timeout=10)  # type: ignore[attr-defined]
    job = Job.objects.get(pk=job_id)
    assert job.status == "running" and job.attempts == 1 and job.worker_pid == first.pid  # type: ignore[attr-defined]
    assert not SimulationCase.objects.exists()

    # a new worker finds the dead one's job at start and runs it again, from nothing
    second = worker()
    wait_until(
        "the build ends",
        lambda: Job.objects.filter(pk=job_id, status__in=["done", "failed"]).exists(),
    )
    job.refresh_from_db()
    assert job.status == "done", (job.error, worker_log(tmp_path))
    assert job.attempts == 2 and job.worker_pid == second.pid  # type: ignore[attr-defined]
    # exactly one case and one bundle; nothing half-written beside it
    case = SimulationCase.objects.get()
    assert CaseBuildJob.objects.get(pk=build_id).case_id == case.pk
    assert sorted(p.name for p in stores.iterdir()) == [str(build_id)]
    assert load_bundle(case.path).content_hash == case.content_hash
    # the audit trail: one recovery of the job, one built case on the patient's record
    recovered = AuditEvent.objects.filter(action="job.recover", target_id=str(job_id))
    assert recovered.count() == 1
    assert f"pid {first.pid}" in recovered.get().detail["reason"]  # type: ignore[attr-defined]
    built = AuditEvent.objects.filter(action="case.build", patient_id=patient_in_shuangbai.pk)
    assert list(built.values_list("outcome", flat=True)) == ["success"]
    assert built.get().detail["attempt"] == 2
    body = build_status(client, build_id)
    assert body["status"] == "done" and body["attempts"] == 2 and body["case_id"] == case.pk
