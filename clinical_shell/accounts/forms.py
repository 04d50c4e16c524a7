"""Forms of the sign-in, unlock, password and second-factor pages."""

from django import forms
from django.utils.translation import gettext_lazy as _


class SignInForm(forms.Form):
    username = forms.CharField(label=_("用户名"), max_length=150)
    password = forms.CharField(label=_("密码"), max_length=4096, widget=forms.PasswordInput)


class CodeForm(forms.Form):
    code = forms.CharField(label=_("动态验证码或恢复码"), max_length=40)


class UnlockForm(SignInForm):
    code = forms.CharField(label=_("动态验证码或恢复码"), max_length=40)


class PasswordChangeForm(forms.Form):
    old_password = forms.CharField(label=_("当前密码"), max_length=4096, widget=forms.PasswordInput)
    new_password = forms.CharField(label=_("新密码"), max_length=4096, widget=forms.PasswordInput)
    new_password_again = forms.CharField(
        label=_("再次输入新密码"), max_length=4096, widget=forms.PasswordInput
    )

    def clean(self) -> dict[str, str]:
        data: dict[str, str] = super().clean() or {}
        if data.get("new_password") != data.get("new_password_again"):
            self.add_error("new_password_again", _("两次输入的新密码不一致"))
        return data
