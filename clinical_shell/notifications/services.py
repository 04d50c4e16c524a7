"""Sending notifications: stored for each recipient, pushed live, copied by e-mail if set up.

The e-mail copy carries the title and a link only, never the body: mail leaves the network's
servers and may be read on devices the hospital does not control (PIPL: the minimum needed).
"""

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone, translation
from django.utils.functional import Promise

from clinical_shell.notifications import selectors
from clinical_shell.notifications.models import Notification
from clinical_shell.realtime.events import publish
from clinical_shell.realtime.notices import user_topic

Text = str | Promise
_TITLE_MAX = Notification._meta.get_field("title_zh").max_length or 200


def _both_languages(text: Text) -> tuple[str, str]:
    with translation.override("zh-hans"):
        zh = str(text)
    with translation.override("en"):
        en = str(text)
    return zh, en


def _safe_url(url: str) -> str:
    # only paths inside the shell: a notification must not become a link to somewhere else
    if url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url[:300]
    return ""


def notify(
    recipients: Iterable[User],
    *,
    title: Text,
    body: Text = "",
    url: str = "",
    kind: str = "",
) -> list[Notification]:
    """Store one for each distinct active recipient; live badge and e-mail after commit."""
    title_zh, title_en = _both_languages(title)
    body_zh, body_en = _both_languages(body)
    seen: set[int] = set()
    rows: list[Notification] = []
    for user in recipients:
        if user.pk in seen or not user.is_active:
            continue
        seen.add(user.pk)
        rows.append(
            Notification(
                recipient=user,
                kind=kind[:40],
                title_zh=title_zh[:_TITLE_MAX],
                title_en=title_en[:_TITLE_MAX],
                body_zh=body_zh,
                body_en=body_en,
                url=_safe_url(url),
            )
        )
    created = Notification.objects.bulk_create(rows)
    if created:
        ids = [n.pk for n in created if n.pk is not None]
        transaction.on_commit(lambda: _after_commit(ids))
    return created


def _after_commit(ids: list[int]) -> None:
    from clinical_shell.notifications.tasks import email_notifications

    for n in Notification.objects.filter(pk__in=ids).select_related("recipient"):
        publish(
            user_topic(n.recipient_id),
            {
                "kind": "notification",
                "unread": selectors.unread_count(n.recipient),
                "title_zh": n.title_zh,
                "title_en": n.title_en,
            },
        )
    if selectors.email_enabled():
        email_notifications(ids)


def mark_read(user: User, ids: Iterable[int] | None = None) -> int:
    """Mark the user's notifications read (all of them when `ids` is None); returns how many."""
    rows = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        rows = rows.filter(pk__in=list(ids))
    count = rows.update(read_at=timezone.now())
    if count:
        unread = selectors.unread_count(user)
        transaction.on_commit(
            lambda: publish(user_topic(user.pk), {"kind": "notification", "unread": unread})
        )
    return count
