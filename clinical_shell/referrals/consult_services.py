"""Teleconsultation and MDT actions: each checks who may act, writes in one transaction, audits
it and tells the people concerned (notifications never name the patient)."""

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinical_shell.audit import services as audit
from clinical_shell.errors import DomainError, NotFoundError, PermissionDeniedError
from clinical_shell.imaging.models import Study
from clinical_shell.network.models import Role
from clinical_shell.network.selectors import institution_ids_with_roles
from clinical_shell.notifications.services import notify
from clinical_shell.records import selectors as records_selectors
from clinical_shell.records.access import access_patient, clinical_institution_ids
from clinical_shell.records.models import Document
from clinical_shell.referrals.consult_models import (
    Consultation,
    ConsultAttachment,
    ConsultPriority,
    ConsultState,
    ConsultTimeLimit,
    ExpertSlot,
    MdtCase,
    MdtMeeting,
    OpinionReport,
    Specialty,
)

OPINION_KEY_SALT = "clinical_shell.referrals.consult.opinion"
MDT_KEY_SALT = "clinical_shell.referrals.consult.mdt"
# used when no ConsultTimeLimit row says otherwise (domain sheet 3.1)
DEFAULT_ANSWER_MINUTES = {ConsultPriority.ROUTINE: 48 * 60, ConsultPriority.EMERGENCY: 30}

EXPERT_ROLES = frozenset({Role.SURGEON, Role.RADIOLOGIST})
REQUIRED_FIELDS = (
    "question",
    "history",
    "findings",
    "diagnosis_treatment",
    "consent_by",
    "consent_relationship",
    "consent_at",
    "consent_signature",
)


class ConsultError(DomainError):
    status = 422


class ConsultFormError(ConsultError):
    """Every missing or wrong field at once (the form shows them all, the API lists them)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("consultation_invalid", _("会诊申请内容不完整或有误"))
        self.errors = errors


def consultation_url(consultation: Consultation) -> str:
    return reverse("referrals:consult_detail", args=[consultation.pk])


def mdt_url(meeting: MdtMeeting) -> str:
    return reverse("referrals:mdt_detail", args=[meeting.pk])


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _sign(salt: str, payload: str) -> str:
    return salted_hmac(salt, payload, algorithm="sha256").hexdigest()


# --- who is who ------------------------------------------------------------------------------


def experts_of(specialty: str) -> list[User]:
    """People who publish consultation slots in the specialty: those a request may go to."""
    ids = ExpertSlot.objects.filter(specialty=specialty).values_list("expert_id", flat=True)
    return list(User.objects.filter(pk__in=ids, is_active=True))


def is_requesting_side(user: User, consultation: Consultation) -> bool:
    return consultation.requesting_institution_id in clinical_institution_ids(user)


def is_expert(user: User, consultation: Consultation) -> bool:
    if consultation.expert_id is not None:
        return consultation.expert_id == user.pk
    # a request to a specialty: any of its experts may see it and take it
    return ExpertSlot.objects.filter(specialty=consultation.specialty, expert_id=user.pk).exists()


def access_consultation(
    user: User, consultation_id: int, *, action: str = "consultation.read"
) -> Consultation:
    """The consultation if `user` is on either side; audited with the patient either way."""
    consultation = (
        Consultation.objects.select_related("patient", "requesting_institution", "expert")
        .filter(pk=consultation_id)
        .first()
    )
    if consultation is None:
        raise NotFoundError("consultation_not_found", _("未找到该会诊"))
    allowed = is_requesting_side(user, consultation) or is_expert(user, consultation)
    audit.record(
        actor=user,
        action=action,
        success=allowed,
        patient_id=consultation.patient_id,
        target=consultation,
        detail={} if allowed else {"why": "not_a_party"},
    )
    if not allowed:
        raise PermissionDeniedError("consultation_forbidden", _("您无权查看该会诊"))
    return consultation


# --- slots -----------------------------------------------------------------------------------


@transaction.atomic
def publish_slot(
    *, actor: User, institution_id: int, specialty: str, starts_at: datetime, minutes: int = 30
) -> ExpertSlot:
    # publishing slots makes one an expert who reads requests to the specialty: specialists only
    if institution_id not in institution_ids_with_roles(int(actor.pk), EXPERT_ROLES):
        raise PermissionDeniedError(
            "not_specialist_here", _("只有该机构的外科或影像科医生可以开放会诊")
        )
    if specialty not in Specialty.values:
        raise ConsultFormError({"specialty": _("请选择专科")})
    if not 5 <= minutes <= 480 or starts_at <= timezone.now():
        raise ConsultFormError({"starts_at": _("时段须在将来，时长 5 至 480 分钟")})
    slot = ExpertSlot.objects.create(
        expert=actor,
        institution_id=institution_id,
        specialty=specialty,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=minutes),
    )
    audit.record(actor=actor, action="consultation.slot", target=slot)
    return slot


def free_slots(specialty: str = "") -> list[ExpertSlot]:
    rows = ExpertSlot.objects.filter(starts_at__gt=timezone.now(), booking__isnull=True)
    if specialty:
        rows = rows.filter(specialty=specialty)
    return list(rows.select_related("expert__person", "institution")[:200])


# --- request ---------------------------------------------------------------------------------


def _answer_minutes(priority: str) -> int:
    row = ConsultTimeLimit.objects.filter(priority=priority).first()
    if row is not None:
        return int(row.answer_within_minutes)
    return DEFAULT_ANSWER_MINUTES[ConsultPriority(priority)]


def _check_attachments(
    patient_id: int, institution_id: int, studies: list[int], documents: list[int]
) -> list[str]:
    """The attached records that are not this patient's, not the requesting institution's own
    (records follow their provenance: another institution's are that one's to share), or do not
    exist."""
    found_studies = set(
        Study.objects.filter(
            pk__in=studies, patient_id=patient_id, uploaded_at_id=institution_id
        ).values_list("pk", flat=True)
    )
    found_docs = set(
        Document.objects.filter(
            pk__in=documents,
            patient_id=patient_id,
            institution_id=institution_id,
            deleted_at__isnull=True,
        ).values_list("pk", flat=True)
    )
    return [f"study:{s}" for s in studies if s not in found_studies] + [
        f"document:{d}" for d in documents if d not in found_docs
    ]


def request_consultation(
    *,
    actor: User,
    patient_id: int,
    requesting_institution_id: int,
    data: dict[str, Any],
    study_ids: list[int] | tuple[int, ...] = (),
    document_ids: list[int] | tuple[int, ...] = (),
) -> Consultation:
    """Send a consultation request; refused with every problem listed when anything required
    is missing, and refused (audited) for an attachment that is not this patient's."""
    patient = access_patient(actor, patient_id, write=True, reason="teleconsultation request")
    if requesting_institution_id not in clinical_institution_ids(actor, write=True):
        raise PermissionDeniedError("not_writer_here", _("您在该机构没有录入病历的权限"))
    # the inviting institution is the one that treats the patient (it owns the decision)
    if not records_selectors.in_care_at(patient.pk, [requesting_institution_id]):
        raise PermissionDeniedError("not_in_care_here", _("该患者不在邀请方机构就诊"))
    errors: dict[str, str] = {}
    for field in REQUIRED_FIELDS:
        value = data.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            errors[field] = _("必填")
    priority = data.get("priority") or ConsultPriority.ROUTINE
    if priority not in ConsultPriority.values:
        errors["priority"] = _("请选择常规或急会诊")
    specialty = data.get("specialty") or ""
    slot: ExpertSlot | None = None
    expert: User | None = None
    if data.get("slot_id"):
        slot = ExpertSlot.objects.filter(pk=data["slot_id"]).first()
        if slot is None or slot.starts_at <= timezone.now() or hasattr(slot, "booking"):
            errors["slot_id"] = _("该时段不可预约")
        else:
            expert = slot.expert
            specialty = slot.specialty
    elif data.get("expert_id"):
        expert = User.objects.filter(pk=data["expert_id"], is_active=True).first()
        if expert is None or not ExpertSlot.objects.filter(expert=expert).exists():
            errors["expert_id"] = _("该专家未开放会诊")
    if specialty not in Specialty.values:
        errors["specialty"] = _("请选择专科或专家")
    consent_at = data.get("consent_at")
    if isinstance(consent_at, datetime) and consent_at > timezone.now():
        errors["consent_at"] = _("知情同意时间不能晚于现在")
    if not study_ids and not document_ids:
        errors["attachments"] = _("请至少附上一项该患者的检查或文书")
    foreign = _check_attachments(
        patient.pk, requesting_institution_id, list(study_ids), list(document_ids)
    )
    if foreign:
        audit.record(
            actor=actor,
            action="consultation.attach",
            success=False,
            patient_id=patient.pk,
            detail={"why": "not_this_patient", "items": foreign},
        )
        errors["attachments"] = _("只能附上该患者在本机构书写或上传的资料")
    if errors:
        raise ConsultFormError(errors)
    with transaction.atomic():
        if slot is not None:
            # the booking is unique per slot: a race loses here rather than double-booking
            slot = ExpertSlot.objects.select_for_update().get(pk=slot.pk)
            if Consultation.objects.filter(slot=slot).exists():
                raise ConsultFormError({"slot_id": _("该时段不可预约")})
        consultation = Consultation.objects.create(
            patient=patient,
            requesting_institution_id=requesting_institution_id,
            requested_by=actor,
            priority=priority,
            specialty=specialty,
            expert=expert,
            slot=slot,
            **{
                f: (data[f].strip() if isinstance(data[f], str) else data[f])
                for f in REQUIRED_FIELDS
            },
            answer_due_at=timezone.now() + timedelta(minutes=_answer_minutes(priority)),
        )
        ConsultAttachment.objects.bulk_create(
            [
                ConsultAttachment(consultation=consultation, kind="study", object_id=s)
                for s in study_ids
            ]
            + [
                ConsultAttachment(consultation=consultation, kind="document", object_id=d)
                for d in document_ids
            ]
        )
        audit.record(
            actor=actor,
            action="consultation.request",
            patient_id=patient.pk,
            target=consultation,
            detail={"priority": priority, "specialty": specialty, "expert": consultation.expert_id},
        )
    title = (
        gettext_lazy("新的急会诊申请")
        if priority == ConsultPriority.EMERGENCY
        else gettext_lazy("新的会诊申请")
    )
    notify(
        [expert] if expert is not None else experts_of(specialty),
        title=title,
        url=consultation_url(consultation),
        kind="consultation.request",
    )
    return consultation


# --- the expert's reading and answer ---------------------------------------------------------


def attachments(consultation: Consultation) -> dict[str, list[Any]]:
    rows = list(consultation.attachments.all())
    studies = [r.object_id for r in rows if r.kind == "study"]
    docs = [r.object_id for r in rows if r.kind == "document"]
    return {
        "studies": list(Study.objects.filter(pk__in=studies, patient_id=consultation.patient_id)),
        "documents": list(Document.objects.filter(pk__in=docs, patient_id=consultation.patient_id)),
    }


def read_attachments(user: User, consultation: Consultation) -> dict[str, list[Any]]:
    """The attached records for a party allowed to read them now: the requesting side always
    (it owns the chart), the expert only while the consultation is open. Audited."""
    requester = is_requesting_side(user, consultation)
    allowed = requester or (is_expert(user, consultation) and consultation.is_open)
    if not allowed:
        audit.record(
            actor=user,
            action="consultation.attachments.read",
            success=False,
            patient_id=consultation.patient_id,
            target=consultation,
            detail={"why": "consultation_closed"},
        )
        raise PermissionDeniedError(
            "consultation_closed", _("会诊已结束，受邀专家不能再查看所附资料")
        )
    items = attachments(consultation)
    audit.record(
        actor=user,
        action="consultation.attachments.read",
        patient_id=consultation.patient_id,
        target=consultation,
        detail={
            "items": [f"study:{s.pk}" for s in items["studies"]]
            + [f"document:{d.pk}" for d in items["documents"]]
        },
    )
    return items


def opinion_payload(report: OpinionReport) -> str:
    return report.payload


def verify_opinion(report: OpinionReport) -> bool:
    """Whether the stored report still is what the expert signed (no field was changed)."""
    expected = _canonical(_opinion_fields(report, report.signed_at))
    return hmac.compare_digest(report.payload, expected) and hmac.compare_digest(
        _sign(OPINION_KEY_SALT, report.payload), report.signature
    )


def _opinion_fields(report: OpinionReport, signed_at: datetime) -> dict[str, Any]:
    return {
        "consultation": report.consultation_id,
        "patient": report.consultation.patient_id,
        "author": report.author_id,
        "opinion_sha256": _sha(report.opinion),
        "recommendations_sha256": _sha(report.recommendations),
        "recommend_up_referral": report.recommend_up_referral,
        "signed_at": signed_at.isoformat(),
    }


def answer(
    *,
    actor: User,
    consultation_id: int,
    opinion: str,
    recommendations: str,
    recommend_up_referral: bool = False,
) -> OpinionReport:
    """The expert's signed opinion report; a request to a specialty is taken by who answers."""
    with transaction.atomic():
        consultation = Consultation.objects.select_for_update().get(pk=consultation_id)
        if not is_expert(actor, consultation):
            raise PermissionDeniedError("not_the_expert", _("只有受邀专家可以出具会诊意见"))
        if consultation.state != ConsultState.REQUESTED:
            raise DomainError("consultation_not_open", _("该会诊已答复或已结束"))
        errors = {}
        if not opinion.strip():
            errors["opinion"] = _("必填")
        if not recommendations.strip():
            errors["recommendations"] = _("必填")
        if errors:
            raise ConsultFormError(errors)
        now = timezone.now()
        report = OpinionReport(
            consultation=consultation,
            author=actor,
            opinion=opinion.strip(),
            recommendations=recommendations.strip(),
            recommend_up_referral=recommend_up_referral,
            signed_at=now,
        )
        report.payload = _canonical(_opinion_fields(report, now))
        report.signature = _sign(OPINION_KEY_SALT, report.payload)
        report.save()
        consultation.expert = actor
        consultation.state = ConsultState.ANSWERED
        consultation.save(update_fields=["expert", "state"])
        audit.record(
            actor=actor,
            action="consultation.answer",
            patient_id=consultation.patient_id,
            target=consultation,
            detail={"up_referral": recommend_up_referral},
        )
    notify(
        [consultation.requested_by],
        title=gettext_lazy("会诊意见已出具"),
        url=consultation_url(consultation),
        kind="consultation.answer",
    )
    return report


def close(*, actor: User, consultation_id: int, cancel: bool = False) -> Consultation:
    """The requesting side ends the consultation: the expert's reading ends with it."""
    with transaction.atomic():
        consultation = Consultation.objects.select_for_update().get(pk=consultation_id)
        if consultation.requesting_institution_id not in clinical_institution_ids(
            actor, write=True
        ):
            raise PermissionDeniedError("not_requester", _("只有邀请方可以结束会诊"))
        if not consultation.is_open:
            raise DomainError("consultation_not_open", _("该会诊已结束"))
        if cancel and consultation.state != ConsultState.REQUESTED:
            raise DomainError("consultation_answered", _("已答复的会诊不能取消"))
        consultation.state = ConsultState.CANCELLED if cancel else ConsultState.CLOSED
        consultation.closed_at = timezone.now()
        consultation.save(update_fields=["state", "closed_at"])
        audit.record(
            actor=actor,
            action="consultation.cancel" if cancel else "consultation.close",
            patient_id=consultation.patient_id,
            target=consultation,
        )
    return consultation


def escalate_overdue(now: datetime | None = None) -> int:
    """Unanswered requests past their time limit: tell the experts and the requester, once."""
    now = now or timezone.now()
    late = list(
        Consultation.objects.filter(
            state=ConsultState.REQUESTED, answer_due_at__lt=now, escalated_at__isnull=True
        ).select_related("requested_by", "expert")
    )
    for consultation in late:
        with transaction.atomic():
            updated = Consultation.objects.filter(
                pk=consultation.pk, escalated_at__isnull=True
            ).update(escalated_at=now)
            if not updated:
                continue
            audit.record(
                actor=None,
                action="consultation.escalate",
                patient_id=consultation.patient_id,
                target=consultation,
                detail={"priority": consultation.priority},
            )
        experts = (
            [consultation.expert]
            if consultation.expert is not None
            else experts_of(consultation.specialty)
        )
        notify(
            [*experts, consultation.requested_by],
            title=format_lazy(
                gettext_lazy("会诊超时未答复（{}）"),
                ConsultPriority(consultation.priority).label,
            ),
            url=consultation_url(consultation),
            kind="consultation.overdue",
        )
    return len(late)


# --- MDT -------------------------------------------------------------------------------------


def is_participant(user: User, meeting: MdtMeeting) -> bool:
    return meeting.chair_id == user.pk or meeting.participants.filter(pk=user.pk).exists()


def access_meeting(user: User, meeting_id: int) -> MdtMeeting:
    meeting = (
        MdtMeeting.objects.select_related("chair", "institution").filter(pk=meeting_id).first()
    )
    if meeting is None:
        raise NotFoundError("mdt_not_found", _("未找到该多学科讨论"))
    allowed = is_participant(user, meeting)
    audit.record(
        actor=user,
        action="mdt.read",
        success=allowed,
        target=meeting,
        detail={"patients": sorted(meeting.cases.values_list("patient_id", flat=True))}
        if allowed
        else {"why": "not_a_participant"},
    )
    if not allowed:
        raise PermissionDeniedError("mdt_forbidden", _("您不是该多学科讨论的参会者"))
    return meeting


@transaction.atomic
def create_meeting(
    *,
    actor: User,
    institution_id: int,
    title: str,
    scheduled_at: datetime,
    specialties: list[str],
    participant_ids: list[int],
) -> MdtMeeting:
    if institution_id not in clinical_institution_ids(actor, write=True):
        raise PermissionDeniedError("not_writer_here", _("您在该机构没有录入病历的权限"))
    errors = {}
    if not title.strip():
        errors["title"] = _("必填")
    if len(set(specialties)) < 2 or not set(specialties) <= set(Specialty.values):
        errors["specialties"] = _("多学科讨论至少需要两个专科")
    if errors:
        raise ConsultFormError(errors)
    meeting = MdtMeeting.objects.create(
        title=title.strip(),
        institution_id=institution_id,
        chair=actor,
        scheduled_at=scheduled_at,
        specialties=sorted(set(specialties)),
    )
    meeting.participants.set(User.objects.filter(pk__in=participant_ids, is_active=True))
    audit.record(actor=actor, action="mdt.create", target=meeting)
    transaction.on_commit(
        lambda: notify(
            list(meeting.participants.all()),
            title=gettext_lazy("您被邀请参加多学科讨论"),
            url=mdt_url(meeting),
            kind="mdt.invite",
        )
    )
    return meeting


def _require_chair(actor: User, meeting: MdtMeeting) -> None:
    if meeting.chair_id != actor.pk:
        raise PermissionDeniedError("not_chair", _("只有主持人可以执行该操作"))
    if not meeting.is_open:
        raise DomainError("mdt_ended", _("该多学科讨论已结束"))


def add_case(
    *, actor: User, meeting_id: int, patient_id: int, summary: str, study_ids: list[int]
) -> MdtCase:
    """The chair brings a patient (whose record the chair may open) with studies to share."""
    meeting = MdtMeeting.objects.get(pk=meeting_id)
    _require_chair(actor, meeting)
    patient = access_patient(actor, patient_id, reason="MDT case")
    foreign = _check_attachments(patient.pk, meeting.institution_id, study_ids, [])
    if foreign or not summary.strip():
        audit.record(
            actor=actor,
            action="mdt.case",
            success=False,
            patient_id=patient.pk,
            target=meeting,
            detail={"items": foreign},
        )
        errors = {}
        if foreign:
            errors["studies"] = _("只能附上该患者本人的资料")
        if not summary.strip():
            errors["summary"] = _("必填")
        raise ConsultFormError(errors)
    with transaction.atomic():
        case, _created = MdtCase.objects.get_or_create(
            meeting=meeting, patient=patient, defaults={"summary": summary.strip()}
        )
        ConsultAttachment.objects.bulk_create(
            [ConsultAttachment(mdt_case=case, kind="study", object_id=s) for s in study_ids]
        )
        audit.record(actor=actor, action="mdt.case", patient_id=patient.pk, target=meeting)
    return case


def shared_study(user: User, meeting_id: int, study_id: int) -> Study:
    """A study shared at the meeting, for a participant; audited."""
    meeting = MdtMeeting.objects.filter(pk=meeting_id).first()
    study = None
    if meeting is not None and is_participant(user, meeting):
        shared = ConsultAttachment.objects.filter(
            mdt_case__meeting=meeting, kind="study", object_id=study_id
        ).exists()
        study = Study.objects.filter(pk=study_id).first() if shared else None
    audit.record(
        actor=user,
        action="mdt.study.read",
        success=study is not None,
        patient_id=study.patient_id if study is not None else None,
        target=meeting,
        detail={"study": study_id},
    )
    if study is None:
        raise PermissionDeniedError("mdt_study_forbidden", _("该影像未在您参加的讨论中共享"))
    return study


@transaction.atomic
def save_minutes(*, actor: User, meeting_id: int, minutes: str) -> MdtMeeting:
    meeting = MdtMeeting.objects.select_for_update().get(pk=meeting_id)
    _require_chair(actor, meeting)
    meeting.minutes = minutes.strip()[:20000]
    meeting.save(update_fields=["minutes"])
    audit.record(actor=actor, action="mdt.minutes", target=meeting)
    return meeting


def _case_fields(case: MdtCase, signed_at: datetime) -> dict[str, Any]:
    return {
        "meeting": case.meeting_id,
        "case": case.pk,
        "patient": case.patient_id,
        "chair": case.signed_by_id,
        "specialties": case.meeting.specialties,
        "decision_sha256": _sha(case.decision),
        "signed_at": signed_at.isoformat(),
    }


@transaction.atomic
def decide_case(*, actor: User, case_id: int, decision: str) -> MdtCase:
    """The chair records and signs the decision for one patient; a signed one is final."""
    case = MdtCase.objects.select_for_update().select_related("meeting").get(pk=case_id)
    _require_chair(actor, case.meeting)
    if case.signature:
        raise DomainError("mdt_decided", _("该患者的讨论决定已签署"))
    if not decision.strip():
        raise ConsultFormError({"decision": _("必填")})
    now = timezone.now()
    case.decision = decision.strip()
    case.signed_by = actor
    case.signed_at = now
    case.payload = _canonical(_case_fields(case, now))
    case.signature = _sign(MDT_KEY_SALT, case.payload)
    case.save()
    audit.record(actor=actor, action="mdt.decide", patient_id=case.patient_id, target=case.meeting)
    return case


def verify_case(case: MdtCase) -> bool:
    if not case.signature or case.signed_at is None:
        return False
    expected = _canonical(_case_fields(case, case.signed_at))
    return hmac.compare_digest(case.payload, expected) and hmac.compare_digest(
        _sign(MDT_KEY_SALT, case.payload), case.signature
    )


@transaction.atomic
def end_meeting(*, actor: User, meeting_id: int) -> MdtMeeting:
    meeting = MdtMeeting.objects.select_for_update().get(pk=meeting_id)
    _require_chair(actor, meeting)
    if meeting.cases.filter(signature="").exists():
        raise DomainError("mdt_undecided", _("仍有患者未签署讨论决定"))
    meeting.ended_at = timezone.now()
    meeting.save(update_fields=["ended_at"])
    audit.record(actor=actor, action="mdt.end", target=meeting)
    return meeting
