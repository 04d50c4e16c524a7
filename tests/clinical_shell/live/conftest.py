"""Live sessions for the tests: the relay secret is a fixed test value, the relay a fixed URL."""

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from live_relay import RELAY_SECRET, RELAY_URL
from pytest_django.fixtures import Settings
from shell_personas import Personas

from clinical_shell.live import services
from clinical_shell.live.models import LiveSession
from clinical_shell.records.models import Patient


@pytest.fixture(autouse=True)
def _relay_settings(settings: Settings) -> None:
    settings.OSTEON_STREAM_RELAY_SECRET = RELAY_SECRET
    settings.OSTEON_STREAM_RELAY_URL = RELAY_URL


@pytest.fixture
def make_session(personas: Personas) -> Callable[..., LiveSession]:
    """A session created by the county surgeon, inviting the center surgeon (a remote expert)."""

    def make(
        *,
        patient: Patient | None = None,
        consent: bool = False,
        invitees: list[User] | None = None,
        room: str = "or-3",
    ) -> LiveSession:
        return services.create_live_session(
            actor=personas.county_surgeon,
            data=services.LiveSessionIn(
                title="右髋股骨颈骨折 空心钉内固定",
                room=room,
                streams=["field", "endoscope"],
                invitees=[personas.center_surgeon] if invitees is None else invitees,
                patient=patient,
                consent_recorded=consent,
            ),
        )

    return make
