"""Notifications: per recipient in both languages, private to them, read state, e-mail copy."""

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth.models import User
from django.test import Client
from django.utils.translation import gettext_lazy
from pytest_django.fixtures import Settings
from shell_personas import Personas

from clinical_shell.notifications import selectors, services
from clinical_shell.notifications.models import Notification
from clinical_shell.notifications.tasks import send_pending

pytestmark = pytest.mark.django_db


def _notify(users: list[User], **kwargs: Any) -> list[Notification]:
    defaults: dict[str, Any] = {"title": gettext_lazy("通知"), "body": "正文 body"}
    return services.notify(users, **(defaults | kwargs))


def test_stored_in_both_languages_once_per_active_recipient(personas: Personas) -> None:
    surgeon, doctor = personas.county_surgeon, personas.township_doctor
    doctor.is_active = False
    doctor.save(update_fields=["is_active"])
    created = _notify([surgeon, surgeon, doctor], url="/patients/")
    assert len(created) == 1
    n = Notification.objects.get()
    assert (n.recipient_id, n.title_zh, n.title_en) == (surgeon.pk, "通知", "Notifications")
    assert n.url == "/patients/"
    assert selectors.unread_count(surgeon) == 1


@pytest.mark.parametrize("url", ["https://evil.example/x", "//evil.example/x", "/\\evil", "x"])
def test_links_outside_the_shell_are_dropped(personas: Personas, url: str) -> None:
    (n,) = _notify([personas.county_surgeon], url=url)
    assert n.url == ""


def test_inbox_shows_only_own_and_opening_marks_read(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    mine, theirs = personas.county_surgeon, personas.outsider
    (n,) = _notify([mine], title="给外科医生的通知", url="/patients/")
    _notify([theirs], title="别人的通知")
    client = signed_in_client(mine)
    page = client.get("/notifications/").content.decode()
    assert "给外科医生的通知" in page and "别人的通知" not in page
    assert 'id="notification-badge"' in page
    other = Notification.objects.get(recipient=theirs)
    assert client.post(f"/notifications/{other.pk}/open/").status_code == 404
    assert client.get(f"/notifications/{n.pk}/open/").status_code == 405
    response = client.post(f"/notifications/{n.pk}/open/")
    assert response.status_code == 302 and response["Location"] == "/patients/"
    assert selectors.unread_count(mine) == 0
    assert selectors.unread_count(theirs) == 1


def test_english_page_shows_english_text(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    _notify([personas.county_surgeon])
    client = signed_in_client(personas.county_surgeon)
    client.cookies["django_language"] = "en"
    page = client.get("/notifications/").content.decode()
    assert "Mark all as read" in page and "Notifications" in page


def test_api_lists_and_marks_read(
    personas: Personas, signed_in_client: Callable[[User], Client]
) -> None:
    user = personas.county_surgeon
    a, b = _notify([user]) + _notify([user])
    client = signed_in_client(user)
    listed = client.get("/api/v1/notifications?unread=true").json()
    assert {item["id"] for item in listed["items"]} == {a.pk, b.pk}
    response = client.post(
        "/api/v1/notifications/read", {"ids": [a.pk]}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json() == {"marked": 1, "unread": 1}


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.content)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server(settings: Settings) -> Iterator[_Inbox]:
    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.OSTEON_SMTP_HOST = settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    try:
        yield inbox
    finally:
        controller.stop()


def test_email_copy_carries_title_and_link_not_the_body(
    personas: Personas, smtp_server: _Inbox
) -> None:
    user = personas.county_surgeon
    user.email = "surgeon@example.org"
    user.save(update_fields=["email"])
    _notify([user], title="申请已批准", body="患者张三 的病历", url="/credentialing/")
    assert send_pending() == 1
    deadline = time.monotonic() + 5
    while not smtp_server.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    (raw,) = smtp_server.messages
    from email import message_from_bytes, policy

    message = message_from_bytes(raw, policy=policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "申请已批准" in text and "/credentialing/" in text
    assert "张三" not in text
    assert Notification.objects.get().emailed_at is not None
    assert send_pending() == 0  # sent once


def test_unreachable_smtp_leaves_notifications_for_the_next_sweep(
    personas: Personas, settings: Settings
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.OSTEON_SMTP_HOST = settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = _free_port()  # nothing listens
    settings.EMAIL_TIMEOUT = 2
    user = personas.county_surgeon
    user.email = "surgeon@example.org"
    user.save(update_fields=["email"])
    _notify([user])
    assert send_pending() == 0
    assert Notification.objects.get().emailed_at is None


def test_live_badge_count_reaches_the_person_topic_after_commit(
    personas: Personas, django_capture_on_commit_callbacks: Any
) -> None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from clinical_shell.realtime.events import group_name

    user = personas.county_surgeon
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group_name(f"user.{user.pk}"), channel)
    with django_capture_on_commit_callbacks(execute=True):
        _notify([user])
        _notify([user])
    counts = [async_to_sync(layer.receive)(channel)["event"]["unread"] for _ in range(2)]
    assert counts == [2, 2]  # both published after commit, each with the count then
