"""Pages: sign-in (password, then the second factor when the account has one), unlock, sign-out,
password change, the second-factor settings, and the administrators' list of locked accounts."""

import time

from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts import passwords, second_factor, signin, throttle
from clinical_shell.accounts.forms import CodeForm, PasswordChangeForm, SignInForm, UnlockForm
from clinical_shell.accounts.middleware import MUST_CHANGE_KEY
from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import DomainError
from clinical_shell.network import selectors as network

BACKEND = "clinical_shell.accounts.backends.LockoutModelBackend"
# the password was right, the second factor is still to come: {"uid", "at", "next"}
PENDING_KEY = "osteon_second_factor_pending"
PENDING_SECONDS = 300


def _next_target(request: HttpRequest, target: str) -> str:
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return ""
    return target


def _finish(request: HttpRequest, user: User, target: str) -> HttpResponse:
    login(request, user, backend=BACKEND)
    if passwords.must_change(user):
        request.session[MUST_CHANGE_KEY] = True
        return redirect("accounts:password_change")
    return redirect(_next_target(request, target) or "records:patient_search")


def _refusal(
    request: HttpRequest, template: str, context: dict[str, object], exc: DomainError
) -> HttpResponse:
    """Throttling, busy hashing and locks carry their HTTP status; a wrong password is a form."""
    if isinstance(exc, throttle.ThrottledError | throttle.HashingBusyError):
        context["throttled"] = True
        response = render(request, template, {**context, "error": exc.message}, status=exc.status)
        response["Retry-After"] = str(exc.retry_after_s)
        return response
    status = exc.status if isinstance(exc, signin.AccountLockedError) else 200
    return render(request, template, {**context, "error": exc.message}, status=status)


@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    form = SignInForm(request.POST or None)
    # whose platform this is, before anyone signs in (the prefecture center runs it)
    context: dict[str, object] = {"form": form, "institution": network.home_institution_name()}
    if request.method == "POST" and form.is_valid():
        try:
            user = signin.password_step(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
                client=throttle.client_ip(request),
                channel="page",
                request=request,
            )
        except DomainError as exc:
            return _refusal(request, "accounts/sign_in.html", context, exc)
        target = request.GET.get("next", "")
        if second_factor.has_totp(user):
            request.session[PENDING_KEY] = {"uid": user.pk, "at": time.time(), "next": target}
            return redirect("accounts:second_factor")
        signin.signed_in(user, channel="page")
        return _finish(request, user, target)
    return render(request, "accounts/sign_in.html", context)


@require_http_methods(["GET", "POST"])
def second_factor_page(request: HttpRequest) -> HttpResponse:
    pending = request.session.get(PENDING_KEY)
    if not pending or time.time() - float(pending["at"]) > PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return redirect("accounts:sign_in")
    user = User.objects.filter(pk=pending["uid"], is_active=True).first()
    if user is None:
        request.session.pop(PENDING_KEY, None)
        return redirect("accounts:sign_in")
    form = CodeForm(request.POST or None)
    context: dict[str, object] = {"form": form}
    if request.method == "POST" and form.is_valid():
        try:
            signin.second_factor_step(
                user=user,
                code=form.cleaned_data["code"],
                client=throttle.client_ip(request),
                channel="second_factor",
                request=request,
            )
        except DomainError as exc:
            return _refusal(request, "accounts/second_factor.html", context, exc)
        request.session.pop(PENDING_KEY, None)
        signin.signed_in(user, channel="page")
        return _finish(request, user, str(pending.get("next", "")))
    return render(request, "accounts/second_factor.html", context)


@require_http_methods(["GET", "POST"])
def unlock(request: HttpRequest) -> HttpResponse:
    form = UnlockForm(request.POST or None)
    context: dict[str, object] = {"form": form}
    if request.method == "POST" and form.is_valid():
        try:
            user = signin.unlock_with_second_factor(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
                code=form.cleaned_data["code"],
                client=throttle.client_ip(request),
                request=request,
            )
        except DomainError as exc:
            return _refusal(request, "accounts/unlock.html", context, exc)
        return _finish(request, user, "")
    return render(request, "accounts/unlock.html", context)


@require_http_methods(["POST"])
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("accounts:sign_in")


@login_required
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    form = PasswordChangeForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            passwords.change_password(
                user=user,
                old_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password"],
            )
        except DomainError as exc:
            error = exc.message
        else:
            # this session goes on; every other one no longer matches the password and ends
            update_session_auth_hash(request, user)
            request.session.pop(MUST_CHANGE_KEY, None)
            return render(request, "accounts/password_changed.html")
    return render(
        request,
        "accounts/password_change.html",
        {"form": form, "error": error, "forced": passwords.must_change(user)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def security(request: HttpRequest) -> HttpResponse:
    """Second-factor settings: enrol TOTP (secret and QR shown on this answer only, active once
    a code confirms it), regenerate recovery codes (shown once)."""
    user = signed_in_user(request)
    context: dict[str, object] = {}
    action = request.POST.get("action", "")
    try:
        if action == "begin":
            context["enrolment"] = second_factor.begin_totp(user=user)
        elif action == "confirm":
            context["recovery_codes"] = second_factor.confirm_totp(
                user=user, code=request.POST.get("code", "")[:40]
            )
        elif action == "regenerate":
            context["recovery_codes"] = second_factor.regenerate_recovery_codes(
                user=user, code=request.POST.get("code", "")[:40]
            )
    except DomainError as exc:
        context["error"] = exc.message
    state = second_factor.state_for(user)
    context.update(
        has_totp=bool(state.totp_secret),
        pending=bool(state.totp_pending_secret) and "enrolment" not in context,
        codes_left=second_factor.recovery_codes_left(user),
    )
    status = 422 if "error" in context else 200
    return render(request, "accounts/security.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def locks(request: HttpRequest) -> HttpResponse:
    """Locked accounts an administrator may unlock (members of the institutions they manage)."""
    actor = signed_in_user(request)
    if not signin.lockable_user_ids(actor):
        raise DomainError("not_administrator", _("只有管理员可以解锁账户"), status=403)
    message = ""
    if request.method == "POST":
        try:
            user_id = int(request.POST.get("user_id", ""))
        except ValueError:
            raise DomainError("bad_user", _("未找到该账户"), status=404) from None
        unlocked = signin.unlock_by_administrator(actor=actor, user_id=user_id)
        message = _("已解锁：%(username)s") % {"username": unlocked.get_username()}
    return render(
        request,
        "accounts/locks.html",
        {"rows": signin.locked_users(actor), "message": message},
    )
