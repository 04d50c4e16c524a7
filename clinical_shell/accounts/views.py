"""Sign-in and sign-out pages."""

from django import forms
from django.contrib.auth import login, logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.services import check_sign_in
from clinical_shell.errors import DomainError


class SignInForm(forms.Form):
    username = forms.CharField(label=_("用户名"), max_length=150)
    password = forms.CharField(label=_("密码"), widget=forms.PasswordInput)
    totp_code = forms.CharField(label=_("动态验证码(如已启用)"), max_length=8, required=False)


@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    form = SignInForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            user = check_sign_in(
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password"],
                totp_code=form.cleaned_data["totp_code"],
            )
        except DomainError as exc:
            error = exc.message
        else:
            login(request, user, backend="clinical_shell.accounts.backends.LockoutModelBackend")
            target = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = ""
            return redirect(target or "records:patient_search")
    return render(request, "accounts/sign_in.html", {"form": form, "error": error})


@require_http_methods(["POST"])
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("accounts:sign_in")
