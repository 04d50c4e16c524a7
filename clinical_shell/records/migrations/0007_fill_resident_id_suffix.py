# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
"""Data: fill `resident_id_suffix` with the last six characters of each stored resident ID.

One UPDATE in the database (RIGHT(resident_id, 6)); the reverse empties the column (0006 drops
it when reversed further)."""

from typing import Any

from django.db import migrations
from django.db.models.functions import Right


def fill_suffix(apps: Any, schema_editor: Any) -> None:
    patient_model = apps.get_model("records", "Patient")
    patient_model.objects.exclude(resident_id="").update(resident_id_suffix=Right("resident_id", 6))


def empty_suffix(apps: Any, schema_editor: Any) -> None:
    apps.get_model("records", "Patient").objects.update(resident_id_suffix="")


class Migration(migrations.Migration):
    dependencies = [
        ("records", "0006_resident_id_suffix"),
    ]

    operations = [
        migrations.RunPython(fill_suffix, empty_suffix),
    ]
