# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
"""Connect the training and credentialing indicators (seeded by 0002 as "no data yet"): their
definitions follow the catalogue; thresholds are set only where the quality office has not set
any (theirs are kept, with their history)."""

from typing import Any

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

CODES = ("training-pass-rate", "credentialing-coverage")
THRESHOLDS = ("target", "warning", "alarm")


def connect(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    from clinical_shell.quality.indicators.catalogue import INDICATORS

    definition = apps.get_model("quality", "IndicatorDefinition")
    for entry in INDICATORS:
        if entry["code"] not in CODES:
            continue
        row = definition.objects.filter(code=entry["code"]).first()
        if row is None:
            continue
        unset = all(getattr(row, name) is None for name in THRESHOLDS)
        fields: dict[str, Any] = {
            k: v for k, v in entry.items() if k != "code" and (unset or k not in THRESHOLDS)
        }
        for name, value in fields.items():
            setattr(row, name, value)
        row.save()


class Migration(migrations.Migration):
    dependencies = [("quality", "0003_warning_summary_in_english")]

    operations = [migrations.RunPython(connect, migrations.RunPython.noop)]
