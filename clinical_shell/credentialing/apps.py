from django.apps import AppConfig


class CredentialingConfig(AppConfig):
    """Restricted techniques and surgical grades: applications, committee votes, privileges."""

    name = "clinical_shell.credentialing"
    label = "credentialing"
    default_auto_field = "django.db.models.BigAutoField"
