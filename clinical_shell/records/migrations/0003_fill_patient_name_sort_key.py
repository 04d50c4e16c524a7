# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
"""Data: fill `name_sort_key` and re-read the pinyin search keys with surname readings.

The reading rules are copied from `records.identity` as they stood when this migration was
written (a migration must not change when the app's code does): syllables with tone digits,
polyphonic surnames read as surnames (曾 zēng, not céng), punctuation dropped. The reverse
writes the search keys as the previous code did (pypinyin's plain reading, punctuation kept).
"""

import re
from typing import Any

from django.db import migrations
from pypinyin import Style, lazy_pinyin

_HANZI_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_SURNAME_READINGS = {
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
_BATCH = 2000


def _syllables(name: str) -> list[tuple[str, int]]:
    items: list[tuple[str, int]] = []

    def other(text: str) -> None:
        items.extend((word, 0) for word in _NOT_ALNUM.split(text.lower()) if word)

    position = 0
    for run in _HANZI_RUN.finditer(name):
        other(name[position : run.start()])
        readings = lazy_pinyin(run.group(), style=Style.TONE3, neutral_tone_with_five=True)
        if run.start() == 0 and run.group()[0] in _SURNAME_READINGS:
            readings[0] = _SURNAME_READINGS[run.group()[0]]
        for reading in readings:
            if reading[-1:] in ("1", "2", "3", "4", "5") and reading[:-1].isascii():
                items.append((reading[:-1], int(reading[-1])))
        position = run.end()
    other(name[position:])
    return items


def fill_name_keys(apps: Any, schema_editor: Any) -> None:
    patient_model = apps.get_model("records", "Patient")
    rows = patient_model.objects.only("id", "name").order_by("id")
    last_id = 0
    while batch := list(rows.filter(id__gt=last_id)[:_BATCH]):
        for patient in batch:
            syllables = _syllables(patient.name)
            patient.name_pinyin = "".join(s for s, _tone in syllables)
            patient.name_pinyin_initials = "".join(s[:1] for s, _tone in syllables)
            patient.name_sort_key = "".join(f"{s}{tone}" for s, tone in syllables)
        patient_model.objects.bulk_update(
            batch, ["name_pinyin", "name_pinyin_initials", "name_sort_key"]
        )
        last_id = batch[-1].id


def restore_plain_readings(apps: Any, schema_editor: Any) -> None:
    patient_model = apps.get_model("records", "Patient")
    rows = patient_model.objects.only("id", "name").order_by("id")
    last_id = 0
    while batch := list(rows.filter(id__gt=last_id)[:_BATCH]):
        for patient in batch:
            full = lazy_pinyin(patient.name, style=Style.NORMAL, errors="default")
            initials = lazy_pinyin(patient.name, style=Style.FIRST_LETTER, errors="default")
            patient.name_pinyin = "".join(p for p in full if p.strip()).lower()
            patient.name_pinyin_initials = "".join(p[:1] for p in initials if p.strip()).lower()
            patient.name_sort_key = ""
        patient_model.objects.bulk_update(
            batch, ["name_pinyin", "name_pinyin_initials", "name_sort_key"]
        )
        last_id = batch[-1].id


class Migration(migrations.Migration):
    dependencies = [
        ("records", "0002_patient_name_sort_key"),
    ]

    operations = [
        migrations.RunPython(fill_name_keys, restore_plain_readings),
    ]
