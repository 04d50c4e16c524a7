# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
"""Schema: patients get `name_sort_key` (汉语拼音 collation key); 0003 fills it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("records", "0001_records_tables"),
    ]

    operations = [
        migrations.AddField(
            model_name="patient",
            name="name_sort_key",
            field=models.CharField(default="", max_length=512),
            preserve_default=False,
        ),
    ]
