"""Referral notifications reach the receiving team by e-mail through a real SMTP server (aiosmtpd
here), with the title and the link, never the patient's name; the overdue escalation goes to the
receiving institution's department head."""

import socket
import time
from collections.abc import Iterator
from datetime import date, timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone
from pytest_django.fixtures import Settings
from shell_personas import Network, Personas

from clinical_shell.network.models import Person
from clinical_shell.notifications.models import Notification
from clinical_shell.notifications.tasks import send_pending
from clinical_shell.records import services as records
from clinical_shell.referrals import services
from clinical_shell.referrals.models import Direction, Referral

pytestmark = pytest.mark.django_db


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def smtp_inbox(settings: Settings) -> Iterator[_Inbox]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.OSTEON_SMTP_HOST = settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    try:
        yield inbox
    finally:
        controller.stop()


def test_emergency_referral_mails_the_receiving_team_without_the_patient(
    shell_network: Network, personas: Personas, smtp_inbox: _Inbox
) -> None:
    surgeon = personas.county_surgeon
    surgeon.email = "county@example.org"
    surgeon.save(update_fields=["email"])
    patient = records.register_patient(
        actor=personas.township_doctor,
        institution=shell_network.tuodian,
        name="杨秀英",
        sex="F",
        birth_date=date(1944, 6, 2),
    )
    referral = services.create_draft(
        actor=personas.township_doctor,
        patient_id=patient.pk,
        direction=Direction.UP,
        from_institution=shell_network.tuodian,
        to_institution=shell_network.shuangbai,
        urgency="emergency",
        reason="开放性胫骨骨折",
        criteria=["up_open_fracture_neurovascular"],
    )
    services.send(actor=personas.township_doctor, referral_id=referral.pk)
    assert send_pending() >= 1
    deadline = time.monotonic() + 5
    while not smtp_inbox.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    (raw,) = smtp_inbox.messages
    message = message_from_bytes(raw, policy=policy.default)
    assert message["To"] == "county@example.org"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "急诊转诊预通知" in text and f"/referrals/{referral.pk}/" in text
    assert "杨秀英" not in text and "胫骨" not in text

    # not answered in time: escalated once, to the receiving chiefs (not its radiologist)
    Person.objects.filter(user=surgeon).update(title=Person.Title.CHIEF_PHYSICIAN)
    Referral.objects.filter(pk=referral.pk).update(
        answer_due_at=timezone.now() - timedelta(minutes=1)
    )
    assert services.escalate_overdue() == 1 and services.escalate_overdue() == 0
    overdue = Notification.objects.filter(kind="referral.overdue")
    assert set(overdue.values_list("recipient_id", flat=True)) == {surgeon.pk}
