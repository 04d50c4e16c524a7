# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)

import django.core.validators
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("live", "0001_live_sessions"),
    ]

    operations = [
        migrations.CreateModel(
            name="LiveRecording",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "stream",
                    models.CharField(
                        max_length=64,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[A-Za-z0-9_-]{1,64}$",
                                "只能包含英文字母、数字、下划线和连字符",
                            )
                        ],
                        verbose_name="画面",
                    ),
                ),
                ("path", models.CharField(max_length=300, unique=True, verbose_name="文件")),
                ("started_at", models.DateTimeField(verbose_name="开始录制时间")),
                ("duration_s", models.FloatField(verbose_name="时长（秒）")),
                ("size_bytes", models.BigIntegerField(verbose_name="大小（字节）")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="创建时间")),
                (
                    "session",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="recordings",
                        to="live.livesession",
                        verbose_name="手术直播",
                    ),
                ),
            ],
            options={
                "verbose_name": "直播录像",
                "verbose_name_plural": "直播录像",
                "ordering": ("started_at", "stream", "pk"),
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("duration_s__gt", 0)),
                        name="live_recording_has_duration",
                    )
                ],
            },
        ),
    ]
