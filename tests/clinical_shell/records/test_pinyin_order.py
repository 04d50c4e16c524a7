"""Patient names in 汉语拼音 order (a key stored beside the name), and search results ranked."""

import importlib
from datetime import date
from typing import Any

from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from shell_personas import Network, Personas

from clinical_shell.records import selectors
from clinical_shell.records import services as records
from clinical_shell.records.identity import pinyin_full, pinyin_initials, pinyin_sort_key
from clinical_shell.records.models import Patient

fill_migration = importlib.import_module(
    "clinical_shell.records.migrations.0003_fill_patient_name_sort_key"
)


def _register(network: Network, personas: Personas, name: str) -> Patient:
    return records.register_patient(
        actor=personas.township_doctor,
        institution=network.tuodian,
        name=name,
        sex="F",
        birth_date=date(1980, 5, 6),
    )


def _listed(network: Network, text: str = "") -> list[str]:
    found = selectors.search_patients(institution_ids=[network.tuodian.pk], text=text)
    return [p.name for p in found]


def test_the_patient_list_is_in_pinyin_order(shell_network: Network, personas: Personas) -> None:
    network = shell_network
    # registered in code-point order (张 < 李 < 赵 < 王 < 阿 would be wrong both ways)
    for name in ["张伟", "王芳", "李娜", "赵敏", "阿依古丽·买买提", "连杰", "李安", "吕梁", "卢林"]:
        _register(network, personas, name)
    assert _listed(network) == [
        "阿依古丽·买买提",  # a1...
        "李安",  # li3 an1: syllable by syllable, li before lian
        "李娜",  # li3 na4
        "连杰",  # lian2
        "卢林",  # lu2
        "吕梁",  # lv3: ü after u
        "王芳",
        "张伟",
        "赵敏",
    ]


def test_surnames_are_read_as_surnames(shell_network: Network, personas: Personas) -> None:
    network = shell_network
    for name in ["曾志", "单雄", "蔡文", "沙明"]:
        _register(network, personas, name)
    # 曾 is zēng as a surname (not céng), 单 is shàn (not dān)
    assert _listed(network) == ["蔡文", "沙明", "单雄", "曾志"]
    assert pinyin_full("曾志") == "zengzhi" and pinyin_initials("单雄") == "sx"
    assert _listed(network, "zeng") == ["曾志"]
    assert _listed(network, "sx") == ["单雄"]


def test_names_with_the_same_reading_keep_a_stable_order(
    shell_network: Network, personas: Personas
) -> None:
    network = shell_network
    second = _register(network, personas, "章伟")
    first = _register(network, personas, "张伟")
    again = _register(network, personas, "张伟")
    assert pinyin_sort_key("张伟") == pinyin_sort_key("章伟") == "zhang1wei3"
    found = selectors.search_patients(institution_ids=[network.tuodian.pk], text="zhangwei")
    # the same key: by name (张 U+5F20 before 章 U+7AE0), then by registration
    assert [p.pk for p in found] == [first.pk, again.pk, second.pk]


def test_search_ranks_exact_then_prefix_then_initials(
    shell_network: Network, personas: Personas
) -> None:
    network = shell_network
    for name in ["张三丰", "张思", "张三", "周舍", "安娜丽", "艾宁", "安娜", "艾娜妮", "敖宁"]:
        _register(network, personas, name)
    # the whole name typed: that person first, then the names it begins, each in pinyin order
    assert _listed(network, "张三") == ["张三", "张三丰"]
    assert _listed(network, "张") == ["张三", "张三丰", "张思"]
    # the whole name spelled out, then spellings it begins
    assert _listed(network, "zhangsan") == ["张三", "张三丰"]
    # initials: exactly these initials (张三 zs, 张思 zs, 周舍 zs) before longer ones (张三丰)
    assert _listed(network, "zs") == ["张三", "张思", "周舍", "张三丰"]
    # a spelled prefix (安娜 anna) before initials (艾宁 an, 敖宁 an), before longer initials
    assert _listed(network, "an") == ["安娜", "安娜丽", "艾宁", "敖宁", "艾娜妮"]
    assert _listed(network, "anna") == ["安娜", "安娜丽"]


def test_the_api_lists_in_the_same_order(
    shell_network: Network, personas: Personas, signed_in_client: Any
) -> None:
    network = shell_network
    for name in ["赵敏", "阿明", "王芳", "张三丰", "张三"]:
        _register(network, personas, name)
    client = signed_in_client(personas.township_doctor)
    everyone = client.get("/api/v1/patients")
    assert [p["name"] for p in everyone.json()["items"]] == [
        "阿明",
        "王芳",
        "张三",
        "张三丰",
        "赵敏",
    ]
    ranked = client.get("/api/v1/patients", {"q": "zs"})
    assert [p["name"] for p in ranked.json()["items"]] == ["张三", "张三丰"]


def test_ranking_costs_no_extra_query(shell_network: Network, personas: Personas) -> None:
    network = shell_network
    for name in ["张三", "张三丰", "李四"]:
        _register(network, personas, name)
    with CaptureQueriesContext(connection) as queries:
        assert _listed(network, "zs") == ["张三", "张三丰"]
    assert len(queries) == 1


def test_the_data_migration_fills_the_keys_of_existing_patients(
    shell_network: Network,
    personas: Personas,
) -> None:
    network = shell_network
    zeng = _register(network, personas, "曾国藩")
    latin = _register(network, personas, "Anna李")
    # rows as the previous code left them: no sort key, 曾 read as céng
    Patient.objects.filter(pk=zeng.pk).update(
        name_sort_key="", name_pinyin="cengguofan", name_pinyin_initials="cgf"
    )
    Patient.objects.filter(pk=latin.pk).update(name_sort_key="")
    fill_migration.fill_name_keys(apps, None)
    zeng.refresh_from_db()
    latin.refresh_from_db()
    assert (zeng.name_sort_key, zeng.name_pinyin, zeng.name_pinyin_initials) == (
        "zeng1guo2fan1",
        "zengguofan",
        "zgf",
    )
    assert latin.name_sort_key == "anna0li3" and latin.name_pinyin == "annali"
    # the reverse writes the search keys as the code before it did
    fill_migration.restore_plain_readings(apps, None)
    zeng.refresh_from_db()
    assert (zeng.name_sort_key, zeng.name_pinyin, zeng.name_pinyin_initials) == (
        "",
        "cengguofan",
        "cgf",
    )
