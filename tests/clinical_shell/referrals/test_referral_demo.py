"""The demo region's referrals: one or more in every state, made through the services."""

from datetime import date

import pytest
from shell_personas import Network, Personas

from clinical_shell.records import services as records
from clinical_shell.referrals.demo import load_referral_demo
from clinical_shell.referrals.models import Direction, Referral, State, TransferApproval

pytestmark = pytest.mark.django_db


def test_demo_referrals_cover_every_state(shell_network: Network, personas: Personas) -> None:
    for n in range(12):
        records.register_patient(
            actor=personas.township_doctor,
            institution=shell_network.tuodian,
            name=f"演示{n}",
            sex="F",
            birth_date=date(1940 + n, 1, 1),
        )
    for n in range(2):
        records.register_patient(
            actor=personas.county_surgeon,
            institution=shell_network.shuangbai,
            name=f"县{n}",
            sex="M",
            birth_date=date(1950 + n, 1, 1),
        )
    records.register_patient(
        actor=personas.center_surgeon,
        institution=shell_network.center,
        name="中心",
        sex="M",
        birth_date=date(1950, 1, 1),
    )
    assert load_referral_demo() > 0
    assert set(Referral.objects.values_list("state", flat=True)) == set(State.values)
    assert Referral.objects.filter(direction=Direction.DOWN, state=State.SENT).exists()
    assert Referral.objects.filter(escalated_at__isnull=False).exists()
    decisions = set(TransferApproval.objects.values_list("decision", flat=True))
    assert decisions == {"pending", "approved"}
    assert load_referral_demo() == 0  # once only
