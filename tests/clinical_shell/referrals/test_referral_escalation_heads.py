"""An overdue answer reaches the receiving department's named head (科主任), not every chief."""

from datetime import date, timedelta

import pytest
from django.utils import timezone
from shell_personas import Network, Personas, make_persona

from clinical_shell.network.models import Department
from clinical_shell.notifications.models import Notification
from clinical_shell.records import services as records
from clinical_shell.referrals import services
from clinical_shell.referrals.models import Direction

pytestmark = pytest.mark.django_db


def _send_urgent_up(net: Network, personas: Personas) -> None:
    patient = records.register_patient(
        actor=personas.township_doctor,
        institution=net.tuodian,
        name="李桂兰",
        sex="F",
        birth_date=date(1941, 2, 9),
    )
    referral = services.create_draft(
        actor=personas.township_doctor,
        patient_id=patient.pk,
        direction=Direction.UP,
        from_institution=net.tuodian,
        to_institution=net.center,
        urgency="urgent",
        reason="跌倒后左髋疼痛，X 线示股骨转子间骨折",
        criteria=["up_hip_fracture_elderly"],
    )
    services.send(actor=personas.township_doctor, referral_id=referral.pk)


def test_the_named_head_is_told_and_the_chiefs_are_not(
    shell_network: Network, personas: Personas
) -> None:
    head = make_persona("ortho_head", "段建国", "主治医师", (shell_network.center, "surgeon"))
    Department.objects.update_or_create(
        institution=shell_network.center,
        code="ORTHO",
        defaults={"name": "骨科", "head": head.person},
    )
    _send_urgent_up(shell_network, personas)

    assert services.escalate_overdue(timezone.now() + timedelta(hours=5)) == 1
    told = Notification.objects.filter(kind="referral.overdue").values_list(
        "recipient_id", flat=True
    )
    assert list(told) == [head.pk]


def test_a_head_who_left_falls_back_to_the_chiefs(
    shell_network: Network, personas: Personas
) -> None:
    head = make_persona("ortho_head", "段建国", "主治医师", (shell_network.center, "surgeon"))
    head.person.memberships.update(active=False)
    Department.objects.update_or_create(
        institution=shell_network.center,
        code="ORTHO",
        defaults={"name": "骨科", "head": head.person},
    )
    _send_urgent_up(shell_network, personas)

    assert services.escalate_overdue(timezone.now() + timedelta(hours=5)) == 1
    told = Notification.objects.filter(kind="referral.overdue").values_list(
        "recipient_id", flat=True
    )
    assert list(told) == [personas.center_surgeon.pk]
