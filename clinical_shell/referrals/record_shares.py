"""The records of a patient that referrals, consultations and meetings share with a reader now.

Registered with `records.access.register_share_source`: the records rule asks it for the other
institutions' encounters, documents and studies a reader may see on the patient's pages
(`RecordScope`). The same holds as for the viewer's study grants (`study_grants.py`): a referral
shares with the receiving institution's clinicians while it is open, a consultation with its
expert (or its specialty's experts) while requested or answered, a meeting with its chair and
participants until it ends.
"""

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db.models import Q

from clinical_shell.referrals.consult_models import ConsultAttachment, ConsultState, ExpertSlot
from clinical_shell.referrals.models import OPEN_STATES, ReferralShare


def shared_with(
    user: User, patient_id: int, institutions: frozenset[int]
) -> Iterable[tuple[str, int]]:
    """(kind, id) of each record of `patient_id` shared with `user` (a clinician at
    `institutions`) right now."""
    if institutions:
        yield from ReferralShare.objects.filter(
            referral__patient_id=patient_id,
            referral__state__in=sorted(OPEN_STATES),
            referral__to_institution_id__in=sorted(institutions),
        ).values_list("kind", "object_id")
    specialties = ExpertSlot.objects.filter(expert_id=user.pk).values("specialty")
    open_consultation = Q(
        consultation__patient_id=patient_id,
        consultation__state__in=(ConsultState.REQUESTED, ConsultState.ANSWERED),
    ) & (
        Q(consultation__expert_id=user.pk)
        | Q(consultation__expert__isnull=True, consultation__specialty__in=specialties)
    )
    open_meeting = Q(mdt_case__patient_id=patient_id, mdt_case__meeting__ended_at__isnull=True) & (
        Q(mdt_case__meeting__chair_id=user.pk) | Q(mdt_case__meeting__participants__id=user.pk)
    )
    yield from (
        ConsultAttachment.objects.filter(open_consultation | open_meeting)
        .values_list("kind", "object_id")
        .distinct()
    )
