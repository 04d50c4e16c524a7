"""Operation bookings: who operates on whom, where, when, and the check that allowed it.

A booking is checked against the surgeon's privileges and the institution's licence when it is
made (`services.book_operation`); an emergency may override a refusal, with a reason, and the
override stays on the row for quality review. A privilege that later lapses (expiry, suspension,
revocation) flags the bookings not yet performed that rested on it.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinical_shell.network.models import Institution
from clinical_shell.records.models import Patient


class Booking(models.Model):
    class State(models.TextChoices):
        BOOKED = "booked", _("已预约")
        PERFORMED = "performed", _("已完成")
        CANCELLED = "cancelled", _("已取消")
        FLAGGED = "flagged", _("已标记")

    OPEN_STATES: ClassVar = (State.BOOKED, State.FLAGGED)

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    # the procedure: its name, ICD-9-CM-3 code, surgical grade (1-4) and restricted technique
    procedure_name = models.CharField(max_length=200)
    procedure_code = models.CharField(max_length=16, blank=True)
    grade = models.PositiveSmallIntegerField()
    # a credentialing catalog code; empty when the procedure uses no restricted technique
    technique_code = models.CharField(max_length=48, blank=True)
    surgeon = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    scheduled_on = models.DateField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.BOOKED)
    # the privileges the check found (credentialing ids, no foreign key: that app owns them)
    grade_privilege_id = models.BigIntegerField(null=True, blank=True)
    technique_privilege_id = models.BigIntegerField(null=True, blank=True)
    # an emergency booked despite a refusal: the refusal (code + text as shown) and why
    emergency_override = models.BooleanField(default=False)
    override_reason = models.CharField(max_length=500, blank=True)
    overridden_code = models.CharField(max_length=48, blank=True)
    overridden_reason = models.CharField(max_length=500, blank=True)
    # why a booking was flagged (a privilege lapsed after it was made)
    flag_code = models.CharField(max_length=48, blank=True)
    flag_reason = models.CharField(max_length=500, blank=True)
    flagged_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=500, blank=True)
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar = ["scheduled_on", "id"]
        indexes: ClassVar = [
            models.Index(fields=["institution", "scheduled_on"], name="booking_inst_date"),
            models.Index(fields=["surgeon", "state"], name="booking_surgeon_state"),
            models.Index(fields=["grade_privilege_id"], name="booking_grade_privilege"),
            models.Index(fields=["technique_privilege_id"], name="booking_tech_privilege"),
            models.Index(fields=["emergency_override", "created_at"], name="booking_override"),
        ]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(grade__gte=1, grade__lte=4), name="booking_grade_1_to_4"
            ),
            models.CheckConstraint(
                condition=models.Q(emergency_override=False) | ~models.Q(override_reason=""),
                name="booking_override_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return f"booking {self.pk} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def flag_label(self) -> str:
        """Why it was flagged (the rule), in the active language."""
        from clinical_shell.scheduling.reasons import label

        return label(self.flag_code) if self.flag_code else ""

    @property
    def overridden_label(self) -> str:
        """The rule the emergency overrode, in the active language."""
        from clinical_shell.scheduling.reasons import label

        return label(self.overridden_code) if self.overridden_code else ""
