"""GB 11643 resident ID checks, masking, keyed digests and pinyin keys."""

from datetime import date

import pytest

from clinical_shell.records.identity import (
    ResidentIdError,
    birth_date_of,
    check_char,
    mask_resident_id,
    normalize_resident_id,
    pinyin_full,
    pinyin_initials,
    resident_id_digest,
    sex_of,
)


def test_check_character_matches_the_standard_example() -> None:
    # the example of GB 11643-1999 annex: 11010519491231002X
    assert check_char("11010519491231002") == "X"
    assert normalize_resident_id("11010519491231002x") == "11010519491231002X"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("11010519491231002", "18"),
        ("110105194912310021", "校验位"),
        ("110105194902300026", "出生日期"),
        ("01010519491231002X", "18"),
        ("1101051949123100AX", "18"),
    ],
)
def test_it_rejects_bad_resident_ids(raw: str, why: str) -> None:
    with pytest.raises(ResidentIdError, match=why):
        normalize_resident_id(raw)


def test_birth_date_sex_and_mask_come_from_the_number() -> None:
    rid = "532322195803141230"
    assert birth_date_of(rid) == date(1958, 3, 14)
    assert sex_of(rid) == "M"
    assert mask_resident_id(rid) == "5323**********1230"


def test_digest_is_keyed_and_hides_the_number(settings: object) -> None:
    digest = resident_id_digest("532322195803141230")
    assert len(digest) == 64 and "532322" not in digest
    settings.OSTEON_ID_HMAC_KEY = "another-key"  # type: ignore[attr-defined]
    assert resident_id_digest("532322195803141230") != digest


def test_pinyin_keys_of_chinese_names() -> None:
    assert pinyin_initials("张三丰") == "zsf"
    assert pinyin_full("张三丰") == "zhangsanfeng"
    assert pinyin_initials("李小龙") == "lxl"
