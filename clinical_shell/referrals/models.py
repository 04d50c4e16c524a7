"""Two-way referrals between the network's institutions, and transfers out of the region.

A referral moves through a fixed set of states (`transitions.py` holds the legal moves); every
move is a `ReferralEvent`. What travels with the patient is listed as `ReferralShare` rows: the
receiving institution reads exactly those while the referral is open, and nothing else through it.
"""

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from clinical_shell.network.models import Institution
from clinical_shell.records.models import Patient


class Direction(models.TextChoices):
    UP = "up", _("上转")
    DOWN = "down", _("下转")
    OUT = "out", _("转出本州")


class Urgency(models.TextChoices):
    ROUTINE = "routine", _("常规")
    URGENT = "urgent", _("加急")
    EMERGENCY = "emergency", _("急诊（预通知）")


class State(models.TextChoices):
    DRAFT = "draft", _("草稿")
    SENT = "sent", _("已发送")
    ACCEPTED = "accepted", _("已接收")
    DECLINED = "declined", _("已拒绝")
    ARRIVED = "arrived", _("患者已到达")
    COMPLETED = "completed", _("已完成")
    RETURNED = "returned", _("已退回")
    CANCELLED = "cancelled", _("已取消")


OPEN_STATES = frozenset({State.SENT, State.ACCEPTED, State.ARRIVED})
ENDED_STATES = frozenset({State.DECLINED, State.COMPLETED, State.RETURNED, State.CANCELLED})


class Criterion(models.Model):
    """One referral criterion of the checklist: rule data, editable per sender level."""

    code = models.CharField(max_length=40, unique=True)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    sender_levels = models.JSONField(default=list, help_text="institution levels that may use it")
    text_zh = models.CharField(max_length=200)
    text_en = models.CharField(max_length=200)
    # meeting it makes the referral an emergency with pre-notification of the receiving team
    emergency = models.BooleanField(default=False)
    active = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ("direction", "order", "code")

    def __str__(self) -> str:
        return self.code


class TimeLimit(models.Model):
    """How long the receiving institution has to answer, per urgency (editable rule data)."""

    urgency = models.CharField(max_length=16, choices=Urgency.choices, unique=True)
    answer_within_minutes = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.urgency}: {self.answer_within_minutes} min"


class Referral(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    urgency = models.CharField(max_length=16, choices=Urgency.choices, default=Urgency.ROUTINE)
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT)
    from_institution = models.ForeignKey(Institution, on_delete=models.PROTECT, related_name="+")
    # inside the network; empty for a transfer out of the region, which names the hospital
    to_institution = models.ForeignKey(
        Institution, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    outside_hospital = models.CharField(max_length=128, blank=True)
    reason = models.TextField(max_length=2000)
    criteria = models.JSONField(default=list, help_text="codes of the criteria met")
    # down-referral: what must travel with the patient (see HANDOVER_FIELDS)
    handover = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    answer_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.CharField(max_length=500, blank=True)
    # the referral this one continues (declined at the county, sent on to the center)
    onward_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="onward"
    )
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes: ClassVar = [
            models.Index(fields=["to_institution", "state", "-created_at"], name="ref_in_state"),
            models.Index(fields=["from_institution", "state", "-created_at"], name="ref_out_state"),
            # the inboxes' default boxes: all states of one side, newest first, a page at a time
            models.Index(fields=["to_institution", "-created_at", "-id"], name="ref_in_new"),
            models.Index(fields=["from_institution", "-created_at", "-id"], name="ref_out_new"),
            models.Index(fields=["state", "answer_due_at"], name="ref_state_due"),
        ]

    def __str__(self) -> str:
        return f"referral {self.pk} ({self.direction}, {self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class ReferralEvent(models.Model):
    """One move of the state machine: who, when, from which state to which, and why."""

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=16, choices=State.choices)
    to_state = models.CharField(max_length=16, choices=State.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("at", "id")


class ReferralShare(models.Model):
    """A record that travels with the referral: the receiving side may read it while open."""

    class Kind(models.TextChoices):
        DOCUMENT = "document", _("文书")
        STUDY = "study", _("影像检查")
        ENCOUNTER = "encounter", _("就诊记录")

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="shares")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    object_id = models.BigIntegerField()

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(
                fields=["referral", "kind", "object_id"], name="referral_share_unique"
            )
        ]


class TransferApproval(models.Model):
    """The prefecture center's approval that a transfer out of the region needs."""

    class Decision(models.TextChoices):
        PENDING = "pending", _("待审批")
        APPROVED = "approved", _("已批准")
        REJECTED = "rejected", _("已驳回")

    referral = models.OneToOneField(Referral, on_delete=models.CASCADE, related_name="approval")
    decision = models.CharField(max_length=16, choices=Decision.choices, default=Decision.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)


from clinical_shell.referrals.consult_models import *  # noqa: E402, F403
