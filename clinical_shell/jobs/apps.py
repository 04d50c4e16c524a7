from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Background jobs on the task queue: progress, cancellation, the heavy-job limit."""

    name = "clinical_shell.jobs"
    label = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from clinical_shell.jobs.access import can_subscribe
        from clinical_shell.realtime.events import register_topic

        # every app's tasks.py declares its job kinds: the web process (which queues them) and
        # the worker (which runs them) must know the same ones
        autodiscover_modules("tasks")
        register_topic("job", can_subscribe)
