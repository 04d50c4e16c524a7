"""Administration pages: the audit log, accounts, institutions and departments, stations and
enrolment codes. Thin: parse, check access, one selector or service, render."""

import csv
from collections.abc import Iterator
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from bridge.keys import shell_public_key
from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.administration import access, selectors, services
from clinical_shell.administration.forms import InstitutionForm, NewInstitutionForm
from clinical_shell.audit.labels import action_choices, action_label
from clinical_shell.audit.models import AuditEvent
from clinical_shell.errors import DomainError, NotFoundError
from clinical_shell.network.models import Department, Institution, Membership, Person, Role
from clinical_shell.stations.selectors import presence_of


def _int_or_none(raw: str | None, field: str) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise DomainError(
            "bad_filter", _("%(field)s 须为数字") % {"field": field}, status=422
        ) from None


def _date_or_none(raw: str | None) -> date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise DomainError("bad_filter", _("日期格式应为 YYYY-MM-DD"), status=422) from None


def audit_filter_from(query: QueryDict) -> selectors.AuditFilter:
    outcome = query.get("outcome", "")
    if outcome not in ("", *AuditEvent.Outcome.values):
        raise DomainError("bad_filter", _("未知的结果筛选"), status=422)
    return selectors.AuditFilter(
        patient_id=_int_or_none(query.get("patient_id"), _("患者编号")),
        username=query.get("username", "").strip(),
        action_prefix=query.get("action", "").strip(),
        outcome=outcome,
        since=_date_or_none(query.get("since")),
        until=_date_or_none(query.get("until")),
    )


def _tristate(raw: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(raw or "")


def _user_or_404(user_id: int) -> User:
    found = selectors.account(user_id)
    if found is None:
        raise NotFoundError("user_not_found", _("未找到该账户"))
    return found


@login_required
def index(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    can_audit = access.can_read_audit(user)
    can_manage = access.administered_institution_ids(user) != []
    if not (can_audit or can_manage):
        access.require_administrator(user)
    return render(
        request,
        "administration/index.html",
        {"can_audit": can_audit, "can_manage": can_manage},
    )


# ---- the audit log ------------------------------------------------------------------------------


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    access.require_audit_reader(user)
    audit_filter = audit_filter_from(request.GET)
    upto_id = selectors.latest_event_id()  # the page shows the log without this read's event
    events = selectors.audit_events(audit_filter, upto_id=upto_id)
    page = Paginator(events, selectors.AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    services.record_audit_read(actor=user, audit_filter=audit_filter, export=False)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "administration/audit.html",
        {
            "page": page,
            "f": audit_filter,
            "query": query.urlencode(),
            "outcomes": AuditEvent.Outcome.choices,
            # the action box suggests codes by their labels; it still takes any prefix
            "actions": action_choices(),
        },
    )


CSV_COLUMNS = (
    "id",
    "occurred_at",
    "actor_username",
    "action",
    "action_label",
    "outcome",
    "patient_id",
    "target_type",
    "target_id",
    "reason",
    "source_ip",
    "detail",
)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(events: Iterator[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(CSV_COLUMNS)  # BOM: spreadsheet programs read UTF-8
    for event in events:
        yield writer.writerow(
            [
                event.pk,
                event.occurred_at.isoformat(),
                event.actor_username,
                event.action,
                action_label(event.action),
                event.outcome,
                event.patient_id if event.patient_id is not None else "",
                event.target_type,
                event.target_id,
                event.reason,
                event.source_ip,
                event.detail,
            ]
        )


@login_required
def audit_export(request: HttpRequest) -> StreamingHttpResponse:
    user = signed_in_user(request)
    access.require_audit_reader(user)
    audit_filter = audit_filter_from(request.GET)
    # the rows as they stood when asked: not the export's own event, nor later ones
    upto_id = selectors.latest_event_id()
    services.record_audit_read(actor=user, audit_filter=audit_filter, export=True)
    events = selectors.audit_events(audit_filter, upto_id=upto_id).iterator(chunk_size=2000)
    response = StreamingHttpResponse(_csv_rows(events), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response


# ---- accounts -----------------------------------------------------------------------------------


@login_required
def user_list(request: HttpRequest) -> HttpResponse:
    actor = signed_in_user(request)
    scope = access.require_administrator(actor)
    user_filter = selectors.UserFilter(
        query=request.GET.get("q", "").strip(),
        institution_id=_int_or_none(request.GET.get("institution"), _("机构")),
        role=request.GET.get("role", ""),
        active=_tristate(request.GET.get("active")),
        locked=_tristate(request.GET.get("locked")),
    )
    page = Paginator(selectors.accounts(scope, user_filter), selectors.USER_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "administration/users.html",
        {
            "page": page,
            "f": user_filter,
            "query": query.urlencode(),
            "institutions": selectors.manageable_institutions(scope),
            "roles": Role.choices,
            "locked": selectors.locked_usernames(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def user_create(request: HttpRequest) -> HttpResponse:
    actor = signed_in_user(request)
    scope = access.require_administrator(actor)
    context: dict[str, object] = {
        "institutions": selectors.manageable_institutions(scope).filter(active=True),
        "roles": Role.choices,
        "titles": Person.Title.choices,
        "form": request.POST,
    }
    if request.method == "POST":
        institution_id = _int_or_none(request.POST.get("institution"), _("机构"))
        institution = Institution.objects.filter(pk=institution_id or 0).first()
        if institution is None:
            context["error"] = _("请选择机构")
        else:
            try:
                created = services.create_account(
                    actor=actor,
                    username=request.POST.get("username", ""),
                    full_name=request.POST.get("full_name", ""),
                    title=request.POST.get("title", Person.Title.NONE),
                    institution=institution,
                    role=request.POST.get("role", ""),
                    password=request.POST.get("password", ""),
                )
            except DomainError as exc:
                if exc.status == 403:
                    raise
                context["error"] = exc.message
            else:
                return render(
                    request,
                    "administration/password_shown.html",
                    {"account": created.person.user, "password": created.password, "new": True},
                )
    return render(
        request,
        "administration/user_new.html",
        context,
        status=422 if "error" in context else 200,
    )


@login_required
def user_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    actor = signed_in_user(request)
    scope = access.require_administrator(actor)
    account = _user_or_404(user_id)
    access.require_manages_user(actor, account)
    return render(
        request,
        "administration/user_detail.html",
        {
            "account": account,
            "memberships": Membership.objects.filter(person__user_id=user_id)
            .select_related("institution", "department")
            .order_by("-active", "institution__code", "role"),
            "is_locked": selectors.is_locked(account),
            "institutions": selectors.manageable_institutions(scope).filter(active=True),
            "roles": Role.choices,
        },
    )


# actions that ask first: GET shows the confirmation, POST does it
_CONFIRMED = {
    "deactivate": (services.deactivate_account, "停用账户"),
    "reactivate": (services.reactivate_account, "恢复账户"),
    "unlock": (services.unlock_account, "解锁账户"),
    "reset-password": (services.reset_password, "重置密码"),
}


@login_required
@require_http_methods(["GET", "POST"])
def user_action(request: HttpRequest, user_id: int, action: str) -> HttpResponse:
    actor = signed_in_user(request)
    access.require_administrator(actor)
    if action not in _CONFIRMED:
        raise NotFoundError("not_found", _("未找到该操作"))
    account = _user_or_404(user_id)
    access.require_manages_user(actor, account)
    service, _label = _CONFIRMED[action]
    if request.method == "GET":
        return render(
            request, "administration/confirm.html", {"account": account, "action": action}
        )
    result = service(actor=actor, user=account)
    if action == "reset-password":
        return render(
            request,
            "administration/password_shown.html",
            {"account": account, "password": result, "new": False},
        )
    return redirect("administration:user_detail", user_id=user_id)


@login_required
@require_POST
def role_add(request: HttpRequest, user_id: int) -> HttpResponse:
    actor = signed_in_user(request)
    account = _user_or_404(user_id)
    institution_id = _int_or_none(request.POST.get("institution"), _("机构"))
    institution = Institution.objects.filter(pk=institution_id or 0).first()
    if institution is None:
        raise NotFoundError("institution_not_found", _("未找到该机构"))
    services.add_role(
        actor=actor,
        user=account,
        institution=institution,
        role=request.POST.get("role", ""),
    )
    return redirect("administration:user_detail", user_id=user_id)


@login_required
@require_POST
def role_remove(request: HttpRequest, user_id: int, membership_id: int) -> HttpResponse:
    actor = signed_in_user(request)
    membership = Membership.objects.filter(pk=membership_id, person__user_id=user_id).first()
    if membership is None:
        raise NotFoundError("membership_not_found", _("未找到该角色"))
    services.remove_role(actor=actor, membership=membership)
    return redirect("administration:user_detail", user_id=user_id)


# ---- institutions and departments ---------------------------------------------------------------


@login_required
def institution_list(request: HttpRequest) -> HttpResponse:
    actor = signed_in_user(request)
    scope = access.require_administrator(actor)
    return render(
        request,
        "administration/institutions.html",
        {
            "institutions": selectors.manageable_institutions(scope).prefetch_related(
                "departments"
            ),
            "can_create": scope is None,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def institution_detail(request: HttpRequest, institution_id: int) -> HttpResponse:
    actor = signed_in_user(request)
    institution = Institution.objects.filter(pk=institution_id).first()
    if institution is None:
        raise NotFoundError("institution_not_found", _("未找到该机构"))
    access.require_manages_institution(actor, institution.pk)
    error = ""
    if request.method == "POST":
        try:
            services.create_department(
                actor=actor,
                institution=institution,
                name=request.POST.get("name", ""),
                code=request.POST.get("code", ""),
            )
        except DomainError as exc:
            error = exc.message
        else:
            return redirect("administration:institution_detail", institution_id=institution_id)
    return render(
        request,
        "administration/institution.html",
        {
            "institution": institution,
            "departments": selectors.departments_of(institution),
            "history": selectors.institution_history(institution.pk),
            "error": error,
        },
        status=422 if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def institution_create(request: HttpRequest) -> HttpResponse:
    actor = signed_in_user(request)
    access.require_center_administrator(actor)
    form = NewInstitutionForm(
        request.POST if request.method == "POST" else None,
        initial={"level": Institution.Level.TOWNSHIP},
        parents=list(selectors.parent_choices()),
    )
    if request.method == "POST":
        code = request.POST.get("code", "")
        if form.is_valid():
            try:
                institution = services.create_institution(
                    actor=actor, code=code, change=form.change()
                )
            except services.InstitutionInvalidError as exc:
                form.add_service_errors(exc.errors)
            else:
                return redirect("administration:institution_detail", institution_id=institution.pk)
        else:
            form.add_service_errors(
                services.new_institution_errors(actor=actor, code=code, change=form.change())
            )
        form.mark_invalid()
    return render(
        request,
        "administration/institution_edit.html",
        {"institution": None, "form": form, "network_fields_locked": False},
        status=422 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def institution_edit(request: HttpRequest, institution_id: int) -> HttpResponse:
    actor = signed_in_user(request)
    institution = selectors.institution(institution_id)
    if institution is None:
        raise NotFoundError("institution_not_found", _("未找到该机构"))
    scope = access.require_administrator(actor)
    access.require_manages_institution(actor, institution.pk)
    form = InstitutionForm(
        request.POST if request.method == "POST" else None,
        initial=InstitutionForm.initial_of(institution),
        parents=[p for p in selectors.parent_choices() if p.pk != institution.pk],
        network_fields_locked=scope is not None,
    )
    if request.method == "POST":
        if form.is_valid():
            try:
                services.update_institution(
                    actor=actor, institution=institution, change=form.change()
                )
            except services.InstitutionInvalidError as exc:
                form.add_service_errors(exc.errors)
            else:
                return redirect("administration:institution_detail", institution_id=institution_id)
        else:
            # the form's own refusals (a number that is not one) and the rules', together
            form.add_service_errors(
                services.institution_errors(
                    actor=actor, institution=institution, change=form.change()
                )
            )
        form.mark_invalid()
    return render(
        request,
        "administration/institution_edit.html",
        {"institution": institution, "form": form, "network_fields_locked": scope is not None},
        status=422 if form.errors else 200,
    )


# ---- stations and enrolment codes ---------------------------------------------------------------

ENROLMENT_TTL_CHOICES_MIN = (15, 60, 240, 1440, 10080)


def _ttl_choices() -> list[tuple[int, str]]:
    """(minutes, label) for the enrolment code's lifetime, in the page's language."""
    choices = []
    for minutes in ENROLMENT_TTL_CHOICES_MIN:
        if minutes < 60:
            label = ngettext("%(n)s 分钟", "%(n)s 分钟", minutes) % {"n": minutes}
        elif minutes < 1440:
            hours = minutes // 60
            label = ngettext("%(n)s 小时", "%(n)s 小时", hours) % {"n": hours}
        else:
            days = minutes // 1440
            label = ngettext("%(n)s 天", "%(n)s 天", days) % {"n": days}
        choices.append((minutes, label))
    return choices


@login_required
@require_http_methods(["GET", "POST"])
def station_list(request: HttpRequest) -> HttpResponse:
    """Stations of the institutions the administrator manages, and issuing an enrolment code
    (a POST answers with the code, shown this once)."""
    actor = signed_in_user(request)
    scope = access.require_administrator(actor)
    issued = None
    errors: dict[str, str] = {}
    if request.method == "POST":
        institution_id = _int_or_none(request.POST.get("institution"), _("机构"))
        institution = selectors.institution(institution_id or 0)
        ttl_minutes = _int_or_none(request.POST.get("ttl_minutes"), _("有效期")) or 60
        if institution is None:
            errors["institution"] = _("请选择机构")
        else:
            try:
                issued = services.issue_enrolment_code(
                    actor=actor,
                    institution=institution,
                    room=request.POST.get("room", ""),
                    ttl=timedelta(minutes=ttl_minutes),
                )
            except DomainError as exc:
                if exc.status == 403:
                    raise
                errors["room" if exc.code == "room_required" else "form"] = exc.message
    now = timezone.now()
    rows = [(s, presence_of(s, now=now)) for s in selectors.stations_in(scope)]
    codes = selectors.enrolment_codes_in(scope)[:20]
    return render(
        request,
        "administration/stations.html",
        {
            "rows": rows,
            "codes": codes,
            "institutions": selectors.manageable_institutions(scope).filter(active=True),
            "ttl_choices": _ttl_choices(),
            "issued": issued,
            "shell_key": shell_public_key(settings.OSTEON_BRIDGE_KEY_DIR) if issued else "",
            "bridge_url": settings.OSTEON_BRIDGE_URL,
            "errors": errors,
            "form": request.POST,
            "now": now,
        },
        status=422 if errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def station_revoke(request: HttpRequest, station_id: int) -> HttpResponse:
    """GET: what revoking means, and the reason asked for; POST: revoke."""
    actor = signed_in_user(request)
    access.require_administrator(actor)
    station = selectors.station(station_id)
    if station is None:
        raise NotFoundError("station_not_found", _("未找到该工作站"))
    access.require_manages_institution(actor, station.institution_id)
    error = ""
    if request.method == "POST":
        try:
            services.revoke_station(
                actor=actor, station=station, reason=request.POST.get("reason", "")
            )
        except DomainError as exc:
            if exc.status == 403:
                raise
            error = exc.message
        else:
            return redirect("administration:stations")
    return render(
        request,
        "administration/station_revoke.html",
        {"station": station, "presence": presence_of(station), "error": error},
        status=422 if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def department_edit(request: HttpRequest, department_id: int) -> HttpResponse:
    actor = signed_in_user(request)
    department = (
        Department.objects.filter(pk=department_id).select_related("institution", "head").first()
    )
    if department is None:
        raise NotFoundError("department_not_found", _("未找到该科室"))
    access.require_manages_institution(actor, department.institution_id)
    members = selectors.active_members(department.institution_id)
    error = ""
    if request.method == "POST":
        head_id = _int_or_none(request.POST.get("head"), _("科主任"))
        head = Person.objects.filter(pk=head_id).select_related("user").first() if head_id else None
        try:
            services.update_department(
                actor=actor,
                department=department,
                name=request.POST.get("name", ""),
                code=request.POST.get("code", ""),
                head=head,
            )
        except DomainError as exc:
            error = exc.message
        else:
            return redirect(
                "administration:institution_detail", institution_id=department.institution_id
            )
    return render(
        request,
        "administration/department.html",
        {"department": department, "members": members, "error": error, "form": request.POST},
        status=422 if error else 200,
    )
