from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """In-app notifications (unread counts, live badge) and their e-mail copies over SMTP."""

    name = "clinical_shell.notifications"
    label = "notifications"
    default_auto_field = "django.db.models.BigAutoField"
