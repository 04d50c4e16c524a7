from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Background jobs on the task queue: progress, cancellation, the heavy-job limit."""

    name = "clinical_shell.jobs"
    label = "jobs"
    default_auto_field = "django.db.models.BigAutoField"
