"""Importing DICOM uploads (single files or zips) and linking studies to patients.

An upload is not all-or-nothing: each file is checked, then stored in its own transaction, so a
broken or hostile file is refused with its reason while the good ones go in. A stored file is
written to a temporary name, flushed to disk and renamed into place before its index row
commits: an acknowledged instance is on disk, and a refused one leaves nothing behind.
"""

import hashlib
import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError
from clinical_shell.imaging.access import may_add_to_study
from clinical_shell.imaging.dicom_reading import FileRefusedError, ParsedInstance, read_instance
from clinical_shell.imaging.models import Instance, Series, Study
from clinical_shell.network.models import Institution
from clinical_shell.records import selectors as records
from clinical_shell.records.access import clinical_institution_ids
from clinical_shell.records.identity import ResidentIdError, normalize_resident_id
from clinical_shell.records.models import Patient


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


def _write_file(relative: str, data: bytes) -> None:
    target = dicom_root() / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.part")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)


@transaction.atomic
def _store(
    *,
    actor: User,
    institution: Institution,
    patient: Patient | None,
    parsed: ParsedInstance,
    data: bytes,
) -> tuple[Instance, bool]:
    """Index and write one instance; (instance, created). Caller reads `parsed` from `data`."""
    digest = hashlib.sha256(data).hexdigest()
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
    else:
        if not may_add_to_study(actor, study):
            raise FileRefusedError("该检查属于您无权修改的记录 / study belongs to another record")
        if patient is not None and study.patient_id not in (None, patient.pk):
            raise FileRefusedError("该检查已关联其他患者 / study already linked to another patient")
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
    relative = f"{parsed.study_uid}/{parsed.series_uid}/{parsed.sop_uid}.dcm"
    instance = Instance.objects.create(
        series=series,
        sop_uid=parsed.sop_uid,
        sop_class_uid=parsed.sop_class_uid,
        transfer_syntax_uid=parsed.transfer_syntax_uid,
        number=parsed.instance_number,
        rows=parsed.rows,
        columns=parsed.columns,
        frames=parsed.frames,
        slice_position_mm=parsed.slice_position_mm,
        relative_path=relative,
        size_bytes=len(data),
        sha256=digest,
    )
    # last: if the row cannot commit, the exception leaves at most an unindexed file, which the
    # next upload of the same UID overwrites
    _write_file(relative, data)
    return instance, True


def import_upload(
    *,
    actor: User,
    institution: Institution,
    files: Iterable[tuple[str, IO[bytes]]],
    patient: Patient | None = None,
) -> ImportReport:
    """Import uploaded files and zips; each file is its own transaction (see module docstring).

    Preconditions: the caller checked the actor may upload at `institution` and, when `patient`
    is given, may change that patient's record (`access_patient(write=True)`).
    """
    report = ImportReport()
    per_study: dict[int, int] = {}
    patient_of_study: dict[int, int | None] = {}
    max_bytes = settings.OSTEON_DICOM_FILE_MAX_BYTES
    for upload_name, stream in files:
        for name, payload in expand_upload(upload_name, stream):
            try:
                if isinstance(payload, FileRefusedError):
                    raise payload
                parsed = read_instance(payload, max_bytes=max_bytes)
                instance, created = _store(
                    actor=actor,
                    institution=institution,
                    patient=patient,
                    parsed=parsed,
                    data=payload,
                )
            except FileRefusedError as refusal:
                report.refused.append({"name": name, "reason": refusal.reason})
                continue
            study = instance.series.study
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
