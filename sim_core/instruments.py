"""Instruments as data: ``assets/instruments/<name>.json`` → ``Instrument`` → a kernel tool row.

One JSON object per file; the file name (without ``.json``) is the instrument's name. Fields:

- every kind: ``kind``, ``label`` (Chinese / English), ``erosion_g_cm3_per_s`` (density removed
  per second at full speed and reference thrust; 0 = does not cut).
- ``spherical_burr``: ``diameter_mm``.
- ``cylindrical_burr``: ``diameter_mm``, ``head_length_mm`` (the fluted head cuts on its side
  and end).
- ``twist_drill``: ``diameter_mm``, ``flute_length_mm`` (its length that can enter bone; cuts
  at the tip).
- ``k_wire``, ``pedicle_awl``, ``pedicle_probe``, ``screw``: ``diameter_mm``, ``length_mm``
  (awls, probes and screws work by pushing, not by power).
- ``oscillating_saw``: ``blade_width_mm``, ``blade_thickness_mm``, ``blade_length_mm``.

Optional for all: ``rated_speed_rpm`` (shown, not simulated beyond the speed fraction),
``tip_cut_mm`` (how far behind the tip the tool cuts; kind-specific default).

The whole length (flutes, wire, shaft, blade) takes part in contact and force; only the first
``tip_cut_mm`` behind the tip removes bone (a drill's lips and a wire's point, a burr's head, a
saw's teeth); the rest is shaft, which the orientation proxy keeps out of intact bone.
An unknown or missing field, a wrong type or a non-positive size is an ``InstrumentError``.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sim_core.slots import (
    KIND_BLADE,
    KIND_CYLINDER,
    KIND_SPHERE,
    N_TOOL,
    T_CUT_MM,
    T_EROSION,
    T_KIND,
    T_LENGTH_MM,
    T_POWERED,
    T_RADIUS_MM,
    T_REF_RADIUS_MM,
    T_WIDTH_MM,
)

INSTRUMENT_DIR = Path(__file__).resolve().parent.parent / "assets" / "instruments"

# saws: the proxy and force scale use this radius (a blade has no natural one)
BLADE_REF_RADIUS_MM = 2.0

COMMON = {"kind", "label", "erosion_g_cm3_per_s", "rated_speed_rpm", "tip_cut_mm"}
SIZE_FIELDS: dict[str, tuple[str, ...]] = {
    "spherical_burr": ("diameter_mm",),
    "cylindrical_burr": ("diameter_mm", "head_length_mm"),
    "twist_drill": ("diameter_mm", "flute_length_mm"),
    "k_wire": ("diameter_mm", "length_mm"),
    "pedicle_awl": ("diameter_mm", "length_mm"),
    "pedicle_probe": ("diameter_mm", "length_mm"),
    "screw": ("diameter_mm", "length_mm"),
    "oscillating_saw": ("blade_width_mm", "blade_thickness_mm", "blade_length_mm"),
}
POWERED_KINDS = ("spherical_burr", "cylindrical_burr", "twist_drill", "k_wire", "oscillating_saw")
OPTIONAL = {"rated_speed_rpm", "tip_cut_mm"}


class InstrumentError(Exception):
    """An instrument file that is missing or invalid; the message names the file and field."""


@dataclass(frozen=True)
class Instrument:
    name: str
    kind: str
    label: str
    erosion_g_cm3_per_s: float
    sizes_mm: tuple[tuple[str, float], ...]
    rated_speed_rpm: float = 0.0
    tip_cut_mm: float = 0.0  # 0: the kind's default

    def size(self, field: str) -> float:
        return dict(self.sizes_mm)[field]

    @property
    def powered(self) -> bool:
        return self.kind in POWERED_KINDS

    @property
    def radius_mm(self) -> float:
        """Radius of the round part (blades: half the thickness)."""
        if self.kind == "oscillating_saw":
            return 0.5 * self.size("blade_thickness_mm")
        return 0.5 * self.size("diameter_mm")

    @property
    def view_kind(self) -> str:
        """How the view draws it: "burr" (a ball or head) or "drill" (a shaft)."""
        return "burr" if self.kind in ("spherical_burr", "cylindrical_burr") else "drill"

    def tool_row(self, spacing_mm: float) -> npt.NDArray[np.float64]:
        """The kernel's ``T_*`` row; thin blades are widened to one voxel so they cut a kerf."""
        row = np.zeros(N_TOOL, dtype=np.float64)
        radius = self.radius_mm
        row[T_RADIUS_MM] = radius
        row[T_REF_RADIUS_MM] = radius
        row[T_EROSION] = self.erosion_g_cm3_per_s
        row[T_POWERED] = 1.0 if self.powered else 0.0
        if self.kind == "spherical_burr":
            row[T_KIND] = KIND_SPHERE
            row[T_CUT_MM] = radius
        elif self.kind == "oscillating_saw":
            row[T_KIND] = KIND_BLADE
            row[T_RADIUS_MM] = max(radius, 0.5 * spacing_mm)
            row[T_LENGTH_MM] = self.size("blade_length_mm")
            row[T_WIDTH_MM] = self.size("blade_width_mm")
            row[T_CUT_MM] = self.tip_cut_mm or 1.0
            row[T_REF_RADIUS_MM] = BLADE_REF_RADIUS_MM
        else:
            row[T_KIND] = KIND_CYLINDER
            length_field = {
                "cylindrical_burr": "head_length_mm",
                "twist_drill": "flute_length_mm",
            }.get(self.kind, "length_mm")
            row[T_LENGTH_MM] = self.size(length_field)
            default_cut = {
                "cylindrical_burr": self.size("head_length_mm")
                if self.kind == "cylindrical_burr"
                else 0.0,
                "twist_drill": max(radius, 1.0),
                "k_wire": 1.0,
                "pedicle_awl": 3.0,
                "pedicle_probe": 2.0,
                "screw": 2.0,
            }[self.kind]
            row[T_CUT_MM] = self.tip_cut_mm or default_cut
        return row


def _number(source: str, data: dict[str, Any], field: str, *, positive: bool) -> float:
    value = data[field]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InstrumentError(f"{source}: 字段 {field} 必须是数字 / field {field} must be a number")
    if not np.isfinite(value) or value < 0 or (positive and value == 0):
        raise InstrumentError(
            f"{source}: 字段 {field} 必须为正数 / field {field} must be positive, got {value!r}"
        )
    return float(value)


def instrument_from_dict(name: str, data: Any, *, source: str = "") -> Instrument:
    """Validate one instrument object; ``source`` names it in errors (the file)."""
    source = source or name
    if not isinstance(data, dict):
        raise InstrumentError(
            f"{source}: 器械定义必须是 JSON 对象 / an instrument must be an object"
        )
    kind = data.get("kind")
    if kind not in SIZE_FIELDS:
        raise InstrumentError(
            f"{source}: 未知器械类型 {kind!r} / unknown instrument kind {kind!r} "
            f"(known: {', '.join(sorted(SIZE_FIELDS))})"
        )
    allowed = COMMON | set(SIZE_FIELDS[kind])
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InstrumentError(
            f"{source}: 未知字段 {', '.join(unknown)} / unknown field(s) {', '.join(unknown)} "
            f"for a {kind} (allowed: {', '.join(sorted(allowed))})"
        )
    missing = sorted((allowed - OPTIONAL) - set(data))
    if missing:
        raise InstrumentError(
            f"{source}: 缺少字段 {', '.join(missing)} / missing field(s) {', '.join(missing)}"
        )
    if not isinstance(data["label"], str) or not data["label"]:
        raise InstrumentError(f"{source}: label 必须是非空文本 / label must be a non-empty string")
    sizes = tuple((f, _number(source, data, f, positive=True)) for f in SIZE_FIELDS[kind])
    return Instrument(
        name=name,
        kind=kind,
        label=data["label"],
        erosion_g_cm3_per_s=_number(source, data, "erosion_g_cm3_per_s", positive=False),
        sizes_mm=sizes,
        rated_speed_rpm=(
            _number(source, data, "rated_speed_rpm", positive=False)
            if "rated_speed_rpm" in data
            else 0.0
        ),
        tip_cut_mm=_number(source, data, "tip_cut_mm", positive=True)
        if "tip_cut_mm" in data
        else 0.0,
    )


def load_instrument(name_or_path: str | Path, *, directory: Path = INSTRUMENT_DIR) -> Instrument:
    """An instrument by name (``assets/instruments/<name>.json``) or by file path."""
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = directory / f"{name_or_path}.json"
    if not path.is_file():
        known = ", ".join(list_instruments(directory))
        raise InstrumentError(
            f"{path}: 没有这个器械 / no such instrument (known: {known or 'none'})"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InstrumentError(f"{path}: 不是有效的 JSON / not valid JSON ({exc})") from exc
    return instrument_from_dict(path.stem, data, source=str(path))


def list_instruments(directory: Path = INSTRUMENT_DIR) -> list[str]:
    """Names of the instruments in a directory, sorted."""
    return sorted(p.stem for p in directory.glob("*.json"))
