"""Reading a study without a care relationship, because a referral, a consultation or a meeting
shares it: the imaging viewer asks these (registered in `ReferralsConfig.ready`) when the reader
has no care relationship with the study's patient.

Each grant holds only while what shares the study is open, and only for the study of the same
patient it was attached for; the answer ("referral:12") goes into the viewer's audit event.
"""

from django.contrib.auth.models import User
from django.db.models import Q

from clinical_shell.imaging.models import Study
from clinical_shell.referrals.access import clinical_ids
from clinical_shell.referrals.consult_models import ConsultAttachment, ConsultState, ExpertSlot
from clinical_shell.referrals.models import OPEN_STATES, ReferralShare


def through_referral(user: User, study: Study) -> str | None:
    """The receiving institution's clinicians, while the referral that shares it is open."""
    if study.patient_id is None:
        return None
    share = (
        ReferralShare.objects.filter(
            kind=ReferralShare.Kind.STUDY,
            object_id=study.pk,
            referral__patient_id=study.patient_id,
            referral__state__in=sorted(OPEN_STATES),
            referral__to_institution_id__in=clinical_ids(user),
        )
        .values_list("referral_id", flat=True)
        .first()
    )
    return None if share is None else f"referral:{share}"


def through_consultation(user: User, study: Study) -> str | None:
    """The invited expert (or, for a request to a specialty, its experts) while it is open."""
    if study.patient_id is None:
        return None
    specialties = ExpertSlot.objects.filter(expert_id=user.pk).values("specialty")
    found = (
        ConsultAttachment.objects.filter(
            kind=ConsultAttachment.Kind.STUDY,
            object_id=study.pk,
            consultation__patient_id=study.patient_id,
            consultation__state__in=(ConsultState.REQUESTED, ConsultState.ANSWERED),
        )
        .filter(
            Q(consultation__expert_id=user.pk)
            | Q(consultation__expert__isnull=True, consultation__specialty__in=specialties)
        )
        .values_list("consultation_id", flat=True)
        .first()
    )
    return None if found is None else f"consultation:{found}"


def through_meeting(user: User, study: Study) -> str | None:
    """The chair and participants of a meeting that discusses it, until the meeting ends."""
    if study.patient_id is None:
        return None
    found = (
        ConsultAttachment.objects.filter(
            kind=ConsultAttachment.Kind.STUDY,
            object_id=study.pk,
            mdt_case__patient_id=study.patient_id,
            mdt_case__meeting__ended_at__isnull=True,
        )
        .filter(
            Q(mdt_case__meeting__chair_id=user.pk) | Q(mdt_case__meeting__participants__id=user.pk)
        )
        .values_list("mdt_case__meeting_id", flat=True)
        .first()
    )
    return None if found is None else f"mdt:{found}"
