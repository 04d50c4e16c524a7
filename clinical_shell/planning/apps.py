from django.apps import AppConfig


class PlanningConfig(AppConfig):
    """Planning on the patient's CT: annotations, plans and their elements, checks, rehearsal."""

    name = "clinical_shell.planning"
    label = "planning"
    default_auto_field = "django.db.models.BigAutoField"
