"""Reads for the inboxes and the referral page (access is decided in `access.py`)."""

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import NotFoundError, PermissionDeniedError
from clinical_shell.imaging import selectors as imaging_selectors
from clinical_shell.imaging.models import Study
from clinical_shell.records.models import Document, Encounter
from clinical_shell.referrals.access import (
    approver_center_ids,
    clinical_ids,
    may_read_shares,
)
from clinical_shell.referrals.models import Direction, Referral, ReferralShare, State

BOXES = ("incoming", "outgoing", "overdue", "approvals")


@dataclass(frozen=True)
class InboxFilter:
    box: str = "incoming"
    state: str = ""
    urgency: str = ""
    direction: str = ""
    q: str = ""


def inbox(user: User, f: InboxFilter) -> QuerySet[Referral]:
    """One box of the user's institutions; newest first, overdue ones by how late they are.

    Each box is a subset of `visible_referrals` stated directly (one side's institutions), so
    the database walks one index instead of the union of every visibility rule."""
    mine = clinical_ids(user)
    rows = Referral.objects.select_related("patient", "from_institution", "to_institution")
    if f.box == "outgoing":
        rows = rows.filter(from_institution_id__in=mine)
    elif f.box == "overdue":
        rows = rows.filter(
            Q(to_institution_id__in=mine) | Q(from_institution_id__in=mine),
            state=State.SENT,
            answer_due_at__lt=timezone.now(),
        )
    elif f.box == "approvals":
        if not approver_center_ids(user):
            return rows.none()
        rows = rows.filter(direction=Direction.OUT, approval__decision="pending").exclude(
            state=State.DRAFT
        )
    else:
        rows = rows.filter(to_institution_id__in=mine).exclude(state=State.DRAFT)
    if f.state in State.values:
        rows = rows.filter(state=f.state)
    if f.urgency:
        rows = rows.filter(urgency=f.urgency)
    if f.direction in Direction.values:
        rows = rows.filter(direction=f.direction)
    text = f.q.strip()
    if text:
        rows = rows.filter(_text_match(text))
    order = ("answer_due_at", "id") if f.box == "overdue" else ("-created_at", "-id")
    return rows.order_by(*order)


def _text_match(text: str) -> Q:
    """A name, pinyin initials or words of the reason. Chinese text has no case: matched with
    LIKE, which is several times cheaper than ILIKE's case folding over every reason in the box
    on PostgreSQL; Latin text (pinyin, English) keeps case-insensitive matching."""
    if text.isascii():
        return (
            Q(patient__name__icontains=text)
            | Q(patient__name_pinyin_initials__istartswith=text)
            | Q(reason__icontains=text)
        )
    return Q(patient__name__contains=text) | Q(reason__contains=text)


def audit_listed(user: User, box: str, referrals: list[Referral]) -> None:
    """A list names patients: it is a read of each of them."""
    audit.record(
        actor=user,
        action="referral.list",
        detail={"box": box, "patients": sorted({r.patient_id for r in referrals})},
    )


@dataclass(frozen=True)
class SharedItem:
    kind: str
    object_id: int
    label: str
    body: str
    # a study: the series the viewer opens it on
    series_id: int | None = None


def shared_items(user: User, referral: Referral) -> list[SharedItem]:
    """What travels with the referral, for a reader allowed to see it now; [] otherwise."""
    if not may_read_shares(user, referral):
        return []
    items: list[SharedItem] = []
    shares = list(referral.shares.all())
    ids = {
        kind: [s.object_id for s in shares if s.kind == kind] for kind in ReferralShare.Kind.values
    }
    for d in Document.objects.filter(pk__in=ids["document"], patient_id=referral.patient_id):
        items.append(SharedItem("document", d.pk, d.title, d.body))
    for e in Encounter.objects.filter(pk__in=ids["encounter"], patient_id=referral.patient_id):
        items.append(SharedItem("encounter", e.pk, e.chief_complaint, e.notes))
    studies = list(Study.objects.filter(pk__in=ids["study"], patient_id=referral.patient_id))
    opens = imaging_selectors.viewer_series([s.pk for s in studies])
    for s in studies:
        label = s.description or s.study_uid
        items.append(SharedItem("study", s.pk, label, "", opens.get(s.pk)))
    audit.record(
        actor=user,
        action="referral.shares.read",
        patient_id=referral.patient_id,
        target=referral,
        detail={"items": [f"{i.kind}:{i.object_id}" for i in items]},
    )
    return items


def require_shares(user: User, referral: Referral) -> None:
    """For the API: refuse (audited) when the shares are not readable now."""
    if not may_read_shares(user, referral):
        audit.record(
            actor=user,
            action="referral.shares.read",
            success=False,
            patient_id=referral.patient_id,
            target=referral,
            detail={"why": "referral_not_open"},
        )
        raise PermissionDeniedError(
            "referral_shares_closed", _("转诊已结束，接收方不能再查看随转诊共享的资料")
        )


def get_referral(referral_id: int) -> Referral:
    referral = Referral.objects.filter(pk=referral_id).first()
    if referral is None:
        raise NotFoundError("referral_not_found", _("未找到该转诊"))
    return referral
