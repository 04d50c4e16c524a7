"""What each refusal or flag code means, in the reader's language.

A refusal's full sentence (from credentialing's checks) is stored as it was shown, in the
language of the person who booked; pages name the rule by its code in the reader's language
and show the recorded sentence beside it.
"""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

LABELS = {
    "privilege_revoked": gettext_noop("授权已被撤销"),
    "privilege_suspended": gettext_noop("授权已暂停"),
    "privilege_expired": gettext_noop("授权已过期"),
    "privilege_not_started": gettext_noop("授权尚未生效"),
    "privilege_lapsed": gettext_noop("授权已失效"),
    "grade_too_low": gettext_noop("授权的手术级别不足"),
    "no_privilege": gettext_noop("没有该手术的授权"),
    "institution_not_graded": gettext_noop("机构未登记手术分级目录"),
    "institution_grade_too_low": gettext_noop("机构不能开展该级别手术"),
    "technique_not_filed": gettext_noop("机构未备案该限制类技术"),
    "technique_filing_suspended": gettext_noop("机构的限制类技术已暂停"),
    "technique_prohibited": gettext_noop("禁止类技术"),
    "unknown_technique": gettext_noop("未知技术"),
    "unknown_grade": gettext_noop("未知手术级别"),
}


def label(code: str) -> str:
    """The rule behind `code`, in the active language (the code itself when unknown)."""
    text = LABELS.get(code)
    return _(text) if text is not None else code
