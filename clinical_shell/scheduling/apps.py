from django.apps import AppConfig


class SchedulingConfig(AppConfig):
    """Operation bookings, checked against the surgeon's privileges and the institution's licence."""

    name = "clinical_shell.scheduling"
    label = "scheduling"
    default_auto_field = "django.db.models.BigAutoField"
