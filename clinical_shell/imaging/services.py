"""Importing DICOM uploads (single files or zips), linking studies to patients, building cases.

An upload is not all-or-nothing: each file is checked on its own, so a broken or hostile file is
refused with its reason while the good ones go in (see `import_upload` for how files are grouped
into transactions). A stored file is written to a temporary name, flushed to disk and renamed
into place before its index row commits: an acknowledged instance is on disk, and a refused one
leaves nothing behind.

Building a simulation case from a CT series is a job: `request_case_build` writes the job row and,
after commit, starts a worker process (`case_worker`), which runs `run_case_build`: the case
builder with its progress written to the row, then the case linked to the patient or the error.
"""

import contextlib
import hashlib
import os
import shutil
import socket
import time
import uuid
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError, transaction
from django.utils import timezone

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError
from clinical_shell.imaging import selectors
from clinical_shell.imaging.access import may_add_to_study
from clinical_shell.imaging.dicom_reading import FileRefusedError, ParsedInstance, read_instance
from clinical_shell.imaging.models import CaseBuildJob, Instance, Series, SimulationCase, Study
from clinical_shell.network.models import Institution
from clinical_shell.records import selectors as records
from clinical_shell.records.access import clinical_institution_ids
from clinical_shell.records.identity import ResidentIdError, normalize_resident_id
from clinical_shell.records.models import Patient

# files parsed, hashed and written ahead of the one being indexed, and threads doing it
_PREPARE_AHEAD = 8
_PREPARE_THREADS = 3
# files of one series indexed per transaction after the first (see import_upload)
_BATCH_SIZE = 32


@dataclass
class ImportReport:
    stored: list[dict[str, object]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    # study id -> how it is linked ("patient <id>" or the reason it waits for reconciliation)
    studies: dict[int, dict[str, object]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "stored": self.stored,
            "refused": self.refused,
            "studies": list(self.studies.values()),
        }


def dicom_root() -> Path:
    return Path(settings.OSTEON_DICOM_ROOT)


def instance_path(instance: Instance) -> Path:
    return dicom_root() / instance.relative_path


def expand_upload(name: str, stream: IO[bytes]) -> Iterator[tuple[str, bytes | FileRefusedError]]:
    """One uploaded file -> (display name, bytes) per DICOM candidate; a zip yields its members.

    Zip members are read with bounded sizes (declared and actual): a zip bomb, a nested zip or a
    member with an absolute or `..` path is refused by name, and the other members still go in.
    """
    head = stream.read(4)
    stream.seek(0)
    if head != b"PK\x03\x04":
        yield name, stream.read()
        return
    try:
        archive = zipfile.ZipFile(stream)
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError):
        yield name, FileRefusedError("zip 文件损坏 / damaged zip archive")
        return
    if len(members) > settings.OSTEON_DICOM_ZIP_MAX_ENTRIES:
        yield (
            name,
            FileRefusedError(f"zip 条目过多 / more than {settings.OSTEON_DICOM_ZIP_MAX_ENTRIES}"),
        )
        return
    budget = settings.OSTEON_DICOM_ZIP_MAX_BYTES
    per_file = settings.OSTEON_DICOM_FILE_MAX_BYTES
    for member in members:
        label = f"{name}/{member.filename}"
        parts = member.filename.replace("\\", "/").split("/")
        if member.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            yield label, FileRefusedError("zip 内路径非法 / unsafe path inside the zip")
            continue
        if member.file_size > per_file or member.file_size > budget:
            yield label, FileRefusedError("解压后过大 / member too large when expanded")
            continue
        try:
            with archive.open(member) as handle:
                # read one byte past the declared size: a lying header is caught, not trusted
                data = handle.read(member.file_size + 1)
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
            yield (
                label,
                FileRefusedError(f"zip 条目无法读取 / unreadable member: {type(exc).__name__}"),
            )
            continue
        if len(data) > member.file_size:
            yield label, FileRefusedError("zip 条目大小与声明不符 / member larger than declared")
            continue
        budget -= len(data)
        if data[:4] == b"PK\x03\x04":
            yield label, FileRefusedError("不接受嵌套 zip / nested zip archives are not accepted")
            continue
        yield label, data


def _link_for(
    actor: User, parsed: ParsedInstance, patient: Patient | None
) -> tuple[Patient | None, str, str]:
    """(patient, linked_by, reason it waits) for a new study."""
    if patient is not None:
        return patient, Study.LinkedBy.UPLOADER, ""
    if not parsed.patient_id:
        return None, Study.LinkedBy.NONE, "DICOM 无患者号 / no PatientID in the file"
    try:
        resident_id = normalize_resident_id(parsed.patient_id)
    except ResidentIdError:
        return None, Study.LinkedBy.NONE, "患者号不是身份证号 / PatientID is not a resident ID"
    match = records.patient_by_resident_id(resident_id)
    # link only to a patient the uploader's institutions treat: no linking by guessing IDs
    if match is None or not records.in_care_at(match.pk, clinical_institution_ids(actor)):
        return None, Study.LinkedBy.NONE, "未找到对应患者 / no patient in your care has this ID"
    return match, Study.LinkedBy.RESIDENT_ID, ""


@dataclass
class _Prepared:
    """One candidate file, parsed, hashed and written durably to a temporary name."""

    parsed: ParsedInstance
    digest: str
    size_bytes: int
    temporary: Path


def _incoming_dir() -> Path:
    # on the store's own file system, so moving a file into place is an atomic rename
    incoming = dicom_root() / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    return incoming


def _prepare(data: bytes | FileRefusedError, max_bytes: int) -> _Prepared:
    """Parse, hash and write to `.incoming/` (flushed to disk). Runs in the upload's threads:
    hashing, writing and fsync release the GIL, so they overlap the database work."""
    if isinstance(data, FileRefusedError):
        raise data
    parsed = read_instance(data, max_bytes=max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    temporary = _incoming_dir() / f"{uuid.uuid4().hex}.part"
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return _Prepared(parsed=parsed, digest=digest, size_bytes=len(data), temporary=temporary)


def _prepared_in_order(
    candidates: Iterator[tuple[str, bytes | FileRefusedError]], max_bytes: int
) -> Iterator[tuple[str, "Future[_Prepared]"]]:
    """(name, future) in upload order, at most `_PREPARE_AHEAD` files prepared ahead (a big
    zip is never all in memory)."""
    window: deque[tuple[str, Future[_Prepared]]] = deque()
    with ThreadPoolExecutor(max_workers=_PREPARE_THREADS, thread_name_prefix="dicom") as pool:
        try:
            for name, payload in candidates:
                window.append((name, pool.submit(_prepare, payload, max_bytes)))
                if len(window) >= _PREPARE_AHEAD:
                    yield window.popleft()
            while window:
                yield window.popleft()
        finally:
            # the consumer stopped early (an exception): drop what was prepared but not stored
            for _, future in window:
                with contextlib.suppress(Exception):  # a refused file wrote nothing
                    future.result().temporary.unlink(missing_ok=True)


@dataclass
class _UploadCache:
    """Within one upload: studies the actor was found allowed to add to, and their series.

    Filled only after a file's transaction committed, so nothing rolled back is remembered.
    """

    studies: dict[str, Study] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)


@transaction.atomic
def _store(
    *,
    actor: User,
    institution: Institution,
    patient: Patient | None,
    prepared: _Prepared,
    cache: _UploadCache,
) -> tuple[Instance, bool]:
    """Index one prepared instance and move its file into place; (instance, created)."""
    parsed, digest = prepared.parsed, prepared.digest
    existing = Instance.objects.select_related("series__study").filter(sop_uid=parsed.sop_uid)
    found = existing.first()
    if found is not None:
        if found.sha256 != digest or found.series.series_uid != parsed.series_uid:
            raise FileRefusedError(
                "该 SOP UID 已存在且内容不同 / SOP UID already stored, different data"
            )
        if not may_add_to_study(actor, found.series.study):
            raise FileRefusedError("该检查属于您无权修改的记录 / study belongs to another record")
        return found, False
    study = cache.studies.get(parsed.study_uid)
    if study is None:
        study = Study.objects.select_for_update().filter(study_uid=parsed.study_uid).first()
        if study is None:
            linked, linked_by, why = _link_for(actor, parsed, patient)
            study = Study.objects.create(
                study_uid=parsed.study_uid,
                patient=linked,
                linked_by=linked_by,
                unlinked_reason=why,
                uploaded_at=institution,
                uploaded_by=actor,
                dicom_patient_id=parsed.patient_id,
                dicom_patient_name=parsed.patient_name,
                study_date=parsed.study_date,
                description=parsed.study_description,
            )
        elif not may_add_to_study(actor, study):
            raise FileRefusedError("该检查属于您无权修改的记录 / study belongs to another record")
    if patient is not None and study.patient_id not in (None, patient.pk):
        raise FileRefusedError("该检查已关联其他患者 / study already linked to another patient")
    series = cache.series.get(parsed.series_uid)
    if series is None:
        series = Series.objects.filter(series_uid=parsed.series_uid).first()
    if series is None:
        series = Series.objects.create(
            study=study,
            series_uid=parsed.series_uid,
            modality=parsed.modality,
            number=parsed.series_number,
            description=parsed.series_description,
        )
    elif series.study_id != study.pk:
        raise FileRefusedError("序列 UID 属于另一检查 / series UID belongs to another study")
    instance = _instance_row(series, prepared)
    instance.save(force_insert=True)
    relative = instance.relative_path
    # last: the file is already on disk under its temporary name; if the row cannot commit, the
    # rename leaves at most an unindexed file, which the next upload of the same UID overwrites
    target = dicom_root() / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(prepared.temporary, target)
    instance.series = series
    series.study = study
    return instance, True


def _batchable(parsed: ParsedInstance, cache: _UploadCache, patient: Patient | None) -> bool:
    """Whether this file only adds an instance to a study and series this upload already
    checked (the common case: slice 2..n of a series); the rest take the one-by-one path."""
    study = cache.studies.get(parsed.study_uid)
    series = cache.series.get(parsed.series_uid)
    return (
        study is not None
        and series is not None
        and series.study_id == study.pk
        and (patient is None or study.patient_id in (None, patient.pk))
    )


def _instance_row(series: Series, prepared: _Prepared) -> Instance:
    parsed = prepared.parsed
    return Instance(
        series=series,
        sop_uid=parsed.sop_uid,
        sop_class_uid=parsed.sop_class_uid,
        transfer_syntax_uid=parsed.transfer_syntax_uid,
        number=parsed.instance_number,
        rows=parsed.rows,
        columns=parsed.columns,
        frames=parsed.frames,
        slice_position_mm=parsed.slice_position_mm,
        relative_path=f"{parsed.study_uid}/{parsed.series_uid}/{parsed.sop_uid}.dcm",
        size_bytes=prepared.size_bytes,
        sha256=prepared.digest,
    )


def _store_batch(
    batch: list[tuple[str, _Prepared]], cache: _UploadCache
) -> tuple[list[tuple[str, Instance]], list[tuple[str, _Prepared]]]:
    """Index new instances of known series in one transaction; (stored, left for one-by-one).

    Left over: SOP UIDs already stored or repeated in the batch (their own checks decide), or
    the whole batch if the database refuses it (a race with another upload).
    """
    uids = [prepared.parsed.sop_uid for _, prepared in batch]
    moved: list[tuple[Path, Path]] = []
    try:
        with transaction.atomic():
            existing = set(
                Instance.objects.filter(sop_uid__in=uids).values_list("sop_uid", flat=True)
            )
            fresh: list[tuple[str, _Prepared]] = []
            rest: list[tuple[str, _Prepared]] = []
            for name, prepared in batch:
                uid = prepared.parsed.sop_uid
                if uid in existing:
                    rest.append((name, prepared))
                else:
                    existing.add(uid)
                    fresh.append((name, prepared))
            rows = Instance.objects.bulk_create(
                [_instance_row(cache.series[p.parsed.series_uid], p) for _, p in fresh]
            )
            # files into place before the rows commit (see `_store`)
            for (_, prepared), row in zip(fresh, rows, strict=True):
                target = dicom_root() / row.relative_path
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(prepared.temporary, target)
                moved.append((target, prepared.temporary))
    except DatabaseError:
        for target, temporary in moved:
            os.replace(target, temporary)
        return [], batch
    return [(name, row) for (name, _), row in zip(fresh, rows, strict=True)], rest


def import_upload(
    *,
    actor: User,
    institution: Institution,
    files: Iterable[tuple[str, IO[bytes]]],
    patient: Patient | None = None,
) -> ImportReport:
    """Import uploaded files and zips; a refused file never takes a good one with it.

    Each file is checked, hashed and written (flushed to disk) under a temporary name by a few
    threads, ahead of the database work. The first file of a study or series, and any file whose
    SOP UID is already stored, is indexed in its own transaction (`_store`); the following files
    of a series this upload already checked are indexed in batches (`_store_batch`), so a CT
    series does not pay one commit per slice. Either way a file is renamed into place before
    its row commits.

    Preconditions: the caller checked the actor may upload at `institution` and, when `patient`
    is given, may change that patient's record (`access_patient(write=True)`).
    """
    report = ImportReport()
    per_study: dict[int, int] = {}
    patient_of_study: dict[int, int | None] = {}
    cache = _UploadCache()
    pending: list[tuple[str, _Prepared]] = []

    def stored(name: str, instance: Instance, created: bool) -> None:
        study = instance.series.study
        cache.studies[study.study_uid] = study
        cache.series[instance.series.series_uid] = instance.series
        per_study[study.pk] = per_study.get(study.pk, 0) + int(created)
        patient_of_study[study.pk] = study.patient_id
        report.stored.append(
            {"name": name, "sop_uid": instance.sop_uid, "study_id": study.pk, "new": created}
        )
        report.studies[study.pk] = {
            "id": study.pk,
            "patient_id": study.patient_id,
            "linked_by": str(study.linked_by),
            "unlinked_reason": study.unlinked_reason,
        }

    def store_one(name: str, prepared: _Prepared) -> None:
        try:
            instance, created = _store(
                actor=actor,
                institution=institution,
                patient=patient,
                prepared=prepared,
                cache=cache,
            )
        except FileRefusedError as refusal:
            report.refused.append({"name": name, "reason": refusal.reason})
            return
        finally:
            prepared.temporary.unlink(missing_ok=True)  # moved into place, or refused
        stored(name, instance, created)

    def flush() -> None:
        batch = pending.copy()
        pending.clear()
        if not batch:
            return
        done, rest = _store_batch(batch, cache)
        for name, instance in done:
            stored(name, instance, True)
        for name, prepared in rest:
            store_one(name, prepared)

    candidates = (
        candidate
        for upload_name, stream in files
        for candidate in expand_upload(upload_name, stream)
    )
    try:
        for name, future in _prepared_in_order(candidates, settings.OSTEON_DICOM_FILE_MAX_BYTES):
            try:
                prepared = future.result()
            except FileRefusedError as refusal:
                report.refused.append({"name": name, "reason": refusal.reason})
                continue
            if _batchable(prepared.parsed, cache, patient):
                pending.append((name, prepared))
                if len(pending) >= _BATCH_SIZE:
                    flush()
                continue
            flush()
            store_one(name, prepared)
        flush()
    finally:
        for _, prepared in pending:  # only after an unexpected error
            prepared.temporary.unlink(missing_ok=True)
    for study_id, added in per_study.items():
        audit.record(
            actor=actor,
            action="study.import",
            patient_id=patient_of_study[study_id],
            target=Study(pk=study_id),
            detail={"instances_added": added, "institution": institution.code},
        )
    audit.record(
        actor=actor,
        action="imaging.upload",
        success=not report.refused,
        detail={
            "stored": len(report.stored),
            "refused": [r["name"][:100] for r in report.refused[:50]],
            "studies": sorted(report.studies),
        },
    )
    return report


@transaction.atomic
def link_study(*, actor: User, study: Study, patient: Patient, reason: str) -> Study:
    """Reconcile: link a waiting study to its patient.

    Preconditions: the caller checked `access_study` on the study and
    `access_patient(write=True)` on the patient.
    """
    locked = Study.objects.select_for_update().get(pk=study.pk)
    if locked.patient_id is not None:
        raise DomainError("study_already_linked", "该检查已关联患者 / study is already linked")
    if not reason.strip():
        raise DomainError("reason_required", "请说明核对依据 / a reason is required", status=422)
    locked.patient = patient
    locked.linked_by = Study.LinkedBy.RECONCILED
    locked.unlinked_reason = ""
    locked.save(update_fields=["patient", "linked_by", "unlinked_reason"])
    audit.record(
        actor=actor,
        action="study.link",
        patient_id=patient.pk,
        target=locked,
        reason=reason.strip(),
        detail={"dicom_patient_id": locked.dicom_patient_id},
    )
    return locked


# --- simulation cases -------------------------------------------------------------------------

# the builder's own default and the range it accepts [mm]
DEFAULT_CASE_SPACING_MM = 0.5
CASE_SPACING_RANGE_MM = (0.2, 2.0)
# write progress at most this often [s] (each write is a transaction the pages poll)
_PROGRESS_INTERVAL_S = 0.3
_BUILDABLE_MODALITIES = frozenset({"CT"})


def case_root() -> Path:
    return Path(settings.OSTEON_CASE_ROOT)


@transaction.atomic
def request_case_build(
    *,
    actor: User,
    series: Series,
    spacing_mm: float = DEFAULT_CASE_SPACING_MM,
    run_in_background: bool = True,
    retry_of: CaseBuildJob | None = None,
) -> CaseBuildJob:
    """Queue a case build for a CT series and, after commit, start its worker process.

    Preconditions: the caller checked `access_series(write=True)`. One job at a time per series.
    With run_in_background=False nothing is started: the caller runs `run_case_build` itself
    (the demo loader, which wants its cases built before it returns).
    """
    locked = Series.objects.select_for_update().select_related("study").get(pk=series.pk)
    patient_id = locked.study.patient_id
    if patient_id is None:
        raise DomainError(
            "study_not_linked",
            "该检查尚未关联患者，请先核对 / link the study to its patient first",
        )
    if locked.modality not in _BUILDABLE_MODALITIES:
        raise DomainError(
            "not_ct_series",
            f"只能由 CT 序列构建病例，此序列为 {locked.modality} / only a CT series can become a "
            f"case (this one is {locked.modality})",
            status=422,
        )
    low, high = CASE_SPACING_RANGE_MM
    if not low <= spacing_mm <= high:
        raise DomainError(
            "spacing_out_of_range",
            f"体素间距须在 {low}-{high} mm / voxel spacing must be {low}-{high} mm",
            status=422,
        )
    busy = CaseBuildJob.Status.QUEUED, CaseBuildJob.Status.RUNNING
    if CaseBuildJob.objects.filter(series=locked, status__in=busy).exists():
        raise DomainError(
            "case_build_in_progress",
            "该序列已有正在进行的构建任务 / a build of this series is already under way",
        )
    job = CaseBuildJob.objects.create(
        series=locked,
        patient_id=patient_id,
        requested_by=actor,
        spacing_mm=spacing_mm,
        step="排队中 / queued",
        case_path="",
        retry_of=retry_of,
    )
    # the bundle's place is fixed by the job id: a retried job never overwrites another's case
    job.case_path = str(case_root() / str(job.pk))
    job.save(update_fields=["case_path"])
    audit.record(
        actor=actor,
        action="case.build_request",
        patient_id=patient_id,
        target=job,
        detail={
            "series_id": locked.pk,
            "spacing_mm": spacing_mm,
            **({"retry_of": retry_of.pk} if retry_of is not None else {}),
        },
    )
    if run_in_background:
        from clinical_shell.imaging.case_worker import launch

        job_id = job.pk
        transaction.on_commit(lambda: launch(job_id))
    return job


@transaction.atomic
def retry_case_build(
    *, actor: User, job: CaseBuildJob, run_in_background: bool = True
) -> CaseBuildJob:
    """Queue a new build of a failed job's series, with its spacing; the failed job stays.

    Preconditions: the caller checked `access_case_build(write=True)`. Only a failed job can be
    retried (a done one has its case; a running one may still finish).
    """
    locked = CaseBuildJob.objects.select_for_update().get(pk=job.pk)
    if locked.status != CaseBuildJob.Status.FAILED:
        raise DomainError(
            "case_build_not_failed",
            "只能重试失败的构建任务 / only a failed build can be retried",
        )
    return request_case_build(
        actor=actor,
        series=locked.series,
        spacing_mm=locked.spacing_mm,
        run_in_background=run_in_background,
        retry_of=locked,
    )


def fail_lost_case_build(*, actor: User, job: CaseBuildJob) -> CaseBuildJob:
    """On reading a job: if its worker is gone, mark it failed saying so (audited); return it.

    Two readers may find the same lost job: the update is conditional on the row being as read
    (status and heartbeat), so exactly one of them marks it and writes the audit event. A worker
    that reports in the meantime keeps its job.
    """
    reason = selectors.case_build_lost_reason(
        job, stale_seconds=settings.OSTEON_CASE_BUILD_STALE_SECONDS
    )
    if not reason:
        return job
    error = f"{reason}。请重新构建 / please retry the build."
    with transaction.atomic():
        marked = CaseBuildJob.objects.filter(
            pk=job.pk, status=job.status, heartbeat_at=job.heartbeat_at
        ).update(status=CaseBuildJob.Status.FAILED, error=error, finished_at=timezone.now())
        if marked:
            audit.record(
                actor=actor,
                action="case.build",
                success=False,
                patient_id=job.patient_id,
                target=job,
                detail={"error": error[:500], "why": "worker_lost", "worker_pid": job.worker_pid},
            )
    job.refresh_from_db(fields=["status", "error", "finished_at", "progress", "step", "case"])
    return job


def fail_case_build(*, job_id: int, error: str) -> None:
    """Mark a job that has not finished as failed (worker could not start, or died)."""
    with transaction.atomic():
        job = CaseBuildJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished:
            return
        job.status = CaseBuildJob.Status.FAILED
        job.error = error[:2000]
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        audit.record(
            actor=job.requested_by,
            action="case.build",
            success=False,
            patient_id=job.patient_id,
            target=job,
            detail={"error": error[:500]},
        )


def _claim(job_id: int) -> CaseBuildJob | None:
    # queued -> running exactly once, whoever else was started for the same job
    now = timezone.now()
    claimed = CaseBuildJob.objects.filter(pk=job_id, status=CaseBuildJob.Status.QUEUED).update(
        status=CaseBuildJob.Status.RUNNING,
        started_at=now,
        heartbeat_at=now,
        worker_pid=os.getpid(),
        worker_host=socket.gethostname(),
        step="开始 / starting",
    )
    if not claimed:
        return None
    return CaseBuildJob.objects.select_related("series__study").get(pk=job_id)


class ProgressWriter:
    """The builder's progress callback: writes step and fraction to the job row, throttled.

    The fraction written never decreases (the builder's reading stage restarts its own count).
    """

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.fraction = 0.0
        self.step = ""
        self.written_at = 0.0

    def __call__(self, step: str, fraction: float) -> None:
        fraction = max(self.fraction, min(max(float(fraction), 0.0), 1.0))
        now = time.monotonic()
        changed_step = step != self.step
        self.fraction, self.step = fraction, step
        if not changed_step and now - self.written_at < _PROGRESS_INTERVAL_S:
            return
        self.written_at = now
        CaseBuildJob.objects.filter(pk=self.job_id, status=CaseBuildJob.Status.RUNNING).update(
            progress=fraction, step=step[:200], heartbeat_at=timezone.now()
        )


def _series_link_dir(job: CaseBuildJob, work: Path) -> Path:
    """A directory of links to exactly the series' indexed instances (not stray files)."""
    linked = work / "series"
    linked.mkdir(parents=True)
    for relative in Instance.objects.filter(series_id=job.series_id).values_list(
        "relative_path", flat=True
    ):
        source = dicom_root() / relative
        os.symlink(source, linked / source.name)
    return linked


def _plain_error(exc: Exception, *hidden: Path) -> str:
    """The builder's message for people: server paths replaced by what they name."""
    from sim_core.ct.errors import SeriesError

    if isinstance(exc, SeriesError):
        name = Path(exc.path).name
        text = exc.problem if Path(exc.path).is_dir() else f"{name}: {exc.problem}"
    else:
        text = str(exc)
    for path in hidden:
        text = text.replace(str(path), "序列 / series")
    return text


def run_case_build(job_id: int) -> CaseBuildJob | None:
    """Worker body: build the case of a queued job; None if someone else already claimed it.

    Not atomic as a whole (it runs for seconds to minutes and reports progress as it goes): the
    bundle is written atomically by the builder, and the case row, the job's outcome and their
    audit event commit together at the end. A failure leaves nothing at the job's case path.
    """
    from sim_core.case.build import CaseBuildError, build_case
    from sim_core.ct.errors import SeriesError

    job = _claim(job_id)
    if job is None:
        return None
    out = Path(job.case_path)
    work = case_root() / f".work-{job.pk}"
    try:
        shutil.rmtree(work, ignore_errors=True)
        series_dir = _series_link_dir(job, work)
        result = build_case(
            series_dir,
            out,
            series_uid=job.series.series_uid,
            spacing_mm=job.spacing_mm,
            progress=ProgressWriter(job.pk),
        )
    except (SeriesError, CaseBuildError) as exc:
        shutil.rmtree(out, ignore_errors=True)  # the job's own path: nothing half-written stays
        fail_case_build(job_id=job.pk, error=_plain_error(exc, work / "series", out))
        return CaseBuildJob.objects.get(pk=job.pk)
    except Exception as exc:
        # an unexpected error: the job must still end, with what happened (details in the log)
        shutil.rmtree(out, ignore_errors=True)
        fail_case_build(
            job_id=job.pk,
            error=f"内部错误 / internal error: {type(exc).__name__}: {_plain_error(exc, out)}",
        )
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _finish_case_build(job, result)


@transaction.atomic
def _finish_case_build(job: CaseBuildJob, result: dict[str, object]) -> CaseBuildJob:
    if (
        not CaseBuildJob.objects.select_for_update()
        .filter(pk=job.pk, status=CaseBuildJob.Status.RUNNING)
        .exists()
    ):
        # marked failed as lost while it ran (a stalled worker): its bundle goes, the job stays
        shutil.rmtree(job.case_path, ignore_errors=True)
        return CaseBuildJob.objects.get(pk=job.pk)
    case = SimulationCase.objects.create(
        patient_id=job.patient_id,
        series_id=job.series_id,
        path=job.case_path,
        content_hash=str(result["content_hash"]),
        spacing_mm=job.spacing_mm,
        bones=result["bones"],
        created_by_id=job.requested_by_id,
    )
    job.status = CaseBuildJob.Status.DONE
    job.progress = 1.0
    job.step = "完成 / done"
    job.case = case
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "progress", "step", "case", "finished_at"])
    audit.record(
        actor=job.requested_by,
        action="case.build",
        patient_id=job.patient_id,
        target=case,
        detail={
            "job_id": job.pk,
            "content_hash": case.content_hash,
            "timings_s": result.get("timings_s", {}),
        },
    )
    return job
