# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
"""Documents record the institution that wrote them (records.access.RecordScope reads by it).

Existing rows: an encounter's document takes the encounter's institution, in the database
(a correlated subquery); a document outside any encounter was written, before this column,
only by the registering side (demo notes, referral attachments), so it takes the patient's
registering institution."""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def fill_institution(apps: Any, schema_editor: Any) -> None:
    document = apps.get_model("records", "Document")
    encounter = apps.get_model("records", "Encounter")
    patient = apps.get_model("records", "Patient")
    document.objects.filter(encounter__isnull=False).update(
        institution_id=Subquery(
            encounter.objects.filter(pk=OuterRef("encounter_id")).values("institution_id")[:1]
        )
    )
    document.objects.filter(institution__isnull=True).update(
        institution_id=Subquery(
            patient.objects.filter(pk=OuterRef("patient_id")).values("registered_at_id")[:1]
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("network", "0002_department_head"),
        ("records", "0007_fill_resident_id_suffix"),
    ]

    operations = [
        migrations.AddField(
            model_name="document",
            name="institution",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="network.institution",
            ),
        ),
        migrations.RunPython(fill_institution, migrations.RunPython.noop),
    ]
