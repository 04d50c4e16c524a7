"""Referral pages: the inboxes (filters, pages), a new referral, a referral with the actions the
reader may take, and the printable letter. Thin: access, one service or selector, render."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import DomainError, NotFoundError
from clinical_shell.imaging.models import Study
from clinical_shell.network.models import Institution
from clinical_shell.records.access import access_patient
from clinical_shell.records.models import Document, Encounter
from clinical_shell.referrals import rules, selectors, services
from clinical_shell.referrals.access import (
    access_referral,
    approver_center_ids,
    clinical_ids,
    may_read_shares,
)
from clinical_shell.referrals.models import (
    Criterion,
    Direction,
    Referral,
    State,
    TransferApproval,
    Urgency,
)

PAGE_SIZE = 20


@login_required
@require_http_methods(["GET"])
def inbox(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    box = request.GET.get("box", "incoming")
    if box not in selectors.BOXES:
        box = "incoming"
    f = selectors.InboxFilter(
        box=box,
        state=request.GET.get("state", "")[:16],
        urgency=request.GET.get("urgency", "")[:16],
        direction=request.GET.get("direction", "")[:8],
        q=request.GET.get("q", "")[:100],
    )
    page = Paginator(selectors.inbox(user, f), PAGE_SIZE).get_page(request.GET.get("page"))
    selectors.audit_listed(user, box, list(page.object_list))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "referrals/inbox.html",
        {
            "page": page,
            "f": f,
            "boxes": selectors.BOXES,
            "states": State.choices,
            "urgencies": Urgency.choices,
            "directions": Direction.choices,
            "query": query.urlencode(),
            "institution_ids": clinical_ids(user),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def new_referral(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    senders = Institution.objects.filter(pk__in=clinical_ids(user, write=True)).order_by("pk")
    data = request.POST if request.method == "POST" else request.GET
    patient_id = data.get("patient", "")
    patient = (
        access_patient(user, int(patient_id), reason="referral") if patient_id.isdigit() else None
    )
    errors: dict[str, str] = {}
    if request.method == "POST":
        sender = senders.filter(pk=_int(data.get("from_institution"))).first()
        receiver = Institution.objects.filter(pk=_int(data.get("to_institution"))).first()
        if sender is None or patient is None:
            errors["from_institution"] = str(services.ReferralFormError({}).message)
        else:
            try:
                referral = services.create_draft(
                    actor=user,
                    patient_id=patient.pk,
                    direction=data.get("direction", ""),
                    from_institution=sender,
                    to_institution=receiver,
                    outside_hospital=data.get("outside_hospital", ""),
                    urgency=data.get("urgency", Urgency.ROUTINE),
                    reason=data.get("reason", ""),
                    criteria=data.getlist("criteria"),
                    handover={k: data.get(k, "") for k in rules.HANDOVER_FIELDS},
                )
            except services.ReferralFormError as exc:
                errors = {k: str(v) for k, v in exc.errors.items()}
            else:
                return redirect("referrals:detail", referral_id=referral.pk)
    return render(
        request,
        "referrals/new.html",
        {
            "patient": patient,
            "senders": senders,
            "receivers": Institution.objects.order_by("level", "pk"),
            "criteria": Criterion.objects.filter(active=True),
            "urgencies": Urgency.choices,
            "directions": Direction.choices,
            "handover_fields": [(k, v, data.get(k, "")) for k, v in rules.HANDOVER_FIELDS.items()],
            "data": {
                k: data.get(k, "")
                for k in (
                    "patient",
                    "direction",
                    "from_institution",
                    "to_institution",
                    "outside_hospital",
                    "urgency",
                    "reason",
                )
            },
            "chosen": data.getlist("criteria"),
            "errors": errors,
            "english": translation.get_language() == "en",
        },
        status=422 if errors else 200,
    )


def _int(value: Any) -> int:
    return int(value) if str(value).isdigit() else -1


def _actions(user: User, referral: Referral) -> list[str]:
    """The buttons to show; the services decide again on every POST."""
    mine = set(clinical_ids(user, write=True))
    sender = referral.from_institution_id in mine
    receiver = sender if referral.direction == Direction.OUT else referral.to_institution_id in mine
    shown: list[str] = []
    for name, move in services.MOVES.items():
        side_ok = sender if move.side == "sender" else receiver
        if side_ok and referral.state in move.sources:
            shown.append(name)
    if sender and referral.state in (State.DRAFT, State.SENT, State.ACCEPTED):
        shown.append("share")
    approval = TransferApproval.objects.filter(referral=referral).first()
    if (
        approval is not None
        and approval.decision == TransferApproval.Decision.PENDING
        and approver_center_ids(user)
        and referral.created_by_id != user.pk
    ):
        shown.append("decide")
    return shown


def _attachable(user: User, referral: Referral, actions: list[str]) -> list[tuple[str, int, str]]:
    """The patient's records the sender may attach: those written or uploaded at the sending
    institution (another institution's are that one's to share), read through the chart's door."""
    if "share" not in actions:
        return []
    patient = access_patient(user, referral.patient_id, reason="referral attachments")
    sender = referral.from_institution_id
    documents = Document.objects.filter(patient=patient, institution_id=sender)
    studies = Study.objects.filter(patient=patient, uploaded_at_id=sender)
    encounters = Encounter.objects.filter(patient=patient, institution_id=sender)
    return (
        [("document", d.pk, d.title) for d in documents.filter(deleted_at__isnull=True)]
        + [("study", s.pk, s.description or s.study_uid) for s in studies]
        + [
            ("encounter", e.pk, e.chief_complaint)
            for e in encounters.filter(deleted_at__isnull=True)
        ]
    )


def _detail(
    request: HttpRequest, referral: Referral, *, error: str = "", status: int = 200
) -> HttpResponse:
    user = signed_in_user(request)
    actions = _actions(user, referral)
    shared = referral.shares.values_list("kind", "object_id")
    return render(
        request,
        "referrals/detail.html",
        {
            "r": referral,
            "items": selectors.shared_items(user, referral),
            "may_read_shares": may_read_shares(user, referral),
            "events": referral.events.select_related("actor__person"),
            "actions": actions,
            "attachable": [
                a for a in _attachable(user, referral, actions) if (a[0], a[1]) not in set(shared)
            ],
            "approval": TransferApproval.objects.filter(referral=referral).first(),
            "onward_choices": Institution.objects.filter(level=Institution.Level.CENTER),
            "criteria": Criterion.objects.filter(code__in=referral.criteria),
            "handover": [
                (label, referral.handover.get(key, ""))
                for key, label in rules.HANDOVER_FIELDS.items()
                if referral.handover.get(key)
            ],
            "onward": referral.onward.first(),
            "error": error,
            "english": translation.get_language() == "en",
        },
        status=status,
    )


@login_required
@require_http_methods(["GET"])
def detail(request: HttpRequest, referral_id: int) -> HttpResponse:
    return _detail(request, access_referral(signed_in_user(request), referral_id))


@login_required
@require_http_methods(["GET"])
def letter(request: HttpRequest, referral_id: int) -> HttpResponse:
    """The referral letter, in Chinese whatever the reader's language (it travels on paper)."""
    user = signed_in_user(request)
    referral = access_referral(user, referral_id, action="referral.print")
    with translation.override("zh-hans"):
        return render(
            request,
            "referrals/letter.html",
            {
                "r": referral,
                "criteria": Criterion.objects.filter(code__in=referral.criteria),
                "handover": [
                    (label, referral.handover.get(key, ""))
                    for key, label in rules.HANDOVER_FIELDS.items()
                ],
                "items": selectors.shared_items(user, referral),
                "author": getattr(referral.created_by, "person", None),
            },
        )


@login_required
@require_http_methods(["POST"])
def act(request: HttpRequest, referral_id: int, action: str) -> HttpResponse:
    user = signed_in_user(request)
    referral = access_referral(user, referral_id, action=f"referral.{action}")
    p = request.POST
    version = _int(p.get("version")) if p.get("version") else None
    kwargs: dict[str, Any] = {"actor": user, "referral_id": referral.pk}
    try:
        if action == "share":
            kind, _sep, object_id = p.get("item", "").partition(":")
            services.share(**kwargs, kind=kind, object_id=_int(object_id))
        elif action == "decline":
            onward = Institution.objects.filter(pk=_int(p.get("onward_to"))).first()
            services.decline(
                **kwargs, reason=p.get("reason", ""), onward_to=onward, version=version
            )
        elif action == "return":
            services.return_referral(**kwargs, reason=p.get("reason", ""), version=version)
        elif action == "cancel":
            services.cancel(**kwargs, reason=p.get("reason", ""), version=version)
        elif action in ("approve", "reject"):
            services.decide_transfer(**kwargs, approve=action == "approve", note=p.get("note", ""))
        elif action in ("send", "accept", "arrive", "complete"):
            getattr(services, action)(**kwargs, version=version)
        else:
            raise NotFoundError("unknown_action", str(services.ReferralFormError({}).message))
    except services.ReferralFormError as exc:
        message = "；".join(str(v) for v in exc.errors.values()) or str(exc.message)
        return _detail(request, _fresh(referral), error=message, status=exc.status)
    except DomainError as exc:
        if exc.status in (401, 403, 404):
            raise
        return _detail(request, _fresh(referral), error=str(exc.message), status=exc.status)
    return redirect("referrals:detail", referral_id=referral.pk)


def _fresh(referral: Referral) -> Referral:
    referral.refresh_from_db()
    return referral
