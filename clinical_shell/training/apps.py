from django.apps import AppConfig


class TrainingConfig(AppConfig):
    """Graded training: modules, curricula, assignments, progress from verified scores, replays."""

    name = "clinical_shell.training"
    label = "training"
    default_auto_field = "django.db.models.BigAutoField"
