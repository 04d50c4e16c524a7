"""The only door to patient data: who may read or change which patient, and the audit of it.

Rule: a person may open a patient's record when they hold a clinical role at an institution that
has a care relationship with the patient (registration, an encounter or a referral there); to
change it they need a record-writing role there. Quality managers, committee members and
administrators have no access to identified records through this door (separation of duties).
Every decision, granted or refused, is written to the audit log.

Opening the patient is not reading every record of the patient. The patient's identity, allergies
and problem list are shown to every institution in care (a township that does not know the
patient's allergy harms them). The clinical records themselves (encounters with their codes and
documents, studies, reports, simulation cases) follow their provenance: a reader sees those
written at their own institutions, and another institution's only while an open referral,
consultation or meeting shares them (`RecordScope`). A registering township therefore does not
read what the center writes after the patient came back; it reads the handover the center sends
down, while that referral is open.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.contrib.auth.models import AnonymousUser, User
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, NotFoundError, PermissionDeniedError
from clinical_shell.network.models import CLINICAL_ROLES, RECORD_WRITER_ROLES, Membership, Role
from clinical_shell.network.selectors import institution_ids_with_roles
from clinical_shell.records.models import CareRelationship, DuplicateCandidate, Encounter, Patient


def clinical_institution_ids(user: User | AnonymousUser, *, write: bool = False) -> list[int]:
    if not user.is_authenticated:
        return []
    roles: frozenset[Role] = RECORD_WRITER_ROLES if write else CLINICAL_ROLES
    return institution_ids_with_roles(int(user.pk), roles)


@dataclass(frozen=True)
class Memberships:
    """The user's active (institution, role) pairs, read once for one request.

    A page that both opens a patient and asks where the user may write (the timeline) reads the
    memberships once instead of twice. Made fresh per request, never kept: a role taken away
    counts from the next request on, as before.
    """

    user_id: int | None
    pairs: frozenset[tuple[int, str]]

    def institution_ids(self, *, write: bool = False) -> list[int]:
        roles: frozenset[Role] = RECORD_WRITER_ROLES if write else CLINICAL_ROLES
        return sorted({institution_id for institution_id, role in self.pairs if role in roles})


def memberships_of(user: User | AnonymousUser) -> Memberships:
    """One query: every active membership of `user` (none for an anonymous user)."""
    if not user.is_authenticated:
        return Memberships(user_id=None, pairs=frozenset())
    pairs = Membership.objects.filter(person__user_id=user.pk, active=True).values_list(
        "institution_id", "role"
    )
    return Memberships(user_id=int(user.pk), pairs=frozenset(pairs))


# (reader, patient id, the reader's clinical institutions) -> the patient's records another app
# shares with the reader right now, as (kind, id) pairs: kind is "encounter", "document" or
# "study". Registered by the referrals app (records must not import it: the dependency runs the
# other way).
ShareSource = Callable[[User, int, frozenset[int]], Iterable[tuple[str, int]]]
_SHARE_SOURCES: list[ShareSource] = []


def register_share_source(source: ShareSource) -> None:
    if source not in _SHARE_SOURCES:
        _SHARE_SOURCES.append(source)


@dataclass(frozen=True)
class RecordScope:
    """The part of one patient's chart that one reader sees (see the module's rule)."""

    own: frozenset[int]
    shared: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    def sees(self, kind: str, pk: int, institution_id: int | None) -> bool:
        return institution_id in self.own or (kind, pk) in self.shared

    def shared_ids(self, kind: str) -> list[int]:
        return sorted(pk for k, pk in self.shared if k == kind)


def record_scope(
    user: User | AnonymousUser, patient_id: int, *, memberships: Memberships | None = None
) -> RecordScope:
    """Which of the patient's records `user` sees; the patient must already be opened."""
    if not isinstance(user, User):
        return RecordScope(own=frozenset())
    own = frozenset(
        memberships.institution_ids() if memberships is not None else clinical_institution_ids(user)
    )
    shared = frozenset(pair for source in _SHARE_SOURCES for pair in source(user, patient_id, own))
    return RecordScope(own=own, shared=shared)


def access_patient(
    user: User | AnonymousUser,
    patient_id: int,
    *,
    write: bool = False,
    form_only: bool = False,
    reason: str = "",
    memberships: Memberships | None = None,
    grant: Callable[[int], str | None] | None = None,
) -> Patient:
    """Return the patient if `user` may read it (or change it, with write=True); audit either way.

    `form_only` (with write=True) checks the right to change the record but audits a read: a
    form shown by a GET writes nothing, so the log must not say it did (its POST is the write).

    A merged patient resolves to the surviving record. Raises NotFoundError or
    PermissionDeniedError (both audited as failures). `memberships`, when the caller already
    read them for this request (`memberships_of(user)`), saves reading them again; they must
    be the same user's. `grant`, for a read without a care relationship, is asked last (with
    the patient's id) whether something else lets this user read it (an open referral sharing
    a study, say): its answer is audited as the reason ("via"); None refuses as before.
    """
    action = "patient.write" if write and not form_only else "patient.read"
    actor = user if user.is_authenticated else None
    # the registering institution is shown wherever a patient is (timeline, API): same query
    patients = Patient.objects.select_related("registered_at")
    patient = patients.filter(pk=patient_id, deleted_at__isnull=True).first()
    if patient is not None and patient.merged_into_id is not None:
        patient = patients.filter(pk=patient.merged_into_id, deleted_at__isnull=True).first()
    if patient is None:
        audit.record(
            actor=actor,
            action=action,
            success=False,
            patient_id=patient_id,
            reason=reason,
            detail={"why": "not_found"},
        )
        raise NotFoundError(
            "patient_not_found",
            _("未找到编号为 %(patient_id)s 的患者") % {"patient_id": patient_id},
        )
    if memberships is None:
        institution_ids = clinical_institution_ids(user, write=write)
    else:
        if memberships.user_id != (int(user.pk) if user.is_authenticated else None):
            raise ValueError("memberships of another user")
        institution_ids = memberships.institution_ids(write=write)
    allowed = (
        bool(institution_ids)
        and CareRelationship.objects.filter(
            patient_id=patient.pk, institution_id__in=institution_ids
        ).exists()
    )
    via = grant(patient.pk) if grant is not None and not allowed and not write else None
    allowed = allowed or via is not None
    # a refused write by someone who may read the record (a radiologist where the patient is
    # treated, who writes records elsewhere) is told that, not that there is no relationship
    reader_only = (
        not allowed
        and write
        and CareRelationship.objects.filter(
            patient_id=patient.pk,
            institution_id__in=(
                memberships.institution_ids()
                if memberships is not None
                else clinical_institution_ids(user)
            ),
        ).exists()
    )
    why = "no_write_right" if reader_only else "no_care_relationship"
    audit.record(
        actor=actor,
        action=action,
        success=allowed,
        patient_id=patient.pk,
        reason=reason,
        detail=({"via": via} if via else {}) if allowed else {"why": why},
    )
    if reader_only:
        raise PermissionDeniedError(
            "patient_forbidden",
            _("您可以查看该患者的档案，但在其诊疗机构没有录入或修改病历的权限"),
        )
    if not allowed:
        raise PermissionDeniedError(
            "patient_forbidden",
            _("您所在机构与该患者无诊疗关系，无权访问"),
        )
    return patient


def access_encounter(
    user: User | AnonymousUser, encounter_id: int, *, write: bool = False
) -> Encounter:
    """An encounter is readable when its patient is; writable only at its own institution."""
    encounter = Encounter.objects.filter(pk=encounter_id, deleted_at__isnull=True).first()
    if encounter is None:
        raise NotFoundError(
            "encounter_not_found",
            _("未找到编号为 %(encounter_id)s 的就诊记录") % {"encounter_id": encounter_id},
        )
    access_patient(user, encounter.patient_id, write=write)
    if not write and not record_scope(user, encounter.patient_id).sees(
        "encounter", encounter.pk, encounter.institution_id
    ):
        audit.record(
            actor=user,
            action="encounter.read",
            success=False,
            patient_id=encounter.patient_id,
            target=encounter,
            detail={"why": "not_shared"},
        )
        raise PermissionDeniedError(
            "encounter_not_shared",
            _("该就诊记录由其他机构书写，未通过转诊或会诊共享给您所在机构"),
        )
    if write and encounter.institution_id not in clinical_institution_ids(user, write=True):
        audit.record(
            actor=user,
            action="encounter.write",
            success=False,
            patient_id=encounter.patient_id,
            target=encounter,
            detail={"why": "other_institution"},
        )
        raise PermissionDeniedError(
            "encounter_other_institution",
            _("只能修改本机构的就诊记录"),
        )
    return encounter


def require_writer_at(user: User | AnonymousUser, institution_id: int) -> None:
    """Creating records at an institution needs a record-writing role there."""
    if institution_id not in clinical_institution_ids(user, write=True):
        raise PermissionDeniedError(
            "not_writer_here",
            _("您在该机构没有录入病历的权限"),
        )


def access_duplicate(
    user: User | AnonymousUser,
    candidate_id: int,
    *,
    reason: str = "duplicate review",
    form_only: bool = False,
) -> tuple[DuplicateCandidate, Patient, Patient]:
    """An open duplicate pair and its two patients, when `user` may change both records.

    Both patients are opened with write=True (each audited; as reads with `form_only`, for the
    review page's GET); a reviewed pair is refused with 409, an unknown one with 404.
    """
    candidate = DuplicateCandidate.objects.filter(pk=candidate_id).first()
    if candidate is None:
        raise NotFoundError(
            "duplicate_not_found",
            _("未找到编号为 %(candidate_id)s 的疑似重复") % {"candidate_id": candidate_id},
        )
    if candidate.status != DuplicateCandidate.Status.OPEN:
        raise DomainError("duplicate_closed", _("该疑似重复已处理"))
    first = access_patient(
        user, candidate.patient_id, write=True, form_only=form_only, reason=reason
    )
    second = access_patient(
        user, candidate.other_id, write=True, form_only=form_only, reason=reason
    )
    return candidate, first, second
