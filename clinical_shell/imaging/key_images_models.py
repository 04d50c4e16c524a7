"""Key images: the slices of a study a reader marks as the ones that matter, with a short note.

They belong to the study (not to the person who marked them): the surgeon who opens the study
after the radiologist sees the radiologist's key slices, and the report page lists them. A slice
is marked once per study; marking it again changes its note.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models

# the longest note a key image may carry [characters]: a label, not a report
MAX_KEY_IMAGE_NOTE_CHARS = 200


class KeyImage(models.Model):
    study = models.ForeignKey("imaging.Study", on_delete=models.PROTECT, related_name="key_images")
    # the slice as stored (a CT slice or a radiograph), in one of the study's series
    instance = models.ForeignKey("imaging.Instance", on_delete=models.PROTECT, related_name="+")
    note = models.CharField(max_length=MAX_KEY_IMAGE_NOTE_CHARS, blank=True)
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    marked_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["study", "instance"], name="key_image_once_per_study")
        ]

    def __str__(self) -> str:
        return f"key image {self.instance_id} of study {self.study_id}"
