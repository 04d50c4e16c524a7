"""The shell and a real relay process together: removing an invitee or ending a session cuts the
pictures off now (the relay is told; the viewer's socket closes within two seconds, the token it
still holds no longer admits), and two sessions overlapping in one room each get only their own
recordings."""

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks, Settings
from shell_personas import Personas
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from clinical_shell.audit.models import AuditEvent
from clinical_shell.live import services
from clinical_shell.live.models import LiveSession

# the streaming tests' relay process helpers
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "streaming"))
from streaming_helpers import RelayProcess, start_relay, stop_relay

pytestmark = pytest.mark.django_db
ROOMS = {"or-3": {"field": {"source": {"kind": "test", "fps": 15}, "qualities": ["360p"]}}}


@pytest.fixture
def relay(settings: Settings, tmp_path: Path) -> Iterator[RelayProcess]:
    folder = tmp_path / "relay"
    folder.mkdir()
    recordings = tmp_path / "recordings"
    process = start_relay(folder, ROOMS, record_dir=str(recordings), restart_initial_s=0.2)
    settings.OSTEON_STREAM_RELAY_URL = f"ws://127.0.0.1:{process.port}"
    settings.OSTEON_STREAM_RELAY_SECRET = process.secret.decode()
    settings.OSTEON_LIVE_RECORDINGS_DIR = recordings
    yield process
    stop_relay(process)


@pytest.fixture
def sockets() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as stack:
        yield stack


def watching(
    sockets: contextlib.ExitStack, session: LiveSession, user: User
) -> tuple[ClientConnection, str]:
    """A viewer of the session's field camera with the token the API gives, playing; the
    socket and the token's address."""
    viewer_pass = services.join_live_session(actor=user, session=session)
    url = f"{viewer_pass.url}/streams/field/360p?token={viewer_pass.token}"
    ws = sockets.enter_context(connect(url))
    # the init segment, then media
    while not isinstance(ws.recv(timeout=15), bytes):
        pass
    return ws, url


def closed_within(ws: ClientConnection, seconds: float) -> tuple[int, str]:
    deadline = time.monotonic() + seconds
    with pytest.raises(ConnectionClosed) as caught:
        while True:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    assert caught.value.rcvd is not None
    return caught.value.rcvd.code, caught.value.rcvd.reason


def test_removing_an_invitee_closes_their_picture_now_and_ending_closes_everyones(
    personas: Personas,
    make_session: Callable[..., LiveSession],
    relay: RelayProcess,
    django_capture_on_commit_callbacks: Callable[..., Any],
    sockets: contextlib.ExitStack,
) -> None:
    creator, expert, radiologist = (
        personas.county_surgeon,
        personas.center_surgeon,
        personas.radiologist,
    )
    session = make_session(invitees=[expert, radiologist])
    removed, removed_url = watching(sockets, session, radiologist)
    staying, _ = watching(sockets, session, expert)
    own, _ = watching(sockets, session, creator)
    capture: DjangoCaptureOnCommitCallbacks = django_capture_on_commit_callbacks(execute=True)
    started = time.monotonic()
    with capture:
        services.remove_invitee(actor=creator, session=session, user_id=radiologist.pk)
    assert closed_within(removed, 2.0) == (4403, "access revoked")
    assert time.monotonic() - started < 2.0
    assert AuditEvent.objects.filter(
        action="live.uninvite", actor_user_id=creator.pk, detail__user=radiologist.pk
    ).exists()
    # the token the removed viewer's page still holds (valid for a minute) admits no more
    again = sockets.enter_context(connect(removed_url))
    assert closed_within(again, 5.0) == (4403, "access revoked")
    # the others watch on
    assert isinstance(staying.recv(timeout=5), bytes | str)
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        services.end_live_session(actor=creator, session=session)
    assert closed_within(staying, 2.0) == (4403, "session ended")
    assert closed_within(own, 2.0) == (4403, "session ended")
    assert time.monotonic() - started < 2.5
    session.refresh_from_db()
    assert session.status == LiveSession.Status.ENDED


def test_the_pages_end_and_uninvite_are_for_the_creator_only(
    personas: Personas,
    make_session: Callable[..., LiveSession],
    signed_in_client: Callable[[User], Any],
) -> None:
    session = make_session()
    expert = signed_in_client(personas.center_surgeon)
    assert expert.post(f"/live/{session.pk}/end/").status_code == 403
    url = f"/live/{session.pk}/invitees/{personas.center_surgeon.pk}/remove/"
    assert expert.post(url).status_code == 403
    creator = signed_in_client(personas.county_surgeon)
    # someone not on the list cannot be removed
    other = f"/live/{session.pk}/invitees/{personas.outsider.pk}/remove/"
    assert creator.post(other).status_code == 404
    assert creator.post(url).status_code == 302
    assert not session.invitees.exists()
    # the removed expert can no longer open the page or get a token
    assert expert.get(f"/live/{session.pk}/").status_code == 403
    assert expert.post(f"/api/v1/live/sessions/{session.pk}/token").status_code == 403
    assert creator.post(f"/live/{session.pk}/end/").status_code == 302
    assert creator.post(f"/api/v1/live/sessions/{session.pk}/token").status_code == 409


def test_two_sessions_overlapping_in_one_room_get_only_their_own_recordings(
    personas: Personas,
    make_session: Callable[..., LiveSession],
    relay: RelayProcess,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    creator = personas.county_surgeon
    recordings = Path(relay.log_path.parent.parent / "recordings" / "or-3")
    with django_capture_on_commit_callbacks(execute=True):
        first = make_session()
    first_from = time.monotonic()
    time.sleep(3.0)
    with django_capture_on_commit_callbacks(execute=True):
        second = make_session()
    second_from = time.monotonic()
    time.sleep(3.0)
    with django_capture_on_commit_callbacks(execute=True):
        services.end_live_session(actor=creator, session=first)
    first_to = time.monotonic()
    time.sleep(3.0)
    with django_capture_on_commit_callbacks(execute=True):
        services.end_live_session(actor=creator, session=second)
    second_to = time.monotonic()
    # the relay remuxes each finished file in the background
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        not list((recordings / str(second.pk)).glob("*.mp4")) or list(recordings.glob("*/*.part"))
    ):
        time.sleep(0.1)
    (a,) = services.attach_recordings(actor=creator, session=first)
    (b,) = services.attach_recordings(actor=creator, session=second)
    assert a.path.startswith(f"or-3/{first.pk}/field-")
    assert b.path.startswith(f"or-3/{second.pk}/field-")
    # each covers its own live time (from the first keyframe after it went live)
    assert abs(a.duration_s - (first_to - first_from)) <= 1.5
    assert abs(b.duration_s - (second_to - second_from)) <= 1.5
    assert abs((b.media_start_s - a.media_start_s) - (second_from - first_from)) <= 1.5
    # nothing more to attach to either: the other's file is not theirs
    assert services.attach_recordings(actor=creator, session=first) == []
    assert services.attach_recordings(actor=creator, session=second) == []
