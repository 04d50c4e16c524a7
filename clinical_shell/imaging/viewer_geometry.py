"""Where each slice of a series lies, before its pixels arrive (the viewer's reformats).

The sagittal and coronal views are cut from a volume, and a volume's layout needs every slice's
position up front; the DICOM loader learns it only from each whole file. So the viewer asks for
the series' geometry first (about 100 bytes a slice, read here from the stored headers) and lays
the volume out at once; the slices then fill it as they arrive, in viewing order. Only what varies
from slice to slice in a CT stack is sent (position, rescale); the rest the viewer reads from the
first slice it has, so a series whose slices differ in any of that (`_SHARED`, and the transfer
syntax) is marked not uniform and the viewer waits for every file, as before.
"""

from dataclasses import dataclass
from typing import Any

import pydicom

from clinical_shell.imaging import selectors
from clinical_shell.imaging.models import Series
from clinical_shell.imaging.uploads import instance_path

# what one slice's header must agree on with the others for a volume laid out from the first
# (the first two are lists of numbers)
_SHARED = (
    "ImageOrientationPatient",
    "PixelSpacing",
    "Rows",
    "Columns",
    "BitsAllocated",
    "PixelRepresentation",
    "PhotometricInterpretation",
    "SamplesPerPixel",
)
_READ = [*_SHARED, "ImagePositionPatient", "RescaleSlope", "RescaleIntercept"]


@dataclass(frozen=True)
class SliceGeometry:
    instance_id: int
    # Image Position (Patient) of the first pixel [mm, DICOM LPS]
    position_mm: list[float]
    rescale_slope: float
    rescale_intercept: float


@dataclass(frozen=True)
class SeriesGeometry:
    uniform: bool
    slices: list[SliceGeometry]


def _floats(value: Any) -> list[float]:
    return [float(v) for v in value] if value is not None else []


def series_geometry(series: Series) -> SeriesGeometry:
    """Each slice's position and rescale, in viewing order; `uniform` False when the slices'
    orientation, spacing or size differ, or one has no position. Caller checked access."""
    slices: list[SliceGeometry] = []
    shared: set[tuple[Any, ...]] = set()
    for instance in selectors.instances_in_viewing_order(series.pk):
        ds = pydicom.dcmread(instance_path(instance), stop_before_pixels=True, specific_tags=_READ)
        position = _floats(ds.get("ImagePositionPatient"))
        if len(position) != 3:
            return SeriesGeometry(uniform=False, slices=[])
        shared.add(
            (
                str(ds.file_meta.get("TransferSyntaxUID", "")),
                *(tuple(_floats(ds.get(k))) if k in _SHARED[:2] else ds.get(k) for k in _SHARED),
            )
        )
        slices.append(
            SliceGeometry(
                instance_id=instance.pk,
                position_mm=position,
                rescale_slope=float(ds.get("RescaleSlope", 1) or 1),
                rescale_intercept=float(ds.get("RescaleIntercept", 0) or 0),
            )
        )
    return SeriesGeometry(uniform=len(shared) == 1 and len(slices) >= 3, slices=slices)
