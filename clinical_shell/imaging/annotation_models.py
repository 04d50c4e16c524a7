"""A surgeon's confirmed annotations of a simulation case, one row per saved version.

A case built from a real CT knows only its bone components; the surgeon names levels and bones,
marks landmarks and draws protected tubes (``sim_core.case.annotations``). Each save is a new
``CaseAnnotationVersion`` numbered 1, 2, ... per case; a version is never changed or deleted.
The latest version is the one the plan checks use. A save names the version its author started
from (``base_number``): any other latest version means someone saved in between, and the save
is refused (409) instead of silently replacing their work.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models


class CaseAnnotationVersion(models.Model):
    case = models.ForeignKey(
        "imaging.SimulationCase", on_delete=models.PROTECT, related_name="annotation_versions"
    )
    number = models.PositiveIntegerField()
    # sim_core.case.annotations.Annotations.as_dict(), checked against the case when saved
    content = models.JSONField()
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["case", "number"]
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["case", "number"], name="case_annotation_version_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(number__gte=1), name="case_annotation_version_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"case {self.case_id} annotations v{self.number}"
