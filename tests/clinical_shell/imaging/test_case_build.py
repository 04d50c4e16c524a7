""" "Build simulation case" on a CT series: a job run by a separate worker process.

The series is a real CT phantom (sim_core) uploaded through the import service; the worker is the
real subprocess, on the test database. Success, a broken series and every persona's rights.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging import services
from clinical_shell.imaging.models import CaseBuildJob, Series, SimulationCase
from clinical_shell.records.models import Patient
from sim_core.case.bundle import load_bundle
from sim_core.ct.phantom import make_phantom, write_phantom

BUILD_TIMEOUT_S = 60
# persona -> may start a build for the 双柏 patient (needs a record-writing role in their care)
MAY_BUILD = {
    "township_doctor": True,
    "county_surgeon": True,
    "radiologist": False,
    "center_surgeon": False,
    "outsider": False,
    "committee_member": False,
    "quality_manager": False,
    "admin": False,
}


@pytest.fixture(scope="session")
def phantom_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A small lumbar CT phantom: 40 slices of 256 x 256 (written once per test run)."""
    out = tmp_path_factory.mktemp("phantom") / "lumbar"
    return write_phantom(make_phantom("lumbar", seed=1, slices=40, matrix=256), out)


@pytest.fixture
def stores(settings: object, tmp_path: Path) -> Iterator[Path]:
    settings.OSTEON_DICOM_ROOT = tmp_path / "dicom"  # type: ignore[attr-defined]
    settings.OSTEON_CASE_ROOT = tmp_path / "cases"  # type: ignore[attr-defined]
    yield tmp_path / "cases"


def upload(files: list[Path], *, network: Network, personas: Personas, patient: Patient) -> Series:
    handles = [(f.name, f.open("rb")) for f in files]
    try:
        report = services.import_upload(
            actor=personas.county_surgeon,
            institution=network.shuangbai,
            files=handles,  # type: ignore[arg-type]
            patient=patient,
        )
    finally:
        for _, handle in handles:
            handle.close()
    assert not report.refused and len(report.stored) == len(files)
    return Series.objects.get(series_uid=_series_uid(files[0]))


def _series_uid(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)


def wait_for(client: Client, job_id: int) -> dict[str, object]:
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    seen: list[str] = []
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/imaging/case-builds/{job_id}").json()
        seen.append(str(body["status"]))
        if body["status"] in ("done", "failed"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"case build {job_id} did not finish in {BUILD_TIMEOUT_S} s: {seen[-3:]}")


@pytest.mark.django_db(transaction=True)
def test_a_ct_series_becomes_a_case_linked_to_the_patient(
    stores: Path,
    phantom_files: list[Path],
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    series = upload(
        phantom_files, network=shell_network, personas=personas, patient=patient_in_shuangbai
    )
    client = signed_in_client(personas.county_surgeon)
    created = client.post(
        f"/api/v1/imaging/series/{series.pk}/case-builds",
        data={"spacing_mm": 0.5},
        content_type="application/json",
    )
    assert created.status_code == 202, created.content
    job = created.json()
    assert job["status"] == "queued" and job["patient_id"] == patient_in_shuangbai.pk

    done = wait_for(client, int(job["id"]))
    assert done["status"] == "done", done["error"]
    assert done["progress"] == 1.0 and done["error"] == "" and not done["lost"]
    case = SimulationCase.objects.get()
    assert case.patient_id == patient_in_shuangbai.pk and case.series_id == series.pk
    assert done["case_id"] == case.pk and done["content_hash"] == case.content_hash
    assert Path(case.path) == stores / str(job["id"])
    # the bundle loads (and verifies its own hash) and is the patient's lumbar spine
    bundle = load_bundle(case.path)
    assert bundle.content_hash == case.content_hash
    assert len(case.bones) >= 1
    row = CaseBuildJob.objects.get()
    assert row.started_at is not None and row.finished_at is not None
    assert row.worker_pid is not None  # ran in its own process
    actions = set(
        AuditEvent.objects.filter(patient_id=patient_in_shuangbai.pk).values_list(
            "action", "outcome"
        )
    )
    assert {("case.build_request", "success"), ("case.build", "success")} <= actions

    # the API lists it with the patient's studies; the pages show it
    cases = client.get(f"/api/v1/imaging/cases?patient_id={patient_in_shuangbai.pk}").json()
    assert cases["count"] == 1 and cases["items"][0]["content_hash"] == case.content_hash
    studies = client.get(f"/api/v1/imaging/studies?patient_id={patient_in_shuangbai.pk}").json()
    assert studies["items"][0]["series"][0]["instance_count"] == len(phantom_files)
    page = client.get(f"/imaging/patients/{patient_in_shuangbai.pk}/").content.decode()
    assert case.content_hash[:19] in page
    job_page = client.get(f"/imaging/case-builds/{job['id']}/").content.decode()
    assert case.content_hash in job_page


@pytest.mark.django_db(transaction=True)
def test_a_broken_series_fails_with_the_reason_and_leaves_nothing(
    stores: Path,
    phantom_files: list[Path],
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    # a slice missing in the middle: the indexed series is no longer a regular volume
    files = sorted(phantom_files)
    series = upload(
        files[:20] + files[21:],
        network=shell_network,
        personas=personas,
        patient=patient_in_shuangbai,
    )
    client = signed_in_client(personas.county_surgeon)
    created = client.post(f"/imaging/series/{series.pk}/build-case/")
    assert created.status_code == 302
    job = CaseBuildJob.objects.get()
    assert created["Location"] == f"/imaging/case-builds/{job.pk}/"

    failed = wait_for(client, job.pk)
    assert failed["status"] == "failed"
    assert "missing slice" in str(failed["error"]) and "缺少" in str(failed["error"])
    assert str(stores) not in str(failed["error"])  # no server paths in what people read
    assert not Path(job.case_path).exists()
    assert not SimulationCase.objects.exists()
    assert [p.name for p in stores.iterdir()] == ["logs"]  # no work directory left behind
    assert AuditEvent.objects.filter(action="case.build", outcome="failure").count() == 1
    page = client.get(f"/imaging/case-builds/{job.pk}/").content.decode()
    assert "missing slice" in page


@pytest.mark.parametrize("persona", sorted(MAY_BUILD))
def test_only_those_who_may_change_the_record_may_build(
    stores: Path,
    phantom_files: list[Path],
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
    persona: str,
) -> None:
    series = upload(
        phantom_files[:3], network=shell_network, personas=personas, patient=patient_in_shuangbai
    )
    user = personas.all()[persona]
    client = signed_in_client(user)
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    response = client.post(
        f"/api/v1/imaging/series/{series.pk}/case-builds", data={}, content_type="application/json"
    )
    events = AuditEvent.objects.filter(id__gt=before, actor_user_id=user.pk)
    if MAY_BUILD[persona]:
        # (no worker here: without a real commit, on_commit never starts one)
        assert response.status_code == 202
        job = CaseBuildJob.objects.get()
        assert job.requested_by_id == user.pk and job.status == "queued"
        assert events.filter(action="case.build_request", outcome="success").exists()
        status = client.get(f"/api/v1/imaging/case-builds/{job.pk}")
        assert status.status_code == 200 and status.json()["status"] == "queued"
        # one job per series at a time
        again = client.post(
            f"/api/v1/imaging/series/{series.pk}/case-builds",
            data={},
            content_type="application/json",
        )
        assert again.status_code == 409 and again.json()["code"] == "case_build_in_progress"
    else:
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
        assert not CaseBuildJob.objects.exists()
        assert events.filter(action="patient.write", outcome="failure").exists()
        assert client.get(f"/imaging/series/{series.pk}/build-case/").status_code == 403


def test_outsiders_cannot_read_a_job_or_a_patients_cases(
    stores: Path,
    phantom_files: list[Path],
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    series = upload(
        phantom_files[:3], network=shell_network, personas=personas, patient=patient_in_shuangbai
    )
    job = services.request_case_build(actor=personas.county_surgeon, series=series)
    outsider = signed_in_client(personas.outsider)
    for url in (
        f"/api/v1/imaging/case-builds/{job.pk}",
        f"/api/v1/imaging/cases?patient_id={patient_in_shuangbai.pk}",
        f"/api/v1/imaging/studies?patient_id={patient_in_shuangbai.pk}",
        f"/api/v1/imaging/studies/{series.study_id}",
        f"/imaging/case-builds/{job.pk}/",
    ):
        assert outsider.get(url).status_code == 403, url
    assert outsider.get("/api/v1/imaging/case-builds/999999").status_code == 404


def test_a_case_needs_a_linked_ct_series(
    stores: Path,
    phantom_files: list[Path],
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    series = upload(
        phantom_files[:3], network=shell_network, personas=personas, patient=patient_in_shuangbai
    )
    Series.objects.filter(pk=series.pk).update(modality="CR")
    client = signed_in_client(personas.county_surgeon)
    response = client.post(
        f"/api/v1/imaging/series/{series.pk}/case-builds", data={}, content_type="application/json"
    )
    assert response.status_code == 422 and response.json()["code"] == "not_ct_series"
    too_fine = client.post(
        f"/api/v1/imaging/series/{series.pk}/case-builds",
        data={"spacing_mm": 0.05},
        content_type="application/json",
    )
    assert too_fine.status_code == 422
    assert not CaseBuildJob.objects.exists()


def test_study_list_pins_its_query_count(
    stores: Path,
    phantom_files: list[Path],
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
    django_assert_max_num_queries: Callable[[int], object],
) -> None:
    upload(
        phantom_files[:3], network=shell_network, personas=personas, patient=patient_in_shuangbai
    )
    client = signed_in_client(personas.county_surgeon)
    url = f"/api/v1/imaging/studies?patient_id={patient_in_shuangbai.pk}"
    client.get(url)
    with django_assert_max_num_queries(16):  # type: ignore[operator]
        body = client.get(url).json()
    assert body["count"] == 1 and body["items"][0]["series"][0]["modality"] == "CT"


# --- a lost worker, and retrying a failed build ---------------------------------------------


@pytest.fixture(scope="session")
def small_phantom_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A smaller lumbar phantom (16 slices of 128 x 128): a build in-process takes ~1 s."""
    out = tmp_path_factory.mktemp("small-phantom") / "lumbar"
    return write_phantom(make_phantom("lumbar", seed=2, slices=16, matrix=128), out)


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def running_job(series: Series, personas: Personas, **fields: object) -> CaseBuildJob:
    """A job as its worker left it while running (no worker is started: nothing commits)."""
    job = services.request_case_build(actor=personas.county_surgeon, series=series)
    now = timezone.now()
    values: dict[str, object] = {
        "status": CaseBuildJob.Status.RUNNING,
        "started_at": now,
        "heartbeat_at": now,
        "worker_pid": os.getpid(),
        "worker_host": socket.gethostname(),
        "progress": 0.4,
        "step": "segmenting",
        **fields,
    }
    CaseBuildJob.objects.filter(pk=job.pk).update(**values)
    return CaseBuildJob.objects.get(pk=job.pk)


def test_a_job_whose_worker_died_is_marked_failed_when_read(
    stores: Path,
    phantom_files: list[Path],
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    series = upload(
        phantom_files[:3], network=shell_network, personas=personas, patient=patient_in_shuangbai
    )
    job = running_job(series, personas, worker_pid=dead_pid())
    client = signed_in_client(personas.county_surgeon)
    body = client.get(f"/api/v1/imaging/case-builds/{job.pk}").json()
    assert body["status"] == "failed" and not body["lost"]
    assert "已退出" in body["error"] and "exited" in body["error"]
    assert f"pid {job.worker_pid}" in body["error"]
    row = CaseBuildJob.objects.get(pk=job.pk)
    assert row.finished_at is not None and row.progress == 0.4  # how far it got stays
    # the page reads it failed too, without marking it again; it offers the retry
    page = client.get(f"/imaging/case-builds/{job.pk}/").content.decode()
    assert "exited" in page and 'id="retry-build"' in page
    lost = AuditEvent.objects.filter(action="case.build", outcome="failure")
    assert lost.count() == 1
    event = lost.get()
    assert event.detail["why"] == "worker_lost" and event.patient_id == patient_in_shuangbai.pk
    assert event.actor_user_id == personas.county_surgeon.pk
    # one who may read but not change the record sees the failure, not the button
    radiologist = signed_in_client(personas.radiologist)
    page = radiologist.get(f"/imaging/case-builds/{job.pk}/").content.decode()
    assert "exited" in page and 'id="retry-build"' not in page


def test_a_silent_worker_goes_stale_and_two_readers_mark_it_once(
    stores: Path,
    phantom_files: list[Path],
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    settings: object,
) -> None:
    series = upload(
        phantom_files[:3], network=shell_network, personas=personas, patient=patient_in_shuangbai
    )
    settings.OSTEON_CASE_BUILD_STALE_SECONDS = 60  # type: ignore[attr-defined]
    # alive and reporting: left alone
    job = running_job(series, personas)
    assert services.fail_lost_case_build(actor=personas.county_surgeon, job=job).status == "running"
    # alive (this process) but silent for longer than the stale setting: lost
    old = timezone.now() - timedelta(minutes=5)
    CaseBuildJob.objects.filter(pk=job.pk).update(heartbeat_at=old)
    first = CaseBuildJob.objects.get(pk=job.pk)
    second = CaseBuildJob.objects.get(pk=job.pk)
    one = services.fail_lost_case_build(actor=personas.county_surgeon, job=first)
    other = services.fail_lost_case_build(actor=personas.township_doctor, job=second)
    assert one.status == other.status == "failed"
    assert "无响应" in one.error and "5 min" in one.error and one.error == other.error
    assert AuditEvent.objects.filter(action="case.build", outcome="failure").count() == 1


def test_retrying_a_failed_build_queues_a_new_job_that_completes(
    stores: Path,
    small_phantom_files: list[Path],
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    series = upload(
        small_phantom_files,
        network=shell_network,
        personas=personas,
        patient=patient_in_shuangbai,
    )
    job = running_job(series, personas, worker_pid=dead_pid(), spacing_mm=1.0)
    client = signed_in_client(personas.county_surgeon)
    assert client.get(f"/api/v1/imaging/case-builds/{job.pk}").json()["status"] == "failed"

    response = client.post(f"/api/v1/imaging/case-builds/{job.pk}/retry")
    assert response.status_code == 202, response.content
    retry = response.json()
    assert retry["status"] == "queued" and retry["id"] != job.pk
    assert retry["series_id"] == series.pk and retry["spacing_mm"] == 1.0
    assert CaseBuildJob.objects.get(pk=retry["id"]).retry_of_id == job.pk
    assert AuditEvent.objects.filter(
        action="case.build_request",
        detail__retry_of=job.pk,
        actor_user_id=personas.county_surgeon.pk,
    ).exists()
    # (no commit, so no worker process: run it here, as the demo loader does)
    finished = services.run_case_build(int(retry["id"]))
    assert finished is not None and finished.status == "done", finished and finished.error
    done = client.get(f"/api/v1/imaging/case-builds/{retry['id']}").json()
    assert done["status"] == "done" and done["case_id"] == SimulationCase.objects.get().pk
    assert Path(done["case_path"]) == stores / str(retry["id"])
    # the failed job stays failed, and says where it was retried
    assert CaseBuildJob.objects.get(pk=job.pk).status == "failed"
    page = client.get(f"/imaging/case-builds/{job.pk}/").content.decode()
    assert f"/imaging/case-builds/{retry['id']}/" in page
    # only a failed job is retried
    again = client.post(f"/api/v1/imaging/case-builds/{retry['id']}/retry")
    assert again.status_code == 409 and again.json()["code"] == "case_build_not_failed"


def test_only_those_who_may_change_the_record_may_retry(
    stores: Path,
    phantom_files: list[Path],
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    series = upload(
        phantom_files[:3], network=shell_network, personas=personas, patient=patient_in_shuangbai
    )
    job = running_job(series, personas)
    services.fail_case_build(job_id=job.pk, error="test failure")
    for persona in ("outsider", "radiologist", "center_surgeon"):
        user = personas.all()[persona]
        client = signed_in_client(user)
        assert client.post(f"/api/v1/imaging/case-builds/{job.pk}/retry").status_code == 403
        assert client.get(f"/imaging/case-builds/{job.pk}/retry/").status_code == 403
        assert client.post(f"/imaging/case-builds/{job.pk}/retry/").status_code == 403
        assert AuditEvent.objects.filter(
            actor_user_id=user.pk, action="patient.write", outcome="failure"
        ).exists()
    assert CaseBuildJob.objects.count() == 1
    # the confirmation page, then the new job's page
    client = signed_in_client(personas.township_doctor)
    confirm = client.get(f"/imaging/case-builds/{job.pk}/retry/")
    assert confirm.status_code == 200 and 'id="confirm-retry"' in confirm.content.decode()
    created = client.post(f"/imaging/case-builds/{job.pk}/retry/")
    new_job = CaseBuildJob.objects.exclude(pk=job.pk).get()
    assert created.status_code == 302
    assert created["Location"] == f"/imaging/case-builds/{new_job.pk}/"
    assert new_job.retry_of_id == job.pk and new_job.requested_by_id == personas.township_doctor.pk
    # while the new job runs, the failed one cannot be retried a second time
    twice = client.post(f"/api/v1/imaging/case-builds/{job.pk}/retry")
    assert twice.status_code == 409 and twice.json()["code"] == "case_build_in_progress"
