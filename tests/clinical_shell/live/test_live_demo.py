"""The demo's live session: made once, in the room the demo relay serves, by a center surgeon
with a county surgeon invited, so `make run`'s watch page has something to play."""

import pytest
from shell_personas import Personas

from clinical_shell.live.demo import DEMO_ROOM, DEMO_STREAMS, load_live_demo
from clinical_shell.live.models import LiveSession
from osteon.demo import DEMO_RELAY_ROOM, DEMO_RELAY_STREAMS

pytestmark = pytest.mark.django_db


def test_the_demo_session_is_made_once_in_the_demo_relays_room(personas: Personas) -> None:
    assert (DEMO_ROOM, DEMO_STREAMS) == (DEMO_RELAY_ROOM, DEMO_RELAY_STREAMS)
    assert load_live_demo() == 1
    session = LiveSession.objects.get()
    assert session.room == DEMO_ROOM and session.streams == list(DEMO_STREAMS)
    assert session.created_by == personas.center_surgeon
    assert personas.county_surgeon in session.invitees.all()
    assert session.patient is None and session.status == LiveSession.Status.LIVE
    assert load_live_demo() == 0  # present: left as it is
    assert LiveSession.objects.count() == 1
