"""Reads of key images for the viewer, the API and the report page (access checked by the
caller)."""

from dataclasses import dataclass
from datetime import datetime

from clinical_shell.imaging.key_images_models import KeyImage
from clinical_shell.imaging.models import Instance


@dataclass(frozen=True)
class KeyImageRow:
    """A key image as a reader finds it: which series, which slice (n of N, in viewing order,
    as the viewer counts), where, and the note."""

    id: int
    instance_id: int
    series_id: int
    series_label: str
    slice_number: int
    slice_count: int
    slice_position_mm: float | None
    note: str
    marked_by_name: str
    marked_at: datetime


def key_images_of_study(study_id: int) -> list[KeyImageRow]:
    """The study's key images by series, then slice; two queries whatever their number."""
    marks = list(
        KeyImage.objects.filter(study_id=study_id).select_related(
            "instance__series", "marked_by__person"
        )
    )
    if not marks:
        return []
    # each slice's place in its series, counted in the viewer's order (selectors.
    # instances_in_viewing_order): one query over the series that hold a key image
    series_ids = {m.instance.series_id for m in marks}
    order: dict[int, list[int]] = {sid: [] for sid in series_ids}
    for series_id, instance_id in (
        Instance.objects.filter(series_id__in=series_ids)
        .order_by("series_id", "slice_position_mm", "number", "id")
        .values_list("series_id", "id")
    ):
        order[series_id].append(instance_id)
    rows = []
    for mark in marks:
        series = mark.instance.series
        in_series = order[series.pk]
        person = getattr(mark.marked_by, "person", None)
        rows.append(
            KeyImageRow(
                id=mark.pk,
                instance_id=mark.instance_id,
                series_id=series.pk,
                series_label=series.description or series.modality,
                slice_number=in_series.index(mark.instance_id) + 1,
                slice_count=len(in_series),
                slice_position_mm=mark.instance.slice_position_mm,
                note=mark.note,
                marked_by_name=(person.full_name if person else "") or mark.marked_by.username,
                marked_at=mark.marked_at,
            )
        )
    rows.sort(key=lambda r: (r.series_id, r.slice_number))
    return rows
