""" "Build simulation case" on a CT series: a background job run by the worker process.

The series is a real CT phantom (sim_core) uploaded through the import service; the worker is the
real `osteon shell worker` subprocess (the Huey consumer), on the test database. Success, a broken
series and every persona's rights. (Kill -9, the heavy-job limit, cancel and automatic retries:
tests/clinical_shell/jobs/.)
"""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from huey.contrib.djhuey import HUEY
from shell_personas import Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging import services
from clinical_shell.imaging.models import CaseBuildJob, Series, SimulationCase
from clinical_shell.jobs.models import Job
from clinical_shell.jobs.services import cancel_job
from clinical_shell.jobs.worker import start_worker
from clinical_shell.records.models import Patient
from sim_core.case.bundle import load_bundle
from sim_core.ct.phantom import make_phantom, write_phantom

BUILD_TIMEOUT_S = 60
# persona -> may start a build for the 双柏 patient (needs a record-writing role in their care)
# the series is uploaded at the county hospital: the township registered the patient, but a
# study belongs to the institution that uploaded it (records.access.RecordScope)
MAY_BUILD = {
    "township_doctor": False,
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


@pytest.fixture
def worker(stores: Path, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker process (Huey consumer) on this test's database and task storage."""
    HUEY.flush()  # no wake-up left over from another test
    with open(tmp_path / "worker.log", "wb") as log:
        process = start_worker(workers=2, output=log)
        yield process
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


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
        if body["status"] in ("done", "failed", "cancelled"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"case build {job_id} did not finish in {BUILD_TIMEOUT_S} s: {seen[-3:]}")


def worker_log(tmp_path: Path) -> str:
    return (tmp_path / "worker.log").read_text(errors="replace")[-3000:]


@pytest.mark.django_db(transaction=True)
def test_a_ct_series_becomes_a_case_linked_to_the_patient(
    stores: Path,
    worker: subprocess.Popen[bytes],
    tmp_path: Path,
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
    assert done["status"] == "done", (done["error"], worker_log(tmp_path))
    assert done["progress"] == 1.0 and done["error"] == "" and done["attempts"] == 1
    case = SimulationCase.objects.get()
    assert case.patient_id == patient_in_shuangbai.pk and case.series_id == series.pk
    assert done["case_id"] == case.pk and done["content_hash"] == case.content_hash
    assert Path(case.path) == stores / str(job["id"])
    # the bundle loads (and verifies its own hash) and is the patient's lumbar spine
    bundle = load_bundle(case.path)
    assert bundle.content_hash == case.content_hash
    assert len(case.bones) >= 1
    row = Job.objects.get()
    assert row.kind == "case_build" and row.heavy and row.status == "done"
    assert row.started_at is not None and row.finished_at is not None
    assert row.worker_pid == worker.pid  # ran in the worker process
    assert CaseBuildJob.objects.get().job_id == row.pk
    assert row.estimated_bytes is not None and row.estimated_bytes > 0
    actions = set(
        AuditEvent.objects.filter(patient_id=patient_in_shuangbai.pk).values_list(
            "action", "outcome"
        )
    )
    assert {("case.build_request", "success"), ("case.build", "success")} <= actions
    assert AuditEvent.objects.filter(action="job.enqueue", target_id=str(row.pk)).exists()

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
    worker: subprocess.Popen[bytes],
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
    assert failed["attempts"] == 1  # the builder's refusal is not retried
    assert "missing slice" in str(failed["error"]) and "缺少" in str(failed["error"])
    assert str(stores) not in str(failed["error"])  # no server paths in what people read
    assert not Path(job.case_path).exists()
    assert not SimulationCase.objects.exists()
    assert list(stores.iterdir()) == []  # no work directory left behind
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
        # (no worker here: without a real commit, on_commit never wakes one)
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
        # refused by the records rule, or (the township in care) as not its study to change
        refused = events.filter(action__in=["patient.write", "study.write"], outcome="failure")
        assert refused.exists()
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


# --- a lost worker, cancelling, and retrying a failed build --------------------------------


@pytest.fixture(scope="session")
def small_phantom_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A smaller lumbar phantom (16 slices of 128 x 128): a build in-process takes ~1 s."""
    out = tmp_path_factory.mktemp("small-phantom") / "lumbar"
    return write_phantom(make_phantom("lumbar", seed=2, slices=16, matrix=128), out)


def dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def running_build(
    series: Series, personas: Personas, *, spacing_mm: float = 0.5, **fields: object
) -> CaseBuildJob:
    """A build as a worker left it while running (no worker is woken: nothing commits)."""
    build = services.request_case_build(
        actor=personas.county_surgeon, series=series, spacing_mm=spacing_mm
    )
    values: dict[str, object] = {
        "status": Job.Status.RUNNING,
        "attempts": 1,
        "worker_pid": dead_pid(),
        "worker_host": os.uname().nodename,
        "progress": 0.4,
        "step": "segmenting",
        **fields,
    }
    Job.objects.filter(pk=build.job_id).update(**values)
    return CaseBuildJob.objects.select_related("job").get(pk=build.pk)


def test_a_build_whose_worker_died_is_put_back_in_line_once(
    stores: Path,
    phantom_files: list[Path],
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
) -> None:
    from clinical_shell.jobs.running import LOST_RUNS_LIMIT, recover_jobs

    series = upload(
        phantom_files[:3], network=shell_network, personas=personas, patient=patient_in_shuangbai
    )
    build = running_build(series, personas)
    # what the dead run left: a half-written bundle directory and the builder's temporary sibling
    out = Path(build.case_path)
    (out.parent / f".{out.name}.tmp1").mkdir(parents=True)
    assert recover_jobs() == [build.job_id]
    assert recover_jobs() == []  # found once: the second scan sees it queued
    job = Job.objects.get(pk=build.job_id)
    assert job.status == "queued" and job.worker_pid is None and job.attempts == 1
    assert AuditEvent.objects.filter(action="job.recover", target_id=str(job.pk)).count() == 1
    client = signed_in_client(personas.county_surgeon)
    body = client.get(f"/api/v1/imaging/case-builds/{build.pk}").json()
    assert body["status"] == "queued" and body["queue_position"] == 1

    # a build that killed its worker LOST_RUNS_LIMIT times fails, and its leftovers go
    Job.objects.filter(pk=job.pk).update(
        status="running",
        attempts=LOST_RUNS_LIMIT,
        worker_pid=dead_pid(),
        worker_host=os.uname().nodename,
    )
    assert recover_jobs() == [job.pk]
    job.refresh_from_db()
    assert job.status == "failed" and "已中断" in job.error
    assert not (out.parent / f".{out.name}.tmp1").exists()
    failure = AuditEvent.objects.get(action="case.build", outcome="failure")
    assert failure.patient_id == patient_in_shuangbai.pk
    page = client.get(f"/imaging/case-builds/{build.pk}/").content.decode()
    assert "已中断" in page and 'id="retry-build"' in page
    # one who may read but not change the record sees the failure, not the button
    radiologist = signed_in_client(personas.radiologist)
    page = radiologist.get(f"/imaging/case-builds/{build.pk}/").content.decode()
    assert "已中断" in page and 'id="retry-build"' not in page


def test_a_queued_build_is_cancelled_at_once_after_confirmation(
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
    build = services.request_case_build(actor=personas.county_surgeon, series=series)
    radiologist = signed_in_client(personas.radiologist)
    assert radiologist.post(f"/imaging/case-builds/{build.pk}/cancel/").status_code == 403
    assert radiologist.post(f"/api/v1/imaging/case-builds/{build.pk}/cancel").status_code == 403
    client = signed_in_client(personas.county_surgeon)
    page = client.get(f"/imaging/case-builds/{build.pk}/").content.decode()
    assert 'id="cancel-build"' in page and "排队位置" in page and ">排队中<" in page
    english = client.get(f"/imaging/case-builds/{build.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    text = english.content.decode()
    assert "Place in line" in text and ">Queued<" in text and "排队" not in text
    confirm = client.get(f"/imaging/case-builds/{build.pk}/cancel/")
    assert confirm.status_code == 200 and 'id="confirm-cancel"' in confirm.content.decode()
    assert Job.objects.get(pk=build.job_id).status == "queued"  # the GET changed nothing
    done = client.post(f"/imaging/case-builds/{build.pk}/cancel/", {"reason": "wrong series"})
    assert done.status_code == 302 and done["Location"] == f"/imaging/case-builds/{build.pk}/"
    job = Job.objects.get(pk=build.job_id)
    assert job.status == "cancelled" and job.finished_at is not None
    assert AuditEvent.objects.filter(
        action="case.build_cancel_request",
        patient_id=patient_in_shuangbai.pk,
        actor_user_id=personas.county_surgeon.pk,
        reason="wrong series",
    ).exists()
    assert AuditEvent.objects.filter(action="job.cancel", target_id=str(job.pk)).exists()
    again = client.post(f"/api/v1/imaging/case-builds/{build.pk}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "job_finished"
    # a cancelled build may be built again
    retry = client.post(f"/api/v1/imaging/case-builds/{build.pk}/retry")
    assert retry.status_code == 202 and retry.json()["status"] == "queued"


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
    build = running_build(series, personas, spacing_mm=1.0)
    Job.objects.filter(pk=build.job_id).update(status="failed", error="worker lost")
    client = signed_in_client(personas.county_surgeon)
    assert client.get(f"/api/v1/imaging/case-builds/{build.pk}").json()["status"] == "failed"

    response = client.post(f"/api/v1/imaging/case-builds/{build.pk}/retry")
    assert response.status_code == 202, response.content
    retry = response.json()
    assert retry["status"] == "queued" and retry["id"] != build.pk
    assert retry["series_id"] == series.pk and retry["spacing_mm"] == 1.0
    assert CaseBuildJob.objects.get(pk=retry["id"]).retry_of_id == build.pk
    assert AuditEvent.objects.filter(
        action="case.build_request",
        detail__retry_of=build.pk,
        actor_user_id=personas.county_surgeon.pk,
    ).exists()
    # (no commit, so no worker is woken: run it here, as the demo loader does)
    finished = services.run_case_build(int(retry["id"]))
    assert finished.status == "done", finished.job and finished.job.error
    done = client.get(f"/api/v1/imaging/case-builds/{retry['id']}").json()
    assert done["status"] == "done" and done["case_id"] == SimulationCase.objects.get().pk
    assert Path(CaseBuildJob.objects.get(pk=retry["id"]).case_path) == stores / str(retry["id"])
    assert "case_path" not in done  # no server file paths in API answers
    # the failed build stays failed, and says where it was retried
    assert CaseBuildJob.objects.get(pk=build.pk).status == "failed"
    page = client.get(f"/imaging/case-builds/{build.pk}/").content.decode()
    assert f"/imaging/case-builds/{retry['id']}/" in page
    # only a failed build is retried, and a finished one is not cancelled
    again = client.post(f"/api/v1/imaging/case-builds/{retry['id']}/retry")
    assert again.status_code == 409 and again.json()["code"] == "case_build_not_failed"
    cancel = client.post(f"/api/v1/imaging/case-builds/{retry['id']}/cancel")
    assert cancel.status_code == 409 and cancel.json()["code"] == "job_finished"


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
    build = services.request_case_build(actor=personas.county_surgeon, series=series)
    assert build.job is not None
    cancel_job(actor=personas.county_surgeon, job=build.job)
    for persona in ("outsider", "radiologist", "center_surgeon"):
        user = personas.all()[persona]
        client = signed_in_client(user)
        assert client.post(f"/api/v1/imaging/case-builds/{build.pk}/retry").status_code == 403
        assert client.get(f"/imaging/case-builds/{build.pk}/retry/").status_code == 403
        assert client.post(f"/imaging/case-builds/{build.pk}/retry/").status_code == 403
        assert AuditEvent.objects.filter(
            actor_user_id=user.pk, action="patient.write", outcome="failure"
        ).exists()
    assert CaseBuildJob.objects.count() == 1
    # the confirmation page, then the new build's page
    client = signed_in_client(personas.county_surgeon)
    confirm = client.get(f"/imaging/case-builds/{build.pk}/retry/")
    assert confirm.status_code == 200 and 'id="confirm-retry"' in confirm.content.decode()
    created = client.post(f"/imaging/case-builds/{build.pk}/retry/")
    new_build = CaseBuildJob.objects.exclude(pk=build.pk).get()
    assert created.status_code == 302
    assert created["Location"] == f"/imaging/case-builds/{new_build.pk}/"
    assert new_build.retry_of_id == build.pk
    assert new_build.requested_by_id == personas.county_surgeon.pk
    # while the new build waits, the old one cannot be retried a second time
    twice = client.post(f"/api/v1/imaging/case-builds/{build.pk}/retry")
    assert twice.status_code == 409 and twice.json()["code"] == "case_build_in_progress"


def test_a_build_too_large_for_the_memory_limit_is_refused_up_front(
    stores: Path,
    phantom_files: list[Path],
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Callable[[User], Client],
    settings: object,
) -> None:
    series = upload(
        phantom_files, network=shell_network, personas=personas, patient=patient_in_shuangbai
    )
    # 40 slices of 256 x 256 at 0.5 mm: about 0.3 GiB for the whole field of view
    settings.OSTEON_JOB_MEMORY_LIMIT_BYTES = 64 * 2**20  # type: ignore[attr-defined]
    client = signed_in_client(personas.county_surgeon)
    refused = client.post(
        f"/api/v1/imaging/series/{series.pk}/case-builds",
        data={"spacing_mm": 0.5},
        content_type="application/json",
    )
    assert refused.status_code == 422 and refused.json()["code"] == "job_too_large"
    assert "GiB" in refused.json()["detail"]
    assert not CaseBuildJob.objects.exists() and not Job.objects.exists()
    page = client.post(f"/imaging/series/{series.pk}/build-case/")
    assert page.status_code == 422 and "GiB" in page.content.decode()
    # a coarser spacing fits
    coarse = client.post(
        f"/api/v1/imaging/series/{series.pk}/case-builds",
        data={"spacing_mm": 2.0},
        content_type="application/json",
    )
    assert coarse.status_code == 202, coarse.content
    assert coarse.json()["estimated_bytes"] < 64 * 2**20
