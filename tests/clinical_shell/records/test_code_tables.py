"""Offline code tables: search by code, Chinese name and pinyin initials, over the API too."""

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from shell_personas import Personas

from clinical_shell.records import coding

CODES_URL = reverse("api-v1:record_codes")


@pytest.mark.parametrize(
    ("system", "text", "first"),
    [
        ("icd10", "S72.0", "S72.0"),  # the code exactly
        ("icd10", "s72", "S72"),  # a prefix, any case: the category before its subcategories
        ("icd10", "股骨颈", "S72.0"),  # the start of the Chinese name
        ("icd10", "ggjgz", "S72.0"),  # pinyin initials of 股骨颈骨折
        ("icd10", "椎间盘", "M50"),  # inside the name (颈椎间盘疾患 before 其他椎间盘疾患)
        ("icd9cm3", "79.35", "79.35"),
        ("icd9cm3", "全髋", "81.51"),
        ("icd9cm3", "qkgjzhs", "81.51"),  # 全髋关节置换术
        ("icd9cm3", "03.09", "03.09"),  # spine: 03.x
        ("aoota", "31A2", "31A2"),
        ("aoota", "股骨近端", "31"),
        ("aoota", "31-a", "31A"),  # the hyphen after the segment is dropped
    ],
)
def test_search_finds_by_code_chinese_and_pinyin(system: str, text: str, first: str) -> None:
    found = coding.search(system, text)
    assert found and found[0].code == first


def test_ranking_puts_the_exact_and_prefix_matches_first() -> None:
    codes = [e.code for e in coding.search("icd10", "S72", limit=50)]
    assert codes[:3] == ["S72", "S72.0", "S72.1"]
    assert all(code.startswith("S72") for code in codes)
    # names starting with 骨折 (骨折不连接) come before those containing it (股骨骨折)
    names = [e.name_zh for e in coding.search("icd10", "骨折", limit=50)]
    starts = [name.startswith("骨折") for name in names]
    assert starts == sorted(starts, reverse=True) and not all(starts)


def test_lookup_accepts_listed_codes_only() -> None:
    assert coding.lookup("icd10", " s72.0 ") is not None
    assert coding.lookup("icd10", "S72.05") is None  # well formed, not in the table
    assert coding.lookup("icd9cm3", "79.35") is not None
    assert coding.lookup("icd9cm3", "79.3") is None  # a heading: 79.30-79.39 are coded
    assert coding.lookup("aoota", "31B2.1") is not None  # a subgroup of a listed group
    assert coding.lookup("aoota", "31B") is None  # a type is not a complete class
    entry = coding.lookup("aoota", "31-B2.1")
    assert entry is not None and entry.code == "31B2.1" and "经颈" in entry.name_zh


def test_every_table_states_it_is_a_subset_and_counts_its_entries() -> None:
    for name in ("icd10.csv", "icd9cm3.csv"):
        path = coding.CODE_DIR / name
        header = [line for line in path.read_text(encoding="utf-8").splitlines() if line[:1] == "#"]
        assert "SUBSET" in header[0]
        rows = list(csv.DictReader(line for line in path.open(encoding="utf-8") if line[:1] != "#"))
        assert f"{len(rows)} entries" in header[0]
    document = json.loads(Path(coding.CODE_DIR / "aoota.json").read_text(encoding="utf-8"))
    assert "SUBSET" in document["title"] and document["entries"] == len(document["codes"])
    # the orthopedic chapters are all there
    icd10 = {e.code for e in coding.table("icd10")}
    assert {f"S{n:02d}" for n in range(100)} | {f"T{n:02d}" for n in range(15)} <= icd10
    icd9 = {e.code for e in coding.table("icd9cm3")}
    assert {"77", "78", "79", "80", "81", "82", "83", "84", "03"} <= icd9


def test_api_searches_in_the_request_language(personas: Personas, signed_in_client: Any) -> None:
    client = signed_in_client(personas.county_surgeon)
    response = client.get(CODES_URL, {"system": "icd10", "q": "ggjgz"})
    assert response.status_code == 200
    body = response.json()
    assert body[0]["code"] == "S72.0" and body[0]["name"] == "股骨颈骨折"
    assert body[0]["name_en"] == "Fracture of neck of femur" and body[0]["selectable"] is True
    english = client.get(CODES_URL, {"system": "icd9cm3", "q": "79.35"}, HTTP_ACCEPT_LANGUAGE="en")
    assert english.json()[0]["name"].startswith("Open reduction of fracture with internal")
    headings = client.get(CODES_URL, {"system": "icd9cm3", "q": "79.3", "selectable": "true"})
    assert "79.3" not in [e["code"] for e in headings.json()]


def test_api_refuses_an_unknown_system_with_problem_details(
    personas: Personas, signed_in_client: Any
) -> None:
    response = signed_in_client(personas.county_surgeon).get(
        CODES_URL, {"system": "snomed", "q": "fracture"}
    )
    assert response.status_code == 422
    assert response["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "unknown_code_system" and "snomed" in problem["detail"]


def test_api_needs_a_signed_in_user(db: None, client: Any) -> None:
    response = client.get(CODES_URL, {"system": "icd10", "q": "S72"})
    assert response.status_code == 401
