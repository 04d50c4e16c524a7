from django.apps import AppConfig


class StationsConfig(AppConfig):
    """Simulator stations joined over the bridge: enrolment, presence, sessions, verified scores."""

    name = "clinical_shell.stations"
    label = "stations"
    default_auto_field = "django.db.models.BigAutoField"
