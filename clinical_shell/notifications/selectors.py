from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import QuerySet

from clinical_shell.notifications.models import Notification


def for_user(user: User, *, unread_only: bool = False) -> QuerySet[Notification]:
    rows = Notification.objects.filter(recipient=user)
    if unread_only:
        rows = rows.filter(read_at__isnull=True)
    return rows.order_by("-created_at", "-id")


def unread_count(user: User) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def email_enabled() -> bool:
    """E-mail copies go out only when an SMTP server is configured (OSTEON_SMTP_HOST)."""
    return bool(getattr(settings, "OSTEON_SMTP_HOST", ""))
