# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
"""Schema: coded diagnoses and procedures (code table, laterality), the problem list, and
possible duplicates by pinyin."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("records", "0004_merge_request"),
    ]

    operations = [
        migrations.AddField(
            model_name="diagnosis",
            name="code_system",
            field=models.CharField(blank=True, choices=[("icd10", "ICD-10")], max_length=16),
        ),
        migrations.AddField(
            model_name="diagnosis",
            name="laterality",
            field=models.CharField(
                blank=True,
                choices=[
                    ("left", "左侧"),
                    ("right", "右侧"),
                    ("bilateral", "双侧"),
                    ("na", "不适用"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="procedure",
            name="code_system",
            field=models.CharField(blank=True, choices=[("icd9cm3", "ICD-9-CM-3")], max_length=16),
        ),
        migrations.AddField(
            model_name="procedure",
            name="laterality",
            field=models.CharField(
                blank=True,
                choices=[
                    ("left", "左侧"),
                    ("right", "右侧"),
                    ("bilateral", "双侧"),
                    ("na", "不适用"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="duplicatecandidate",
            name="reason",
            field=models.CharField(
                choices=[
                    ("same_resident_id", "身份证号相同"),
                    ("same_demographics", "姓名、出生日期、性别相同"),
                    ("same_pinyin", "拼音、出生日期、性别相同"),
                ],
                max_length=32,
            ),
        ),
        migrations.CreateModel(
            name="Problem",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("deleted_at", models.DateTimeField(blank=True, null=True)),
                ("deleted_reason", models.CharField(blank=True, max_length=300)),
                ("version", models.PositiveIntegerField(default=1)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("description", models.CharField(max_length=200)),
                ("code", models.CharField(blank=True, max_length=10)),
                (
                    "status",
                    models.CharField(
                        choices=[("active", "活动"), ("resolved", "已解决")],
                        default="active",
                        max_length=16,
                    ),
                ),
                ("onset_date", models.DateField(blank=True, null=True)),
                (
                    "patient",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="problems",
                        to="records.patient",
                    ),
                ),
            ],
            options={
                "abstract": False,
            },
        ),
    ]
