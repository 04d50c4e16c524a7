"""Offline code tables (assets/codes/): ICD-10 diagnoses, ICD-9-CM-3 procedures, AO/OTA fractures.

The tables are curated orthopedic subsets (their coverage and sources are in each file's header
and in docs/records.md). They are read once per process and searched in memory: by code prefix,
by a part of the Chinese name, by pinyin initials (股骨颈骨折 -> ggjgz) or spelled pinyin, and by
a word of the English name. A code is *selectable* (may be stored on a record) when the table
says so; headings such as ICD-9-CM-3 "79" or AO/OTA "31A" are there to be found, not coded.
"""

import csv
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.utils.translation import get_language
from django.utils.translation import gettext as _
from pypinyin import Style, lazy_pinyin

from clinical_shell.errors import DomainError
from clinical_shell.records.models import AO_OTA_PATTERN, ICD9CM3_PATTERN, ICD10_PATTERN

CODE_DIR = Path(__file__).resolve().parents[2] / "assets" / "codes"

ICD10 = "icd10"
ICD9CM3 = "icd9cm3"
AOOTA = "aoota"
SYSTEMS = (ICD10, ICD9CM3, AOOTA)
SYSTEM_LABELS = {ICD10: "ICD-10", ICD9CM3: "ICD-9-CM-3", AOOTA: "AO/OTA"}

# a search returns at most this many entries; the page shows them as a short pick list
DEFAULT_LIMIT = 20
MAX_LIMIT = 50

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_HANZI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


class UnknownCodeSystemError(DomainError):
    status = 422


@dataclass(frozen=True)
class CodeEntry:
    """One row of a code table, with the keys it is searched by."""

    system: str
    code: str
    name_zh: str
    name_en: str
    level: str
    selectable: bool
    initials: str  # pinyin initials of name_zh, lower case: 股骨颈骨折 -> ggjgz
    spelled: str  # spelled pinyin of name_zh without tones or spaces

    @property
    def name(self) -> str:
        """The name in the active language (Chinese unless English is active)."""
        return self.name_en if (get_language() or "").startswith("en") else self.name_zh


def _pinyin_keys(name: str) -> tuple[str, str]:
    """(initials, spelled) of the Chinese characters in `name`; other text is left out.

    The same pypinyin reading identity.py gives names, without its surname readings: a
    diagnosis is read as words (单纯 dān-, not the surname Shàn).
    """
    hanzi = "".join(_HANZI.findall(name))
    readings = lazy_pinyin(hanzi, style=Style.NORMAL, errors="ignore")
    return "".join(r[:1] for r in readings), "".join(readings)


def _entry(
    system: str, code: str, name_zh: str, name_en: str, level: str, selectable: bool
) -> CodeEntry:
    initials, spelled = _pinyin_keys(name_zh)
    return CodeEntry(system, code, name_zh, name_en, level, selectable, initials, spelled)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        lines = [line for line in f if not line.startswith("#")]
    return list(csv.DictReader(lines))


def _icd_level(code: str) -> str:
    if "." not in code:
        return "category" if len(code) == 3 else "chapter"
    return "subcategory"


@cache
def table(system: str) -> tuple[CodeEntry, ...]:
    """Every entry of a code table, in code order (read from disk once per process)."""
    if system == ICD10:
        rows = _read_csv(CODE_DIR / "icd10.csv")
        # any listed ICD-10 code may be recorded: the subset lists categories and subcategories
        return tuple(
            _entry(ICD10, r["code"], r["name_zh"], r["name_en"], _icd_level(r["code"]), True)
            for r in rows
        )
    if system == ICD9CM3:
        rows = _read_csv(CODE_DIR / "icd9cm3.csv")
        codes = [r["code"] for r in rows]
        # a heading with more specific codes under it (79.3 over 79.35) is not itself coded
        parents = {c for c in codes for other in codes if other != c and other.startswith(c)}
        return tuple(
            _entry(
                ICD9CM3,
                r["code"],
                r["name_zh"],
                r["name_en"],
                _icd_level(r["code"]),
                r["code"] not in parents and bool(ICD9CM3_PATTERN.match(r["code"])),
            )
            for r in rows
        )
    if system == AOOTA:
        document = json.loads((CODE_DIR / "aoota.json").read_text(encoding="utf-8"))
        return tuple(
            _entry(
                AOOTA,
                e["code"],
                e["name_zh"],
                e["name_en"],
                e["level"],
                e["level"] == "group" and bool(AO_OTA_PATTERN.match(e["code"])),
            )
            for e in document["codes"]
        )
    raise UnknownCodeSystemError(
        "unknown_code_system",
        _("未知的编码体系 %(system)s(可选 icd10、icd9cm3、aoota)") % {"system": system},
    )


@cache
def _by_code(system: str) -> dict[str, CodeEntry]:
    return {entry.code: entry for entry in table(system)}


def normalize_code(system: str, raw: str) -> str:
    """Upper-case, without spaces or a hyphen after the AO/OTA segment (31-A2 -> 31A2)."""
    code = raw.strip().upper().replace(" ", "")
    if system == AOOTA:
        code = code.replace("-", "")
    return code


def lookup(system: str, raw: str) -> CodeEntry | None:
    """The table entry a code may be recorded as, or None when the table does not list it.

    AO/OTA subgroups (31A2.1) are not listed: one is accepted through its group (31A2) and
    reported under its own code with the group's names.
    """
    code = normalize_code(system, raw)
    entries = _by_code(system)
    entry = entries.get(code)
    if entry is None and system == AOOTA and AO_OTA_PATTERN.match(code) and "." in code:
        group = entries.get(code.split(".")[0])
        if group is not None and group.selectable:
            return CodeEntry(
                AOOTA,
                code,
                group.name_zh,
                group.name_en,
                "subgroup",
                True,
                group.initials,
                group.spelled,
            )
    if entry is None or not entry.selectable:
        return None
    if system == ICD10 and not ICD10_PATTERN.match(code):
        return None
    return entry


def _rank(entry: CodeEntry, code_text: str, text: str, latin: str) -> int | None:
    """How well `entry` matches; lower is better, None is no match.

    0 the code exactly, 1 the start of the code, 2 the start of the Chinese name, 3 the start of
    the pinyin initials, 4 the start of the spelled pinyin, 5 inside the Chinese name, 6 inside
    the initials, 7 a word of the English name.
    """
    if code_text and entry.code.upper() == code_text:
        return 0
    if code_text and entry.code.upper().startswith(code_text):
        return 1
    if entry.name_zh.startswith(text):
        return 2
    if latin and entry.initials.startswith(latin):
        return 3
    if latin and len(latin) > 1 and entry.spelled.startswith(latin):
        return 4
    if text in entry.name_zh:
        return 5
    if latin and len(latin) > 1 and latin in entry.initials:
        return 6
    if len(text) > 2 and text.lower() in entry.name_en.lower():
        return 7
    return None


def search(
    system: str, text: str, *, limit: int = DEFAULT_LIMIT, selectable_only: bool = False
) -> list[CodeEntry]:
    """Entries of `system` matching `text`, best first (then shorter, i.e. broader, codes first).

    Raises UnknownCodeSystemError for a system not in SYSTEMS. An empty text gives nothing.
    """
    entries = table(system)
    text = text.strip()
    if not text:
        return []
    code_text = normalize_code(system, text)
    latin = _NOT_ALNUM.sub("", text.lower()) if text.isascii() else ""
    ranked: list[tuple[int, int, str, CodeEntry]] = []
    for entry in entries:
        if selectable_only and not entry.selectable:
            continue
        rank = _rank(entry, code_text, text, latin)
        if rank is not None:
            ranked.append((rank, len(entry.code), entry.code, entry))
    # within a rank, broader codes first: S72 before S72.0 before S72.00
    ranked.sort(key=lambda item: item[:3])
    return [item[3] for item in ranked[: max(1, min(limit, MAX_LIMIT))]]
