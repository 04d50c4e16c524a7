from django.apps import AppConfig


class AdministrationConfig(AppConfig):
    """Administration pages: users, institutions, departments, stations, the audit log."""

    name = "clinical_shell.administration"
    label = "administration"
    default_auto_field = "django.db.models.BigAutoField"
