"""Importing DICOM uploads (single files or zips) into the index and the file store.

An upload is not all-or-nothing: each file is checked on its own, so a broken or hostile file is
refused with its reason while the good ones go in (see `import_upload` for how files are grouped
into transactions). A stored file is written to a temporary name, flushed to disk and renamed
into place before its index row commits: an acknowledged instance is on disk, and a refused one
leaves nothing behind.
"""

import contextlib
import hashlib
import os
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
from django.utils.translation import gettext_noop

from clinical_shell.audit import services as audit
from clinical_shell.imaging.access import may_add_to_study
from clinical_shell.imaging.dicom_reading import FileRefusedError, ParsedInstance, read_instance
from clinical_shell.imaging.models import Instance, Series, Study
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
        # one file is read whole for parsing: never past the per-file limit (the request-wide
        # limit is enforced earlier, while the upload streams to disk: clinical_shell.upload_limits)
        per_file = settings.OSTEON_DICOM_FILE_MAX_BYTES
        stream.seek(0, os.SEEK_END)
        too_big = stream.tell() > per_file
        stream.seek(0)
        data = b"" if too_big else stream.read(per_file + 1)
        if too_big or len(data) > per_file:
            yield (
                name,
                FileRefusedError(gettext_noop("文件超过 %(limit)s MiB"), limit=per_file // 2**20),
            )
            return
        yield name, data
        return
    try:
        archive = zipfile.ZipFile(stream)
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError):
        yield name, FileRefusedError(gettext_noop("zip 文件损坏"))
        return
    if len(members) > settings.OSTEON_DICOM_ZIP_MAX_ENTRIES:
        yield (
            name,
            FileRefusedError(
                gettext_noop("zip 条目过多(上限 %(limit)s 个)"),
                limit=settings.OSTEON_DICOM_ZIP_MAX_ENTRIES,
            ),
        )
        return
    budget = settings.OSTEON_DICOM_ZIP_MAX_BYTES
    per_file = settings.OSTEON_DICOM_FILE_MAX_BYTES
    for member in members:
        label = f"{name}/{member.filename}"
        parts = member.filename.replace("\\", "/").split("/")
        if member.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            yield label, FileRefusedError(gettext_noop("zip 内路径非法"))
            continue
        if member.file_size > per_file or member.file_size > budget:
            yield label, FileRefusedError(gettext_noop("zip 条目解压后过大"))
            continue
        try:
            with archive.open(member) as handle:
                # read one byte past the declared size: a lying header is caught, not trusted
                data = handle.read(member.file_size + 1)
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
            yield (
                label,
                FileRefusedError(
                    gettext_noop("zip 条目无法读取：%(error)s"), error=type(exc).__name__
                ),
            )
            continue
        if len(data) > member.file_size:
            yield label, FileRefusedError(gettext_noop("zip 条目大小与声明不符"))
            continue
        budget -= len(data)
        if data[:4] == b"PK\x03\x04":
            yield label, FileRefusedError(gettext_noop("不接受嵌套 zip"))
            continue
        yield label, data


def _link_for(
    actor: User, parsed: ParsedInstance, patient: Patient | None
) -> tuple[Patient | None, str, str]:
    """(patient, linked_by, reason it waits) for a new study."""
    if patient is not None:
        return patient, Study.LinkedBy.UPLOADER, ""
    if not parsed.patient_id:
        return None, Study.LinkedBy.NONE, Study.UnlinkedReason.NO_PATIENT_ID
    try:
        resident_id = normalize_resident_id(parsed.patient_id)
    except ResidentIdError:
        return None, Study.LinkedBy.NONE, Study.UnlinkedReason.NOT_RESIDENT_ID
    match = records.patient_by_resident_id(resident_id)
    # link only to a patient the uploader's institutions treat: no linking by guessing IDs
    if match is None or not records.in_care_at(match.pk, clinical_institution_ids(actor)):
        return None, Study.LinkedBy.NONE, Study.UnlinkedReason.NO_PATIENT_IN_CARE
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
    # everything is looked up within the uploading institution's own index: another
    # institution's studies are neither found nor refused, so an upload learns nothing of them
    existing = Instance.objects.select_related("series__study").filter(
        sop_uid=parsed.sop_uid, series__study__uploaded_at=institution
    )
    found = existing.first()
    if found is not None:
        if found.sha256 != digest or found.series.series_uid != parsed.series_uid:
            raise FileRefusedError(gettext_noop("该 SOP UID 已存在且内容不同"))
        if not may_add_to_study(actor, found.series.study):
            raise FileRefusedError(gettext_noop("该检查属于您无权修改的记录"))
        return found, False
    study = cache.studies.get(parsed.study_uid)
    if study is None:
        study = (
            Study.objects.select_for_update()
            .filter(study_uid=parsed.study_uid, uploaded_at=institution)
            .first()
        )
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
            raise FileRefusedError(gettext_noop("该检查属于您无权修改的记录"))
    if patient is not None and study.patient_id not in (None, patient.pk):
        raise FileRefusedError(gettext_noop("该检查已关联其他患者"))
    series = cache.series.get(parsed.series_uid)
    if series is None:
        series = Series.objects.filter(
            series_uid=parsed.series_uid, study__uploaded_at=institution
        ).first()
    if series is None:
        series = Series.objects.create(
            study=study,
            series_uid=parsed.series_uid,
            modality=parsed.modality,
            number=parsed.series_number,
            description=parsed.series_description,
        )
    elif series.study_id != study.pk:
        raise FileRefusedError(gettext_noop("序列 UID 属于另一检查"))
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
        # per institution, as the index: two institutions' copies of one study never share a file
        relative_path=(
            f"i{series.study.uploaded_at_id}/{parsed.study_uid}/{parsed.series_uid}/"
            f"{parsed.sop_uid}.dcm"
        ),
        size_bytes=prepared.size_bytes,
        sha256=prepared.digest,
    )


def _store_batch(
    batch: list[tuple[str, _Prepared]], cache: _UploadCache, institution: Institution
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
                Instance.objects.filter(
                    sop_uid__in=uids, series__study__uploaded_at=institution
                ).values_list("sop_uid", flat=True)
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
            # the stable code, and its words in the request's language (this runs in its thread)
            "unlinked_reason": study.unlinked_reason,
            "unlinked_reason_label": study.get_unlinked_reason_display(),
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
        done, rest = _store_batch(batch, cache, institution)
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
