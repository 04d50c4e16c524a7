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
# the knee's lesion scenario works in the lateral condyle, outside a 128-pixel field at the
# knee's fine in-plane spacing: its phantom keeps the demo's field of view, on 1 mm voxels
WIDE_FIELD_SPACING_MM = {"knee": 1.0}
_built: dict[str, Path] = {}


def block_model(instrument: str | Instrument = "burr_sphere_4mm", **kw: Any) -> CaseModel:
    return bench_model(instrument, **kw)


def phantom_case(region: str, root: Path) -> Path:
    """A case bundle of a ``region`` phantom (seed 1) under ``root``; built once per process."""
    from sim_core.case.build import build_case
    from sim_core.ct.anatomy import anatomy
    from sim_core.ct.phantom import make_phantom, write_phantom

    if region not in _built:
        series = root / f"{region}-ct"
        case = root / f"{region}-case"
        wide = region in WIDE_FIELD_SPACING_MM
        pixel_mm = anatomy(region).pixel_mm * 512 / PHANTOM_MATRIX if wide else None
        phantom = make_phantom(
            region, seed=1, slices=PHANTOM_SLICES, matrix=PHANTOM_MATRIX, pixel_mm=pixel_mm
        )
        write_phantom(phantom, series)
        if wide:
            build_case(series, case, spacing_mm=WIDE_FIELD_SPACING_MM[region])
        else:
            build_case(series, case)
        _built[region] = case
    return _built[region]
