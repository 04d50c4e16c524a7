"""Resident ID numbers (GB 11643-1999), their masked and searchable forms, and pinyin keys."""

import hashlib
import hmac
import re
import unicodedata
from datetime import date

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _
from pypinyin import Style, lazy_pinyin

# ISO 7064 MOD 11-2 weights 2^(17-i) mod 11 for the 17 body digits
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"  # index = weighted sum mod 11
_ID_PATTERN = re.compile(r"^[1-9]\d{16}[\dX]$")


class ResidentIdError(ValueError):
    """A resident ID number that GB 11643 rejects; the message says why."""


def check_char(body17: str) -> str:
    total = sum(int(d) * w for d, w in zip(body17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def normalize_resident_id(raw: str) -> str:
    """Validate an 18-character resident ID and return it upper-cased; raise ResidentIdError."""
    # a Chinese input method types full-width digits (１２３) and ｘ: NFKC makes them ASCII
    value = unicodedata.normalize("NFKC", raw).strip().upper()
    if not _ID_PATTERN.match(value):
        raise ResidentIdError(_("身份证号须为18位(末位可为X)"))
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise ResidentIdError(_("身份证号中的出生日期无效")) from None
    if check_char(value[:17]) != value[17]:
        raise ResidentIdError(_("身份证号校验位错误"))
    return value


class PhoneError(ValueError):
    """A phone number that is neither a mainland mobile nor a landline with its area code."""


# separators people type inside a number: spaces, hyphens, brackets around the area code, dots
_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
# mainland mobile numbers: 11 digits, 1 then 3-9 (MIIT numbering plan), optional +86 / 0086
_MOBILE = re.compile(r"^(?:\+86|0086|86)?(1[3-9]\d{9})$")
# landline: trunk 0 + area code (010 and 02x are two digits after the 0, the rest three) + a
# local number of 7 or 8 digits, which never starts with 0 (that would be another area code)
_LANDLINE = re.compile(r"^(0(?:10|2\d|[3-9]\d{2}))([1-9]\d{6,7})$")


def normalize_phone(raw: str) -> str:
    """A patient's phone number in one stored form, or "" for none; raise PhoneError.

    Mobile: 11 digits (`13812345678`); landline: area code, hyphen, number (`0878-3123456`).
    Full-width digits and the separators people type are accepted.
    """
    value = _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw))
    if not value:
        return ""
    mobile = _MOBILE.match(value)
    if mobile:
        return mobile.group(1)
    landline = _LANDLINE.match(value)
    if landline:
        return f"{landline.group(1)}-{landline.group(2)}"
    raise PhoneError(
        _("电话号码格式不正确：手机号为 1 开头的 11 位数字，座机须带区号(如 0878-3123456)")
    )


def birth_date_of(resident_id: str) -> date:
    return date(int(resident_id[6:10]), int(resident_id[10:12]), int(resident_id[12:14]))


def sex_of(resident_id: str) -> str:
    # the 17th digit (sequence code) is odd for men, even for women
    return "M" if int(resident_id[16]) % 2 else "F"


def mask_resident_id(resident_id: str) -> str:
    """5323**********1234: the area prefix and last four stay visible in lists."""
    if len(resident_id) != 18:
        return "*" * len(resident_id)
    return resident_id[:4] + "*" * 10 + resident_id[-4:]


def resident_id_digest(resident_id: str) -> str:
    """Keyed digest for exact search: the index column never holds the number itself."""
    if not settings.OSTEON_ID_HMAC_KEY:
        raise ImproperlyConfigured(
            "OSTEON_ID_HMAC_KEY 未配置 / not configured (docs/security.md, Secrets)"
        )
    key = settings.OSTEON_ID_HMAC_KEY.encode("utf-8")
    return hmac.new(key, resident_id.encode("ascii"), hashlib.sha256).hexdigest()


# Chinese characters (CJK unified ideographs, extension A, compatibility ideographs)
_HANZI_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
# surnames read otherwise than the character's everyday reading, as the 现代汉语词典 gives them
# (单 is dān in words, Shàn as a surname); pypinyin's phrase table already reads the compound
# surnames (尉迟 yùchí, 万俟 mòqí, 长孙 zhǎngsūn)
SURNAME_READINGS = {
    "单": "shan4",
    "曾": "zeng1",
    "解": "xie4",
    "仇": "qiu2",
    "朴": "piao2",
    "查": "zha1",
    "区": "ou1",
    "盖": "ge3",
    "覃": "qin2",
    "缪": "miao4",
    "翟": "zhai2",
    "召": "shao4",
    "种": "chong2",
    "乐": "yue4",
    "秘": "bi4",
    "任": "ren2",
    "华": "hua4",
    "纪": "ji3",
    "燕": "yan1",
    "宁": "ning4",
    "过": "guo1",
    "黑": "he4",
    "员": "yun4",
}


def name_syllables(name: str) -> list[tuple[str, int]]:
    """张三丰 -> [("zhang", 1), ("san", 1), ("feng", 1)]: a person's name read syllable by syllable.

    Tones are 1-4, 5 for the neutral tone; ü is spelled v (吕 -> lv). The first character is
    read as a surname. A run of other letters or digits (a Latin name) is one item with tone 0,
    lower-cased; punctuation (the · in 阿依古丽·买买提) and spaces are dropped, as are
    characters pypinyin cannot read.
    """
    items: list[tuple[str, int]] = []

    def other(text: str) -> None:
        for word in _NOT_ALNUM.split(text.lower()):
            if word:
                items.append((word, 0))

    position = 0
    for run in _HANZI_RUN.finditer(name):
        other(name[position : run.start()])
        readings = lazy_pinyin(run.group(), style=Style.TONE3, neutral_tone_with_five=True)
        if run.start() == 0 and run.group()[0] in SURNAME_READINGS:
            readings[0] = SURNAME_READINGS[run.group()[0]]
        for reading in readings:
            # an unreadable character comes back as itself, without a tone digit
            if reading[-1:] in ("1", "2", "3", "4", "5") and reading[:-1].isascii():
                items.append((reading[:-1], int(reading[-1])))
        position = run.end()
    other(name[position:])
    return items


def pinyin_initials(name: str) -> str:
    """张三丰 -> zsf; a Latin word gives its lower-case first letter."""
    return "".join(spelling[:1] for spelling, _tone in name_syllables(name))


def pinyin_full(name: str) -> str:
    """张三丰 -> zhangsanfeng (no tones, no spaces): prefix search by spelled pinyin."""
    return "".join(spelling for spelling, _tone in name_syllables(name))


def pinyin_sort_key(name: str) -> str:
    """张三丰 -> zhang1san1feng1: names in 汉语拼音 order when these keys are compared as text.

    Syllable by syllable, then tone (each syllable ends in its tone digit, and digits sort
    before letters, so 李安 li3an1 comes before 连 lian2, as in a dictionary). Only a-z and 0-9
    appear, which every database collation orders alike. A Latin word ends in 0. Names with
    the same key (张伟, 章伟) are told apart by the caller (by name, then id).
    """
    return "".join(f"{spelling}{tone}" for spelling, tone in name_syllables(name))
