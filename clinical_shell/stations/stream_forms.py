"""The "stream this station's view" form: who is invited to watch (every error at once)."""

import re

from django import forms
from django.contrib.auth.models import User
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

_SEPARATORS = re.compile(r"[\s,，、]+")


class StationStreamForm(forms.Form):
    invitees = forms.CharField(
        label=_("受邀专家"),
        max_length=2000,
        required=False,
        help_text=_("用户名，用逗号分隔；可以留空，只有您自己观看"),
    )

    def clean_invitees(self) -> list[User]:
        names = [n for n in _SEPARATORS.split(self.cleaned_data["invitees"].strip()) if n]
        users = {u.username: u for u in User.objects.filter(username__in=names, is_active=True)}
        unknown = [n for n in names if n not in users]
        if unknown:
            raise forms.ValidationError(
                gettext("没有这些用户：%(names)s") % {"names": ", ".join(unknown[:20])}
            )
        return [users[n] for n in dict.fromkeys(names)]
