"""Rules of referral that are not data: the order of institution levels, what a down-referral
must carry, and which criteria fit a referral."""

from django.utils.translation import gettext_lazy as _

from clinical_shell.network.models import Institution
from clinical_shell.referrals.models import Criterion, Direction

LEVEL_RANK = {
    Institution.Level.TOWNSHIP: 0,
    Institution.Level.COUNTY: 1,
    Institution.Level.CENTER: 2,
}

# what must travel with a patient referred down (domain sheet §3.2); keys of Referral.handover
HANDOVER_FIELDS = {
    "discharge_summary": _("出院小结"),
    "operation_note": _("手术记录"),
    "implants": _("植入物信息"),
    "rehab_plan": _("康复计划"),
    "medication_plan": _("用药计划"),
    "follow_up": _("随访安排"),
    "warning_signs": _("需再次上转的警示症状"),
}


def direction_fits(direction: str, sender: Institution, receiver: Institution | None) -> bool:
    """Up goes to a higher level, down to a lower one; out leaves the network (no receiver)."""
    if direction == Direction.OUT:
        return receiver is None
    if receiver is None or receiver.pk == sender.pk:
        return False
    up = LEVEL_RANK[Institution.Level(receiver.level)] > LEVEL_RANK[Institution.Level(sender.level)]
    return up if direction == Direction.UP else not up and receiver.level != sender.level


def criteria_for(direction: str, sender_level: str) -> list[Criterion]:
    """The active checklist a sender of this level sees for this direction (out uses up's)."""
    wanted = Direction.UP if direction == Direction.OUT else direction
    return [
        c
        for c in Criterion.objects.filter(direction=wanted, active=True)
        if not c.sender_levels or sender_level in c.sender_levels
    ]


def missing_handover(handover: dict[str, object]) -> list[str]:
    return [key for key in HANDOVER_FIELDS if not str(handover.get(key, "")).strip()]
