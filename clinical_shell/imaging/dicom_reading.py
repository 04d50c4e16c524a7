"""Reading one uploaded DICOM file: what the index needs, or a plain reason to refuse it.

Every check here runs before anything is written, so a refused file leaves no trace but its
line in the upload report.
"""

import re
from dataclasses import dataclass
from datetime import date
from io import BytesIO
from typing import Any

import pydicom
from django.utils.translation import gettext, gettext_noop
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

# DICOM PS3.5 §9.1: digits and dots, no leading zeros, at most 64 characters. The UIDs name the
# files on disk, so this pattern is also what keeps "../" and friends out of the store.
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
MAX_DIMENSION = 16384


class FileRefusedError(Exception):
    """This file cannot go in; `reason` says why, for the person who uploaded it.

    Files are read in the upload's worker threads, where the request's language is not active,
    so the message is kept as its msgid (marked with gettext_noop) and its %-values, and
    `reason` translates it when read, in the request's thread.
    """

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(message)
        self.message = message
        self.values = values

    @property
    def reason(self) -> str:
        text = gettext(self.message)
        return text % self.values if self.values else text


@dataclass(frozen=True)
class ParsedInstance:
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    modality: str
    patient_id: str
    patient_name: str
    study_date: date | None
    study_description: str
    series_description: str
    series_number: int | None
    instance_number: int | None
    rows: int
    columns: int
    frames: int
    slice_position_mm: float | None


def _uid(ds: Any, keyword: str) -> str:
    value = str(ds.get(keyword, "") or "").strip()
    if not value:
        raise FileRefusedError(gettext_noop("缺少 %(keyword)s"), keyword=keyword)
    if len(value) > 64 or not _UID.match(value):
        raise FileRefusedError(gettext_noop("%(keyword)s 不是合法的 DICOM UID"), keyword=keyword)
    return value


def _int(ds: Any, keyword: str) -> int | None:
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _study_date(raw: Any) -> date | None:
    text = str(raw or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def _slice_position(ds: Any) -> float | None:
    # distance along the slice normal (row x column direction cosines), as CT stacks are ordered
    position = ds.get("ImagePositionPatient")
    orientation = ds.get("ImageOrientationPatient")
    if position is None or orientation is None or len(position) != 3 or len(orientation) != 6:
        return None
    r = [float(v) for v in orientation[:3]]
    c = [float(v) for v in orientation[3:]]
    normal = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    return float(sum(n * float(p) for n, p in zip(normal, position, strict=True)))


def _check_pixels(ds: Any, transfer_syntax: UID, rows: int, columns: int, frames: int) -> None:
    if "PixelData" not in ds:
        raise FileRefusedError(gettext_noop("不含像素数据，无图像可看"))
    bits = _int(ds, "BitsAllocated")
    samples = _int(ds, "SamplesPerPixel") or 1
    if bits not in (1, 8, 16, 32) or samples not in (1, 3):
        raise FileRefusedError(gettext_noop("像素格式不受支持(BitsAllocated 或 SamplesPerPixel)"))
    pixel_bytes = ds["PixelData"].value
    if transfer_syntax.is_compressed:
        # encapsulated: a basic offset table item first (FFFE,E000), little endian
        if not isinstance(pixel_bytes, bytes) or pixel_bytes[:4] != b"\xfe\xff\x00\xe0":
            raise FileRefusedError(gettext_noop("压缩像素数据结构损坏"))
        return
    expected = rows * columns * samples * frames * bits // 8 if bits != 1 else 0
    if pixel_bytes is None or len(pixel_bytes) < expected:
        got = 0 if pixel_bytes is None else len(pixel_bytes)
        raise FileRefusedError(
            gettext_noop("像素数据不完整(文件被截断?)：%(got)s / %(expected)s 字节"),
            got=got,
            expected=expected,
        )


def read_instance(data: bytes, *, max_bytes: int) -> ParsedInstance:
    """Parse `data` as one DICOM Part 10 file; raise FileRefusedError saying why it is unfit."""
    if not data:
        raise FileRefusedError(gettext_noop("空文件"))
    if len(data) > max_bytes:
        raise FileRefusedError(gettext_noop("文件超过 %(limit)s MiB"), limit=max_bytes // 2**20)
    try:
        ds = pydicom.dcmread(BytesIO(data), force=False)
    except InvalidDicomError:
        raise FileRefusedError(gettext_noop("不是 DICOM 文件(缺少 DICM 标识)")) from None
    except Exception as exc:  # pydicom raises many kinds on damaged input: all mean the same here
        raise FileRefusedError(
            gettext_noop("DICOM 文件损坏：%(error)s"), error=type(exc).__name__
        ) from None
    meta = getattr(ds, "file_meta", None)
    transfer_syntax = UID(str(getattr(meta, "TransferSyntaxUID", "") or ""))
    if not transfer_syntax or not _UID.match(str(transfer_syntax)):
        raise FileRefusedError(gettext_noop("缺少或无效的传输语法(TransferSyntaxUID)"))
    try:
        study_uid = _uid(ds, "StudyInstanceUID")
        series_uid = _uid(ds, "SeriesInstanceUID")
        sop_uid = _uid(ds, "SOPInstanceUID")
        sop_class_uid = _uid(ds, "SOPClassUID")
        rows, columns = _int(ds, "Rows") or 0, _int(ds, "Columns") or 0
        if not (0 < rows <= MAX_DIMENSION and 0 < columns <= MAX_DIMENSION):
            raise FileRefusedError(gettext_noop("图像尺寸无效(Rows 或 Columns 缺失或超出范围)"))
        frames = _int(ds, "NumberOfFrames") or 1
        if not 0 < frames <= 10000:
            raise FileRefusedError(gettext_noop("帧数无效(NumberOfFrames 超出范围)"))
        _check_pixels(ds, transfer_syntax, rows, columns, frames)
        modality = str(ds.get("Modality", "") or "").strip().upper()
        if not modality or len(modality) > 16:
            raise FileRefusedError(gettext_noop("缺少检查类型(Modality)"))
        return ParsedInstance(
            study_uid=study_uid,
            series_uid=series_uid,
            sop_uid=sop_uid,
            sop_class_uid=sop_class_uid,
            transfer_syntax_uid=str(transfer_syntax),
            modality=modality,
            patient_id=str(ds.get("PatientID", "") or "").strip()[:64],
            patient_name=str(ds.get("PatientName", "") or "").strip()[:200],
            study_date=_study_date(ds.get("StudyDate")),
            study_description=str(ds.get("StudyDescription", "") or "").strip()[:200],
            series_description=str(ds.get("SeriesDescription", "") or "").strip()[:200],
            series_number=_int(ds, "SeriesNumber"),
            instance_number=_int(ds, "InstanceNumber"),
            rows=rows,
            columns=columns,
            frames=frames,
            slice_position_mm=_slice_position(ds),
        )
    except FileRefusedError:
        raise
    except Exception as exc:  # a value that will not convert: damaged header
        raise FileRefusedError(
            gettext_noop("DICOM 头信息损坏：%(error)s"), error=type(exc).__name__
        ) from None
