"""Patient search as clinicians expect: every search form, the filters, sorting, and the scope.

The search text may be a full name, a given name, pinyin, a birth date (three spellings), the
last 4-6 characters of a resident ID, or a patient number, typed in 全角 as well; the filters
narrow the list and never widen it past the institutions the user may read.
"""

import importlib
from datetime import date, timedelta
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone
from shell_personas import SHUANGBAI_MAN_ID, Network, Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.network.models import Person
from clinical_shell.records import selectors
from clinical_shell.records import services as records
from clinical_shell.records.identity import check_char
from clinical_shell.records.models import CareRelationship, Patient

fill_suffix_migration = importlib.import_module(
    "clinical_shell.records.migrations.0007_fill_resident_id_suffix"
)


def _resident_id(area: str, born: date, sequence: str) -> str:
    body = f"{area}{born:%Y%m%d}{sequence}"
    return body + check_char(body)


def _register(
    network: Network,
    personas: Personas,
    name: str,
    *,
    born: date = date(1980, 5, 6),
    sex: str = "F",
    resident_id: str = "",
    at_county: bool = False,
) -> Patient:
    return records.register_patient(
        actor=personas.county_surgeon if at_county else personas.township_doctor,
        institution=network.shuangbai if at_county else network.tuodian,
        name=name,
        sex=sex,
        birth_date=born,
        resident_id=resident_id,
    )


def _years_before(day: date, years: int) -> date:
    """The same day `years` earlier (29 February becomes 1 March)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return date(day.year - years, 3, 1)


def _visit(network: Network, personas: Personas, patient: Patient, *, days_ago: int) -> None:
    records.record_encounter(
        actor=personas.county_surgeon,
        patient=patient,
        institution=network.shuangbai,
        data=records.EncounterIn(
            kind="outpatient",
            started_at=timezone.now() - timedelta(days=days_ago),
            chief_complaint="复诊 / follow-up",
        ),
    )


def _names(institution_ids: list[int], text: str = "", sort: str = "", **filters: Any) -> list[str]:
    found = selectors.search_patients(
        institution_ids=institution_ids,
        text=text,
        filters=selectors.SearchFilters(**filters),
        sort=sort,
    )
    return [p.name for p in found]


@pytest.mark.parametrize(
    ("typed", "kind", "value"),
    [
        ("张三丰", "name", "张三丰"),
        ("张　三丰", "name", "张三丰"),  # 全角 space
        ("ｚｓｆ", "pinyin", "zsf"),
        ("ZhangSan", "pinyin", "zhangsan"),
        ("1958-03-14", "birth_date", "1958-03-14"),
        ("19580314", "birth_date", "1958-03-14"),
        ("1958/3/14", "birth_date", "1958-03-14"),
        ("１９５８－０３－１４", "birth_date", "1958-03-14"),
        ("1958年3月14日", "birth_date", "1958-03-14"),
        ("1958-02-30", "none", "1958-02-30"),
        ("1230", "id_tail", "1230"),
        ("４１２３x", "id_tail", "4123X"),
        ("141230", "id_tail", "141230"),
        ("#17", "patient_number", "17"),
        ("17", "patient_number", "17"),
        ("12345678", "patient_number", "12345678"),  # not a date
        (SHUANGBAI_MAN_ID, "resident_id", SHUANGBAI_MAN_ID),
    ],
)
def test_the_query_is_normalised_and_classified(typed: str, kind: str, value: str) -> None:
    assert selectors.classify_query(typed) == selectors.SearchQuery(kind, value)


def test_each_search_form_finds_the_patient(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    network = shell_network
    _register(network, personas, "张三", born=date(1960, 1, 2))
    _register(network, personas, "李四丰", born=date(1958, 3, 15))
    scope = [network.tuodian.pk]
    pk = patient_in_shuangbai.pk
    for typed in [
        "张三丰",  # full name
        "三丰",  # given name only (the name without its surname)
        "zsf",  # initials
        "zhangsanfeng",  # spelled pinyin
        "ＺＨＡＮＧＳＡＮＦＥＮＧ",  # 全角 letters
        "1958-03-14",
        "19580314",
        "1958/3/14",
        "１９５８／３／１４",  # 全角 digits
        "1230",  # last 4 of 532322195803141230
        "41230",  # last 5
        "141230",  # last 6
        "１２３０",  # 全角 last 4
        f"#{pk}",  # the patient number as the list shows it
    ]:
        assert "张三丰" in _names(scope, typed), typed
    assert _names(scope, "1958-03-14") == ["张三丰"]
    assert _names(scope, "三丰") == ["张三丰"]  # not 李四丰: the whole given name
    assert _names(scope, "张三") == ["张三", "张三丰"]  # the exact name first
    assert _names(scope, "0000") == []
    assert _names(scope, "1958-02-30") == []  # no such day: nothing, not everyone


def test_the_id_tail_uses_the_stored_suffix_and_registration_keeps_it(
    shell_network: Network, personas: Personas
) -> None:
    rid = _resident_id("532322", date(1971, 7, 9), "456")
    patient = _register(shell_network, personas, "王五", born=date(1971, 7, 9), resident_id=rid)
    assert patient.resident_id_suffix == rid[-6:]
    scope = [shell_network.tuodian.pk]
    assert _names(scope, rid[-4:]) == ["王五"]
    # a changed number changes the suffix; the old tail no longer finds the patient
    new_rid = _resident_id("532322", date(1971, 7, 9), "788")
    records.update_patient(
        actor=personas.township_doctor, patient=patient, reason="核对身份证", resident_id=new_rid
    )
    patient.refresh_from_db()
    assert patient.resident_id_suffix == new_rid[-6:]
    assert _names(scope, new_rid[-5:]) == ["王五"]
    assert _names(scope, rid[-4:]) == []


def test_the_data_migration_fills_the_suffix(shell_network: Network, personas: Personas) -> None:
    rid = _resident_id("532322", date(1980, 5, 6), "222")
    patient = _register(shell_network, personas, "赵六", resident_id=rid)
    _register(shell_network, personas, "钱七")  # no ID: stays blank
    Patient.objects.update(resident_id_suffix="")
    fill_suffix_migration.fill_suffix(apps, None)
    assert dict(Patient.objects.values_list("name", "resident_id_suffix")) == {
        "赵六": rid[-6:],
        "钱七": "",
    }
    fill_suffix_migration.empty_suffix(apps, None)
    patient.refresh_from_db()
    assert patient.resident_id_suffix == ""


def test_sorting_by_pinyin_and_by_each_column(shell_network: Network, personas: Personas) -> None:
    network = shell_network
    # 曾 is read zēng as a surname; code-point order would put 张 before 曾 and 安 first
    zeng = _register(network, personas, "曾敏", born=date(1990, 1, 1), sex="F")
    zhang = _register(network, personas, "张伟", born=date(1950, 1, 1), sex="M")
    an = _register(network, personas, "安宁", born=date(1970, 1, 1), sex="F", at_county=True)
    _visit(network, personas, zhang, days_ago=10)
    _visit(network, personas, an, days_ago=2)
    _visit(network, personas, zeng, days_ago=1)
    _register(network, personas, "李安", born=date(1960, 1, 1), sex="M")  # never seen
    scope = [network.shuangbai.pk, network.tuodian.pk]
    assert _names(scope, sort="name") == ["安宁", "李安", "曾敏", "张伟"]
    assert _names(scope, sort="-name") == ["张伟", "曾敏", "李安", "安宁"]
    assert _names(scope, sort="birth_date") == ["张伟", "李安", "安宁", "曾敏"]
    assert _names(scope, sort="-birth_date") == ["曾敏", "安宁", "李安", "张伟"]  # age ascending
    assert _names(scope, sort="sex") == ["安宁", "曾敏", "李安", "张伟"]  # F, then M; pinyin
    assert _names(scope, sort="last_visit")[:3] == ["张伟", "安宁", "曾敏"]
    assert _names(scope, sort="-last_visit") == ["曾敏", "安宁", "张伟", "李安"]  # never: last
    # registering institution (双柏县人民医院 before 双柏县妥甸镇卫生院 by name), pinyin within
    assert _names(scope, sort="institution") == ["安宁", "李安", "曾敏", "张伟"]


def test_filters_narrow_the_list(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    network = shell_network
    today = timezone.localdate()
    # whole years: 40 on their birthday today; 39 until tomorrow
    forty = _register(network, personas, "周四十", born=_years_before(today, 40))
    almost = _years_before(today + timedelta(days=1), 40)
    _register(network, personas, "郑三九", born=almost)
    young = _register(network, personas, "吴二十", born=date(today.year - 20, 1, 1), sex="M")
    _visit(network, personas, forty, days_ago=40)
    scope = [network.tuodian.pk]
    assert _names(scope, sex="M") == ["吴二十", "张三丰"]
    assert _names(scope, age_min=40, age_max=40) == ["周四十"]
    assert _names(scope, age_min=39, age_max=39) == ["郑三九"]
    assert _names(scope, age_min=41) == ["张三丰"]
    assert _names(scope, age_max=39) == ["吴二十", "郑三九"]
    assert _names(scope, age_min=40, sex="F") == ["周四十"]
    # registration date: the day the row was made (all today here); a range before finds none
    assert len(_names(scope, registered_from=today, registered_to=today)) == 4
    assert _names(scope, registered_to=today - timedelta(days=1)) == []
    # visit date: an encounter on one of those days (张三丰 3 days ago, 周四十 40 days ago)
    assert _names(scope, visited_from=today - timedelta(days=7)) == ["张三丰"]
    assert _names(scope, visited_to=today - timedelta(days=30)) == ["周四十"]
    assert young.pk not in [
        p.pk
        for p in selectors.search_patients(
            institution_ids=scope,
            text="",
            filters=selectors.SearchFilters(visited_from=date(2000, 1, 1)),
        )
    ]


def test_the_institution_filter_is_among_the_users_own(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    network = shell_network
    _register(network, personas, "安宁", at_county=True)
    both = [network.shuangbai.pk, network.tuodian.pk]
    assert _names(both, institution_id=network.tuodian.pk) == ["张三丰"]
    assert _names(both, institution_id=network.shuangbai.pk) == ["安宁", "张三丰"]
    # an institution the user does not belong to empties the list: it never widens it
    assert _names([network.tuodian.pk], institution_id=network.shuangbai.pk) == []


def test_my_patients_are_attended_by_me_or_registered_at_my_institution(
    shell_network: Network, personas: Personas, patient_in_shuangbai: Patient
) -> None:
    network = shell_network
    surgeon = personas.county_surgeon
    mine_here = _register(network, personas, "安宁", at_county=True)  # registered at 双柏
    attended = _register(network, personas, "曾敏")  # registered at the township
    referred = _register(network, personas, "李安")  # in care at 双柏, neither
    records.record_encounter(
        actor=surgeon,
        patient=attended,
        institution=network.shuangbai,
        data=records.EncounterIn(
            kind="outpatient", started_at=timezone.now(), chief_complaint="腰痛 / back pain"
        ),
        attending_id=Person.objects.get(user=surgeon).pk,
    )
    CareRelationship.objects.create(
        patient=referred, institution=network.shuangbai, kind=CareRelationship.Kind.REFERRAL
    )
    scope = [network.shuangbai.pk]
    assert _names(scope) == ["安宁", "李安", "曾敏", "张三丰"]
    # 张三丰 was seen at 双柏 (no attending named), 李安 only referred there
    assert _names(scope, mine_user_id=surgeon.pk) == ["安宁", "曾敏"]
    assert mine_here.registered_at_id == network.shuangbai.pk


def test_recently_opened_are_the_patients_this_user_opened(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    network = shell_network
    other = _register(network, personas, "安宁", at_county=True)
    _register(network, personas, "曾敏", at_county=True)
    surgeon_client = signed_in_client(personas.county_surgeon)
    assert surgeon_client.get(f"/patients/{patient_in_shuangbai.pk}/").status_code == 200
    # another user's reads are not this user's
    radiologist = signed_in_client(personas.radiologist)
    assert radiologist.get(f"/patients/{other.pk}/").status_code == 200
    scope = [network.shuangbai.pk]
    assert _names(scope, recent_user_id=personas.county_surgeon.pk) == ["张三丰"]
    assert _names(scope, recent_user_id=personas.radiologist.pk) == ["安宁"]
    html = surgeon_client.get("/patients/", {"recent": "on"}).content.decode()
    assert "张三丰" in html and "安宁" not in html and "曾敏" not in html
    # RECENT_DAYS later (the audit log is append-only: move the clock, not the events)
    now = timezone.now()
    monkeypatch.setattr(
        timezone, "now", lambda: now + timedelta(days=selectors.RECENT_DAYS, minutes=1)
    )
    assert _names(scope, recent_user_id=personas.county_surgeon.pk) == []


def test_an_outsider_sees_nothing_extra(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
) -> None:
    outsider = personas.outsider
    client = signed_in_client(outsider)
    pk = patient_in_shuangbai.pk
    for params in [
        {"q": "张三丰"},
        {"q": "三丰"},
        {"q": "1230"},
        {"q": f"#{pk}"},
        {"q": str(pk)},
        {"q": "1958-03-14"},
        {"mine": "on"},
        {"recent": "on"},
        {"institution": str(shell_network.shuangbai.pk)},
        {"sex": "M", "age_min": "60", "sort": "name"},
    ]:
        html = client.get("/patients/", params).content.decode()
        assert f"/patients/{pk}/" not in html and "没有符合条件的患者" in html, params
    # the API answers the same
    response = client.get("/api/v1/patients", {"q": "1230", "mine": True})
    assert response.status_code == 200 and response.json()["count"] == 0


def test_the_page_lists_number_age_and_last_visit_and_audits_the_page(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
) -> None:
    surgeon = personas.county_surgeon
    client = signed_in_client(surgeon)
    html = client.get(
        "/patients/", {"q": "１９５８０３１４", "sex": "M", "sort": "-name", "age_min": "oops"}
    ).content.decode()
    today = timezone.localdate()
    age = today.year - 1958 - ((today.month, today.day) < (3, 14))
    assert f"#{patient_in_shuangbai.pk}" in html and "患者编号" in html
    assert f"<td>{age}</td>" in html
    last_visit = timezone.localdate(timezone.now() - timedelta(days=3))
    assert last_visit.isoformat() in html
    assert "年龄自" in html  # the bad filter is named, and ignored
    event = AuditEvent.objects.filter(action="patient.search", actor_user_id=surgeon.pk).latest(
        "id"
    )
    assert event.patient_id == patient_in_shuangbai.pk
    assert event.detail["query_kind"] == "birth_date"
    assert event.detail["patient_ids"] == [patient_in_shuangbai.pk]


def test_the_api_takes_the_same_filters(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
) -> None:
    _register(shell_network, personas, "安宁", at_county=True, born=date(2000, 1, 1))
    client = signed_in_client(personas.county_surgeon)
    response = client.get("/api/v1/patients", {"sort": "-birth_date"})
    assert [p["name"] for p in response.json()["items"]] == ["安宁", "张三丰"]
    response = client.get("/api/v1/patients", {"q": "1958/3/14", "sex": "M", "age_min": 60})
    assert [p["name"] for p in response.json()["items"]] == ["张三丰"]
    assert client.get("/api/v1/patients", {"sort": "resident_id"}).status_code == 422
    assert client.get("/api/v1/patients", {"age_min": -1}).status_code == 422


def test_filters_add_no_query_and_several_institutions_add_one(
    shell_network: Network,
    personas: Personas,
    patient_in_shuangbai: Patient,
    signed_in_client: Any,
    django_assert_num_queries: Any,
) -> None:
    # as test_query_counts.test_search_query_count: session, user, memberships, count, page,
    # audit (savepoint, [lock], last hash, insert, release), person and unread notifications
    audit = 4 + (1 if connection.vendor == "postgresql" else 0)
    filtered = {"q": "zsf", "sex": "M", "age_min": "60", "recent": "on", "sort": "-last_visit"}
    client = signed_in_client(personas.county_surgeon)
    client.get(f"/patients/{patient_in_shuangbai.pk}/")
    client.get("/patients/", filtered)
    with django_assert_num_queries(7 + audit):
        html = client.get("/patients/", {**filtered, "visited_from": "2000-01-01"}).content.decode()
    assert f"/patients/{patient_in_shuangbai.pk}/" in html
    # a user of several institutions is offered the institution filter: their names, one query
    records.register_patient(
        actor=personas.center_surgeon,
        institution=shell_network.yongren,
        name="安宁",
        sex="F",
        birth_date=date(1975, 1, 20),
    )
    center = signed_in_client(personas.center_surgeon)
    center.get("/patients/")
    with django_assert_num_queries(8 + audit):
        html = center.get("/patients/").content.decode()
    assert "全部机构" in html and "安宁" in html
