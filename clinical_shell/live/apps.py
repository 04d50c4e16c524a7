from django.apps import AppConfig


class LiveConfig(AppConfig):
    """Live sessions: streamed operations and simulator sessions, viewers, voice, drawings."""

    name = "clinical_shell.live"
    label = "live"
    default_auto_field = "django.db.models.BigAutoField"
