"""Marking and unmarking key images; atomic and audited.

Whoever may view a study may mark its key slices (the caller has run `access.access_study`, the
viewer's rule: the patient's care relationship, or a grant such as a shared referral), as a
radiologist marks the slices the report speaks of and a surgeon the ones to plan from. Each mark,
note change and unmark is one audit event on the patient.
"""

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, NotFoundError
from clinical_shell.imaging.key_images_models import MAX_KEY_IMAGE_NOTE_CHARS, KeyImage
from clinical_shell.imaging.models import Instance, Study


def _instance_of(study: Study, instance_id: int) -> Instance:
    # the slice must be one of this study's: a key image of another study (perhaps another
    # patient's) cannot be filed here by naming its id
    instance = Instance.objects.filter(pk=instance_id, series__study_id=study.pk).first()
    if instance is None:
        raise NotFoundError(
            "instance_not_in_study",
            _("该检查中没有编号为 %(instance_id)s 的影像") % {"instance_id": instance_id},
        )
    return instance


@transaction.atomic
def mark_key_image(*, actor: User, study: Study, instance_id: int, note: str = "") -> KeyImage:
    """Mark a slice of `study` as a key image, or change the note of one already marked.

    Precondition: `actor` may view `study` (access_study)."""
    note = note.strip()
    if len(note) > MAX_KEY_IMAGE_NOTE_CHARS:
        raise DomainError(
            "key_image_note_too_long",
            _("备注过长(最多 %(n)s 字)") % {"n": MAX_KEY_IMAGE_NOTE_CHARS},
            status=422,
        )
    instance = _instance_of(study, instance_id)
    key_image, created = KeyImage.objects.get_or_create(
        study=study, instance=instance, defaults={"note": note, "marked_by": actor}
    )
    if not created and key_image.note != note:
        key_image.note = note
        key_image.save(update_fields=["note", "updated_at"])
    audit.record(
        actor=actor,
        action="key_image.mark" if created else "key_image.note",
        patient_id=study.patient_id,
        target=key_image,
        detail={"study": study.pk, "instance": instance.pk, "series": instance.series_id},
    )
    return key_image


@transaction.atomic
def unmark_key_image(*, actor: User, study: Study, instance_id: int) -> None:
    """Take a slice off the study's key images (404 when it is not one).

    Precondition: `actor` may view `study` (access_study)."""
    instance = _instance_of(study, instance_id)
    key_image = KeyImage.objects.select_for_update().filter(study=study, instance=instance).first()
    if key_image is None:
        raise NotFoundError("key_image_not_found", _("该影像不是关键图像"))
    audit.record(
        actor=actor,
        action="key_image.unmark",
        patient_id=study.patient_id,
        target=key_image,
        detail={
            "study": study.pk,
            "instance": instance.pk,
            "series": instance.series_id,
            "note": key_image.note,
            "marked_by": key_image.marked_by_id,
        },
    )
    key_image.delete()
