# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
"""Schema: patient search by the last 4-6 characters of the resident ID, by the given name and
by registration and visit date (indexes the search filters use on PostgreSQL). The suffix is
filled by 0007_fill_resident_id_suffix."""

from django.db import migrations, models
from django.db.models.functions import Right, Substr


class Migration(migrations.Migration):
    dependencies = [
        ("network", "0002_department_head"),
        ("records", "0005_coded_diagnoses_procedures"),
    ]

    operations = [
        migrations.AddField(
            model_name="patient",
            name="resident_id_suffix",
            field=models.CharField(blank=True, db_default="", db_index=True, max_length=6),
        ),
        migrations.AddIndex(
            model_name="patient",
            index=models.Index(Right("resident_id_suffix", 4), name="patient_id_last4"),
        ),
        migrations.AddIndex(
            model_name="patient",
            index=models.Index(Right("resident_id_suffix", 5), name="patient_id_last5"),
        ),
        migrations.AddIndex(
            model_name="patient",
            index=models.Index(Substr("name", 2), name="patient_given_name"),
        ),
        migrations.AddIndex(
            model_name="patient",
            index=models.Index(fields=["created_at"], name="patient_registered_on"),
        ),
        migrations.AddIndex(
            model_name="encounter",
            index=models.Index(fields=["started_at"], name="encounter_started"),
        ),
    ]
