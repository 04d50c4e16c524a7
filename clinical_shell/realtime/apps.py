from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """Live pages: websocket consumers and the events other apps publish to them."""

    name = "clinical_shell.realtime"
    label = "realtime"
    default_auto_field = "django.db.models.BigAutoField"
