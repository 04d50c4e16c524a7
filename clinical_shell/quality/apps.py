from django.apps import AppConfig


class QualityConfig(AppConfig):
    """Quality indicators as data, computed in the database, thresholds, warnings, dashboards."""

    name = "clinical_shell.quality"
    label = "quality"
    default_auto_field = "django.db.models.BigAutoField"
