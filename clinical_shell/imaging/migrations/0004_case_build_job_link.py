# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
# a case build's run becomes a background job (clinical_shell.jobs): the link and the estimate

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("imaging", "0003_case_build_worker_host_and_retry"),
        ("jobs", "0001_job_queue_tables"),
    ]

    operations = [
        migrations.AddField(
            model_name="casebuildjob",
            name="estimated_bytes",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="casebuildjob",
            name="job",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="case_build",
                to="jobs.job",
            ),
        ),
    ]
