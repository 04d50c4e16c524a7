"""`/api/v1/imaging/studies/{study_id}/key-images`: a study's key images, marked and unmarked by
whoever may view the study (the viewer's rule, `access_study`, audited)."""

from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Router, Schema

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import ProblemOut
from clinical_shell.imaging import key_images_selectors as selectors
from clinical_shell.imaging import key_images_services as services
from clinical_shell.imaging.access import access_study
from clinical_shell.imaging.key_images_models import MAX_KEY_IMAGE_NOTE_CHARS

router = Router(tags=["imaging / 影像"])

ERRORS: dict[int, type[Schema]] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    422: ProblemOut,
}


class KeyImageIn(Schema):
    note: str = Field("", max_length=MAX_KEY_IMAGE_NOTE_CHARS)


class KeyImageOut(Schema):
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


@router.get(
    "/studies/{study_id}/key-images",
    response={200: list[KeyImageOut], **ERRORS},
    summary="A study's key images / 检查的关键图像",
)
def list_key_images(request: HttpRequest, study_id: int) -> list[selectors.KeyImageRow]:
    """By series, then slice number (1-based, in the viewer's order)."""
    study = access_study(request.user, study_id, reason="key images")
    return selectors.key_images_of_study(study.pk)


@router.put(
    "/studies/{study_id}/key-images/{instance_id}",
    response={200: list[KeyImageOut], **ERRORS},
    summary="Mark a slice as a key image / 标记关键图像",
)
def mark_key_image(
    request: HttpRequest, study_id: int, instance_id: int, payload: KeyImageIn
) -> list[selectors.KeyImageRow]:
    """Marks the slice (or changes its note); answers the study's key images as they now are."""
    study = access_study(request.user, study_id, reason="mark key image")
    services.mark_key_image(
        actor=signed_in_user(request), study=study, instance_id=instance_id, note=payload.note
    )
    return selectors.key_images_of_study(study.pk)


@router.delete(
    "/studies/{study_id}/key-images/{instance_id}",
    response={200: list[KeyImageOut], **ERRORS},
    summary="Unmark a key image / 取消关键图像",
)
def unmark_key_image(
    request: HttpRequest, study_id: int, instance_id: int
) -> list[selectors.KeyImageRow]:
    """Answers the study's key images as they now are."""
    study = access_study(request.user, study_id, reason="unmark key image")
    services.unmark_key_image(actor=signed_in_user(request), study=study, instance_id=instance_id)
    return selectors.key_images_of_study(study.pk)
