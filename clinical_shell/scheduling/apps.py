"""Operation bookings, checked against surgeons' privileges and institutions' licences."""

from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    """Operation bookings, checked against surgeons' privileges and institutions' licences."""

    name = "clinical_shell.scheduling"
    label = "scheduling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clinical_shell.scheduling import signals

        signals.connect()
