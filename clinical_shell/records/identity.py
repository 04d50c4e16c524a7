"""Resident ID numbers (GB 11643-1999), their masked and searchable forms, and pinyin keys."""

import hashlib
import hmac
import re
from datetime import date

from django.conf import settings
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
    value = raw.strip().upper()
    if not _ID_PATTERN.match(value):
        raise ResidentIdError(_("身份证号须为18位(末位可为X)"))
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise ResidentIdError(_("身份证号中的出生日期无效")) from None
    if check_char(value[:17]) != value[17]:
        raise ResidentIdError(_("身份证号校验位错误"))
    return value


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
    key = settings.OSTEON_ID_HMAC_KEY.encode("utf-8")
    return hmac.new(key, resident_id.encode("ascii"), hashlib.sha256).hexdigest()


def pinyin_initials(name: str) -> str:
    """张三丰 -> zsf; non-Chinese characters keep their lower-case first letter."""
    parts = lazy_pinyin(name, style=Style.FIRST_LETTER, errors="default")
    return "".join(p[:1] for p in parts if p.strip()).lower()


def pinyin_full(name: str) -> str:
    """张三丰 -> zhangsanfeng (no tones, no spaces): prefix search by spelled pinyin."""
    parts = lazy_pinyin(name, style=Style.NORMAL, errors="default")
    return "".join(p for p in parts if p.strip()).lower()
