"""Credentialing pages: the catalog and rules, applying (with what is missing), the committee's
review page (evidence, votes, the chair's signed decision), and privileges (suspend, revoke)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.audit import services as audit
from clinical_shell.credentialing import access, selectors, services
from clinical_shell.credentialing.eligibility import check_eligibility
from clinical_shell.credentialing.models import Application
from clinical_shell.errors import DomainError, NotFoundError
from clinical_shell.network.models import Institution


def _int(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() else None


@login_required
@require_http_methods(["GET"])
def index(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    review_ids = access.committee_institution_ids(user)
    return render(
        request,
        "credentialing/index.html",
        {
            "techniques": selectors.techniques(),
            "grades": selectors.grades(),
            "requirements": selectors.requirements(),
            "my_applications": selectors.applications_of(user)[:20],
            "my_privileges": selectors.privileges_of(user),
            "review": selectors.applications_for_review(review_ids)[:50] if review_ids else [],
            "is_reviewer": bool(review_ids),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def apply(request: HttpRequest, requirement_id: int) -> HttpResponse:
    user = signed_in_user(request)
    requirement = selectors.requirements().filter(pk=requirement_id).first()
    if requirement is None:
        raise NotFoundError("not_found", _("未找到该授权要求"))
    institutions = list(
        Institution.objects.filter(pk__in=access.clinician_institution_ids(user)).order_by("code")
    )
    if not institutions:
        raise DomainError(
            "not_practising", _("您没有外科或住院医师执业身份，不能申请授权"), status=403
        )
    wanted = _int(request.POST.get("institution") or request.GET.get("institution"))
    institution = next((i for i in institutions if i.pk == wanted), institutions[0])
    error = ""
    if request.method == "POST":
        try:
            application = services.submit_application(
                actor=user,
                requirement=requirement,
                institution=institution,
                statement=request.POST.get("statement", ""),
            )
        except DomainError as exc:
            error = exc.message
        else:
            return redirect("credentialing:application", application_id=application.pk)
    eligibility = check_eligibility(user, requirement, institution)
    return render(
        request,
        "credentialing/apply.html",
        {
            "requirement": requirement,
            "institutions": institutions,
            "institution": institution,
            "eligibility": eligibility,
            "error": error,
        },
        status=422 if error else 200,
    )


@login_required
@require_http_methods(["GET"])
def application(request: HttpRequest, application_id: int) -> HttpResponse:
    user = signed_in_user(request)
    app = access.access_application(user, application_id)
    audit.record(actor=user, action="credentialing.application_view", target=app)
    committee = selectors.committee_of(app.institution_id)
    votes = selectors.votes_on(app)
    approvals, refusals = services.tally(app)
    decision = getattr(app, "decision", None)
    evidence = selectors.evidence(app.applicant, app.requirement)
    curves = [
        {
            "title": item.module.display_title,
            "min_score": item.min_score,
            "points": [[row["at"], row["score"]] for row in item.rows],
        }
        for item in evidence
    ]
    return render(
        request,
        "credentialing/application.html",
        {
            "app": app,
            "committee": committee,
            "votes": votes,
            "approvals": approvals,
            "refusals": refusals,
            "decision": decision,
            "signature_ok": services.verify_decision(decision) if decision else None,
            "evidence": evidence,
            "curves": curves,
            "now_eligibility": check_eligibility(app.applicant, app.requirement, app.institution)
            if app.status == Application.Status.UNDER_REVIEW
            else None,
            "may_vote": services.may_vote(user, app),
            "may_decide": (
                committee is not None
                and committee.chair_id == user.pk
                and app.status == Application.Status.UNDER_REVIEW
            ),
            "quorum_reached": committee is not None and approvals + refusals >= committee.quorum,
            "is_applicant": app.applicant_id == user.pk,
        },
    )


def _back(
    request: HttpRequest, application_id: int, error: DomainError | None = None
) -> HttpResponse:
    if error is not None:
        messages.error(request, error.message)
    return redirect("credentialing:application", application_id=application_id)


@login_required
@require_http_methods(["POST"])
def vote(request: HttpRequest, application_id: int) -> HttpResponse:
    user = signed_in_user(request)
    app = access.access_application(user, application_id)
    choice = request.POST.get("approve")
    if choice not in ("yes", "no"):
        return _back(request, app.pk, DomainError("bad_vote", _("请选择赞成或反对")))
    try:
        services.cast_vote(
            actor=user,
            application=app,
            approve=choice == "yes",
            comment=request.POST.get("comment", ""),
        )
    except DomainError as exc:
        return _back(request, app.pk, exc)
    return _back(request, app.pk)


@login_required
@require_http_methods(["POST"])
def decide(request: HttpRequest, application_id: int) -> HttpResponse:
    user = signed_in_user(request)
    app = access.access_application(user, application_id)
    try:
        services.decide_application(actor=user, application=app, note=request.POST.get("note", ""))
    except DomainError as exc:
        return _back(request, app.pk, exc)
    return _back(request, app.pk)


@login_required
@require_http_methods(["POST"])
def withdraw(request: HttpRequest, application_id: int) -> HttpResponse:
    user = signed_in_user(request)
    app = access.access_application(user, application_id)
    try:
        services.withdraw_application(actor=user, application=app)
    except DomainError as exc:
        return _back(request, app.pk, exc)
    return _back(request, app.pk)


@login_required
@require_http_methods(["GET"])
def privileges(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    managed_ids = sorted(
        set(access.admin_institution_ids(user)) | set(access.chaired_institution_ids(user))
    )
    return render(
        request,
        "credentialing/privileges.html",
        {
            "mine": selectors.privileges_of(user),
            "managed": selectors.privileges_at(managed_ids) if managed_ids else [],
        },
    )


@login_required
@require_http_methods(["POST"])
def privilege_status(request: HttpRequest, privilege_id: int) -> HttpResponse:
    user = signed_in_user(request)
    privilege = access.access_privilege(user, privilege_id)
    action = request.POST.get("action", "")
    change = {
        "suspend": services.suspend_privilege,
        "reinstate": services.reinstate_privilege,
        "revoke": services.revoke_privilege,
    }.get(action)
    if change is None:
        messages.error(request, _("未知操作"))
        return redirect("credentialing:privileges")
    try:
        change(actor=user, privilege=privilege, reason=request.POST.get("reason", ""))
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("credentialing:privileges")
