"""Why a result was rejected or refused, or why a session was aborted: a stable code with its
parameters, rendered in the reader's language.

Rows keep three things: the code (stable, for filters and programs), the parameters (JSON: the
hashes, names and numbers the sentence quotes) and a bilingual "中文 / English" text for the
audit trail (written once, never re-rendered). Pages and the API render `describe(code, params)`
through gettext at read time, so a Chinese page says it in Chinese and an English one in
English. A code this module does not know (a station's own words, an older row) falls back to
the stored text.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import override


def _list(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)


# code -> sentence in the active language (msgids are the Chinese texts; params fill %(name)s)
_SENTENCES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    # results refused on arrival (RefusedMessage; the bridge error code is kept apart)
    "revoked": lambda p: _("该工作站已被吊销"),
    "wrong_station": lambda p: _("成绩声称来自工作站 %(claimed)s，却由工作站 %(sender)s 发送") % p,
    "bad_signature": lambda p: _("签名与该工作站的密钥不符（成绩被篡改或由其他工作站签名）"),
    "bad_recording": lambda p: _("录制文件与签名中的哈希不符"),
    "message_id_used": lambda p: _("该消息编号已被使用"),
    "session_id_used": lambda p: _("该训练编号已被其他工作站使用"),
    "session_has_result": lambda p: _("该训练已有成绩（另一消息编号）"),
    "unknown_user": lambda p: _("平台中没有用户 %(username)s") % p,
    "session_user_mismatch": lambda p: _("成绩的用户与训练安排的用户不同"),
    "never_signed_in": lambda p: _("该用户未在此工作站登录"),
    "session_mismatch": lambda p: (
        _("成绩的场景 %(scenario)s 与训练安排的场景 %(expected)s 不同") % p
    ),
    "plan_mismatch": lambda p: (
        _("成绩签名的规划摘要 %(signed)s 与训练发送的规划 %(expected)s 不符") % p
    ),
    # results rejected by the replay (SessionResult.rejection_*)
    "case_missing": lambda p: _("平台上找不到成绩所用病例 %(case)s") % p,
    "recording_scenario": lambda p: (
        _("录制文件的场景 %(recorded)s 与成绩的场景 %(expected)s 不同") % p
    ),
    "wrong_instrument": lambda p: (
        _("录制所用器械 %(used)s 不是该场景规定的器械 %(prescribed)s") % p
    ),
    "unreplayable": lambda p: _("录制文件无法重放：%(detail)s") % p,
    "state_mismatch": lambda p: _("重放的最终状态哈希 %(replayed)s 与签名的 %(signed)s 不符") % p,
    "metrics_mismatch": lambda p: (
        _("重放的指标与签名不符：%(metrics)s") % {"metrics": _list(p.get("metrics", []))}
    ),
    "score_mismatch": lambda p: _("重放的得分 %(replayed)s 与签名的 %(signed)s 不符") % p,
    # sessions aborted (StationSession.abort_*)
    "station_lost": lambda p: _("工作站失联超过 %(grace_s)s 秒，训练被判定中断") % p,
    "station_refused": lambda p: _("工作站未能开始训练：%(error)s") % p,
}


@dataclass(frozen=True)
class Reason:
    """A reason as stored: `code`, `params` and the bilingual `text` for the audit trail."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """ "中文 / English", fixed at the time of writing (audit entries and stored text)."""
        with override("zh-hans"):
            chinese = describe(self.code, self.params)
        with override("en"):
            english = describe(self.code, self.params)
        return chinese if chinese == english else f"{chinese} / {english}"


def known(code: str) -> bool:
    return code in _SENTENCES


def describe(code: str, params: Mapping[str, Any] | None = None, fallback: str = "") -> str:
    """The reason in the active language; `fallback` (the stored text) for an unknown code or
    parameters that do not fit the sentence."""
    sentence = _SENTENCES.get(code)
    if sentence is None:
        return fallback
    try:
        return sentence(params or {})
    except (KeyError, TypeError, ValueError):
        return fallback or code
