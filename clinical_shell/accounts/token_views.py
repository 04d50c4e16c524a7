"""The page where a person mints, lists and revokes their own machine tokens."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts import second_factor, tokens
from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import DomainError

# lifetimes offered on the page (hours); the API takes any up to tokens.max_ttl()
LIFETIMES_H = (1, 8, 24, 24 * 7, 24 * 30)


@login_required
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    issued: tokens.IssuedToken | None = None
    error = ""
    status = 200
    if request.method == "POST":
        try:
            hours = int(request.POST.get("lifetime_h", "8"))
        except ValueError:
            hours = 0
        try:
            issued = tokens.issue(
                actor=user,
                name=request.POST.get("name", "")[:100],
                scopes=request.POST.getlist("scopes"),
                ttl=timedelta(hours=hours) if hours in LIFETIMES_H else timedelta(0),
                totp_code=request.POST.get("totp_code", "").strip()[:32],
            )
        except DomainError as exc:
            error, status = str(exc.message), exc.status
    allowed = sorted(tokens.mintable_scopes(user), key=lambda s: (s.split(":")[1], s))
    return render(
        request,
        "accounts/tokens.html",
        {
            "issued": issued,
            "error": error,
            "rows": [(t, tokens.is_live(t)) for t in tokens.tokens_of(user)[:200]],
            "allowed_scopes": allowed,
            "lifetimes": [(h, _lifetime_label(h)) for h in LIFETIMES_H],
            "needs_totp": second_factor.has_totp(user),
        },
        status=status,
    )


def _lifetime_label(hours: int) -> str:
    if hours < 24:
        return str(_("%(n)d 小时") % {"n": hours})
    return str(_("%(n)d 天") % {"n": hours // 24})


@login_required
@require_http_methods(["POST"])
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    tokens.revoke(actor=signed_in_user(request), token_id=token_id)
    return redirect("accounts:tokens")
