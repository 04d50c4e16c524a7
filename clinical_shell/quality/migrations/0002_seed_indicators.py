# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
"""Seed the indicator catalogue (indicators/catalogue.py); thresholds are then the quality
office's to change (services.set_thresholds keeps their history)."""

from typing import Any

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor


def seed(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    from clinical_shell.quality.indicators.catalogue import INDICATORS

    definition = apps.get_model("quality", "IndicatorDefinition")
    for entry in INDICATORS:
        fields: dict[str, Any] = {k: v for k, v in entry.items() if k != "code"}
        definition.objects.update_or_create(code=entry["code"], defaults=fields)


def unseed(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    from clinical_shell.quality.indicators.catalogue import INDICATORS

    codes = [entry["code"] for entry in INDICATORS]
    apps.get_model("quality", "IndicatorDefinition").objects.filter(code__in=codes).delete()


class Migration(migrations.Migration):
    dependencies = [("quality", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
