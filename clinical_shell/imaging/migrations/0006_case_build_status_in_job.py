# ruff: noqa: RUF012  (Django migration class attributes are lists by convention)
# a build's status, progress, error and worker now live on its job (filled by 0005)

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("imaging", "0005_fill_case_build_jobs")]

    operations = [
        migrations.RemoveIndex(model_name="casebuildjob", name="case_job_series_status"),
        migrations.RemoveField(model_name="casebuildjob", name="error"),
        migrations.RemoveField(model_name="casebuildjob", name="finished_at"),
        migrations.RemoveField(model_name="casebuildjob", name="heartbeat_at"),
        migrations.RemoveField(model_name="casebuildjob", name="progress"),
        migrations.RemoveField(model_name="casebuildjob", name="started_at"),
        migrations.RemoveField(model_name="casebuildjob", name="status"),
        migrations.RemoveField(model_name="casebuildjob", name="step"),
        migrations.RemoveField(model_name="casebuildjob", name="worker_host"),
        migrations.RemoveField(model_name="casebuildjob", name="worker_pid"),
        migrations.AddIndex(
            model_name="casebuildjob",
            index=models.Index(fields=["series"], name="case_job_series"),
        ),
    ]
