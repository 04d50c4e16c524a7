"""E-mail copies of notifications, sent by the task queue: a slow SMTP server never holds a page."""

import logging
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from clinical_shell.notifications.models import Notification

logger = logging.getLogger(__name__)

SUBJECT_PREFIX = "[Osteon] "


def _message(n: Notification) -> EmailMessage:
    link = settings.OSTEON_PUBLIC_URL.rstrip("/") + (n.url or "/notifications/")
    text = f"{n.title_zh}\n{n.title_en}\n\n{link}\n"
    return EmailMessage(
        subject=SUBJECT_PREFIX + n.title_zh,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[n.recipient.email],
    )


def send_pending(ids: list[int] | None = None) -> int:
    """Send the not-yet-mailed notifications (of `ids`, or all); returns how many were sent.

    A notification is marked mailed only after the server accepted it, so a failed connection
    leaves it for the next sweep rather than losing it.
    """
    rows = Notification.objects.filter(emailed_at__isnull=True).exclude(recipient__email="")
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    sent = 0
    pending = list(rows.select_related("recipient")[:200])
    if not pending:
        return 0
    try:
        with get_connection(fail_silently=False) as connection:
            for n in pending:
                connection.send_messages([_message(n)])
                Notification.objects.filter(pk=n.pk).update(emailed_at=timezone.now())
                sent += 1
    except OSError as exc:  # smtplib errors are OSErrors: retried by the periodic sweep
        logger.warning("notification e-mail failed after %d sent: %s", sent, type(exc).__name__)
    return sent


@db_task()  # type: ignore[untyped-decorator]  # huey is untyped
def email_notifications(ids: list[int]) -> None:
    send_pending(ids)


@db_periodic_task(crontab(minute="*/5"))  # type: ignore[untyped-decorator]
def email_sweep(*args: Any) -> None:
    from clinical_shell.notifications.selectors import email_enabled

    if email_enabled():
        send_pending()
