"""The offline implant catalog: ``assets/implants/catalog.json`` → ``Implant`` rows.

The file is ``{"format": 1, "implants": [...]}``; each implant has exactly ``id`` (unique),
``kind`` (one of ``IMPLANT_KINDS``), ``name_zh``, ``name_en``, ``diameter_mm`` and
``length_mm`` (positive, finite). Anything else (an unknown field, a wrong type, a duplicate
id) is an ``ImplantError``: the planner refuses to start on a catalog it cannot trust.
"""

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).resolve().parent.parent / "assets" / "implants" / "catalog.json"
CATALOG_FORMAT = 1
IMPLANT_KINDS = ("pedicle_screw", "k_wire", "guide_wire", "drill_bit")
_FIELDS = ("id", "kind", "name_zh", "name_en", "diameter_mm", "length_mm")


class ImplantError(ValueError):
    """The catalog is malformed, or an implant id is not in it."""


@dataclass(frozen=True)
class Implant:
    id: str
    kind: str
    name_zh: str
    name_en: str
    diameter_mm: float
    length_mm: float

    @property
    def radius_mm(self) -> float:
        return 0.5 * self.diameter_mm


def _implant(row: Any, where: str) -> Implant:
    if not isinstance(row, dict):
        raise ImplantError(f"{where}: not an object")
    if set(row) != set(_FIELDS):
        raise ImplantError(f"{where}: fields must be exactly {_FIELDS}, got {sorted(row)}")
    for name in ("id", "kind", "name_zh", "name_en"):
        if not isinstance(row[name], str) or not row[name]:
            raise ImplantError(f"{where}: {name} must be a non-empty string")
    if row["kind"] not in IMPLANT_KINDS:
        raise ImplantError(f"{where}: unknown kind {row['kind']!r}")
    for name in ("diameter_mm", "length_mm"):
        value = row[name]
        # bool is an int in Python: refuse it explicitly
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ImplantError(f"{where}: {name} must be a number")
        if not (math.isfinite(value) and value > 0):
            raise ImplantError(f"{where}: {name} must be positive and finite")
    return Implant(
        id=row["id"],
        kind=row["kind"],
        name_zh=row["name_zh"],
        name_en=row["name_en"],
        diameter_mm=float(row["diameter_mm"]),
        length_mm=float(row["length_mm"]),
    )


def parse_catalog(doc: Any) -> tuple[Implant, ...]:
    """Validate a catalog document (the parsed JSON) and return its implants in file order."""
    if not isinstance(doc, dict) or set(doc) != {"format", "implants"}:
        raise ImplantError('catalog must be {"format": 1, "implants": [...]}')
    if doc["format"] != CATALOG_FORMAT:
        raise ImplantError(f"catalog format {doc['format']!r} is not {CATALOG_FORMAT}")
    if not isinstance(doc["implants"], list):
        raise ImplantError("implants must be a list")
    implants = tuple(_implant(row, f"implants[{n}]") for n, row in enumerate(doc["implants"]))
    ids = [i.id for i in implants]
    if len(set(ids)) != len(ids):
        raise ImplantError("implant ids must be unique")
    return implants


@cache
def load_catalog(path: Path = CATALOG_PATH) -> tuple[Implant, ...]:
    """The catalog at ``path`` (read once per process)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ImplantError(f"cannot read the implant catalog {path}: {exc}") from exc
    return parse_catalog(doc)


def get_implant(implant_id: str) -> Implant:
    """One implant of the catalog by id; ``ImplantError`` when there is none."""
    for implant in load_catalog():
        if implant.id == implant_id:
            return implant
    raise ImplantError(f"unknown implant {implant_id!r}")
