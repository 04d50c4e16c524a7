# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
# why a study waits for reconciliation becomes a code from a fixed list (the rows are
# rewritten by 0008), shown in the reader's language

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("imaging", "0006_case_build_status_in_job")]

    operations = [
        migrations.AlterField(
            model_name="study",
            name="unlinked_reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("no_patient_id", "DICOM 无患者号"),
                    ("not_resident_id", "患者号不是身份证号"),
                    ("no_patient_in_care", "未找到对应患者"),
                ],
                max_length=200,
            ),
        ),
    ]
