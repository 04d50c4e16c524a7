"""The new-session form: parse and shape input (names, invitees, times); every error at once."""

import re
from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from clinical_shell.live.models import NAME_PATTERN, name_validator

# a watch page shows at most this many pictures side by side
MAX_STREAMS = 4
_SEPARATORS = re.compile(r"[\s,，、]+")


def _names(raw: str) -> list[str]:
    return [n for n in _SEPARATORS.split(raw.strip()) if n]


def active_users(raw: str) -> list[User]:
    """The active users named in `raw` (user names, comma or space separated), in order."""
    names = _names(raw)
    users = {u.username: u for u in User.objects.filter(username__in=names, is_active=True)}
    unknown = [n for n in names if n not in users]
    if unknown:
        raise forms.ValidationError(
            gettext("没有这些用户：%(names)s") % {"names": ", ".join(unknown)}
        )
    return [users[n] for n in dict.fromkeys(names)]


class _MarksInvalid(forms.Form):
    def mark_invalid(self) -> None:
        for name in self.errors:
            if name in self.fields:
                self.fields[name].widget.attrs.update({"class": "invalid", "aria-invalid": "true"})


class InviteForm(_MarksInvalid):
    invitees = forms.CharField(
        label=_("邀请专家"),
        max_length=2000,
        help_text=_("用户名，用逗号分隔"),
    )

    def clean_invitees(self) -> list[User]:
        return active_users(self.cleaned_data["invitees"])


class LiveSessionForm(_MarksInvalid):
    title = forms.CharField(label=_("直播标题"), max_length=200)
    room = forms.CharField(
        label=_("直播间"),
        max_length=64,
        validators=[name_validator],
        help_text=_("中继配置中的直播间名称，例如 or-3"),
    )
    streams = forms.CharField(
        label=_("画面"),
        max_length=300,
        help_text=_("直播间中的画面名称，用逗号分隔，例如 field, endoscope"),
    )
    invitees = forms.CharField(
        label=_("受邀专家"),
        max_length=2000,
        help_text=_("用户名，用逗号分隔"),
    )
    patient = forms.IntegerField(
        label=_("患者编号"),
        min_value=1,
        required=False,
        help_text=_("真实手术填写患者编号；模拟训练留空"),
    )
    consent_recorded = forms.BooleanField(label=_("患者已签署直播知情同意"), required=False)
    scheduled_start = forms.DateTimeField(
        label=_("计划开始时间"),
        required=False,
        help_text=_("留空表示立即开始"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean_streams(self) -> list[str]:
        names = _names(self.cleaned_data["streams"])
        bad = [n for n in names if not re.fullmatch(NAME_PATTERN, n)]
        if bad:
            raise forms.ValidationError(
                gettext("画面名称只能包含英文字母、数字、下划线和连字符：%(names)s")
                % {"names": ", ".join(bad)}
            )
        if len(set(names)) != len(names):
            raise forms.ValidationError(gettext("画面名称重复"))
        if not names or len(names) > MAX_STREAMS:
            raise forms.ValidationError(gettext("请填写 1 到 %(n)s 个画面") % {"n": MAX_STREAMS})
        return names

    def clean_invitees(self) -> list[User]:
        return active_users(self.cleaned_data["invitees"])

    def clean_scheduled_start(self) -> Any:
        start = self.cleaned_data["scheduled_start"]
        if start is not None and start < timezone.now():
            raise forms.ValidationError(gettext("计划开始时间不能早于现在"))
        return start

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("consent_recorded") and not self.cleaned_data.get("patient"):
            self.add_error("consent_recorded", gettext("未填写患者时不需要记录知情同意"))
        return data
