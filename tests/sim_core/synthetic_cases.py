"""Cases the engine tests use: the synthetic block of ``sim_core.bench_cases``, and small CT
phantoms built through the real phantom → DICOM → case-builder path (once per test session).
"""

from pathlib import Path
from typing import Any

from sim_core.bench_cases import TOP_Z_MM, bench_model
from sim_core.instruments import Instrument
from sim_core.model import CaseModel

__all__ = ["TOP_Z_MM", "block_model", "phantom_case"]

# small enough to build in ~10 s on two cores, big enough to hold the scenarios' landmarks
PHANTOM_SLICES = 80
PHANTOM_MATRIX = 128
_built: dict[str, Path] = {}


def block_model(instrument: str | Instrument = "burr_sphere_4mm", **kw: Any) -> CaseModel:
    return bench_model(instrument, **kw)


def phantom_case(region: str, root: Path) -> Path:
    """A case bundle of a ``region`` phantom (seed 1) under ``root``; built once per process."""
    from sim_core.case.build import build_case
    from sim_core.ct.phantom import make_phantom, write_phantom

    if region not in _built:
        series = root / f"{region}-ct"
        case = root / f"{region}-case"
        phantom = make_phantom(region, seed=1, slices=PHANTOM_SLICES, matrix=PHANTOM_MATRIX)
        write_phantom(phantom, series)
        build_case(series, case)
        _built[region] = case
    return _built[region]
