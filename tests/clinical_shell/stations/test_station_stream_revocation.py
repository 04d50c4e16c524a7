"""Stopping a station's stream revokes its publishing at the relay: with a real relay process,
the stop button cuts the station's publisher off now (4403 "publishing revoked") and the publish
token the bridge pushed no longer admits, though unexpired; the station's answer to being cut
off ends the stream as stopped, not failed; a stream started again publishes. Ending the live
session and a station going offline revoke the same way."""

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_django.fixtures import Settings
from station_helpers import EnrolledStation, StationPersonas
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from bridge.messages import StartStream, StreamStatus
from bridge.shell_side import StationRef
from clinical_shell.audit.models import AuditEvent
from clinical_shell.live import services as live_services
from clinical_shell.live.models import LiveSession
from clinical_shell.stations import services, streams
from clinical_shell.stations.bridge_side import DjangoShellSide, station_ref
from clinical_shell.stations.models import Station, StationStream

# the streaming tests' relay process helpers
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "streaming"))
from streaming_helpers import RelayProcess, start_relay, stop_relay

pytestmark = pytest.mark.django_db
CaptureOnCommit = Callable[..., Any]


@pytest.fixture
def online(enrolled: EnrolledStation, people: StationPersonas, settings: Settings) -> Station:
    settings.OSTEON_STATION_OFFLINE_AFTER_S = 600.0
    services.record_contact(
        station_id=enrolled.station.pk, busy=False, username=people.surgeon.get_username()
    )
    return Station.objects.get(pk=enrolled.station.pk)


@pytest.fixture
def relay(online: Station, settings: Settings, tmp_path: Path) -> Iterator[RelayProcess]:
    """A relay declaring the station's room, its view published; the shell pointed at it."""
    folder = tmp_path / "relay"
    folder.mkdir()
    view = {"view": {"source": {"kind": "publish"}, "qualities": ["360p"]}}
    process = start_relay(folder, {streams.station_room(online): view}, stall_timeout_s=60)
    settings.OSTEON_STREAM_RELAY_URL = f"ws://127.0.0.1:{process.port}"
    settings.OSTEON_STREAM_RELAY_SECRET = process.secret.decode()
    yield process
    stop_relay(process)


@pytest.fixture
def controls(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> list[dict[str, Any]]:
    """The control messages the stations app sends the relay."""
    settings.OSTEON_STREAM_RELAY_SECRET = "s" * 48
    settings.OSTEON_STREAM_RELAY_URL = "ws://127.0.0.1:8765"
    sent: list[dict[str, Any]] = []

    def record(message: dict[str, Any]) -> bool:
        sent.append(message)
        return True

    monkeypatch.setattr(streams, "send_control", record)
    return sent


def ref(station: Station) -> StationRef:
    return station_ref(Station.objects.select_related("institution").get(pk=station.pk))


def pushed_start(station: Station) -> StartStream:
    (command,) = DjangoShellSide().pending_commands(ref(station))
    assert isinstance(command, StartStream)
    return command


@pytest.fixture
def sockets() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as stack:
        yield stack


def publish(sockets: contextlib.ExitStack, command: StartStream) -> ClientConnection:
    """The station's publisher, admitted with the pushed command's address and token."""
    url = f"{command.publish_url}?token={command.token}"
    ws = sockets.enter_context(connect(url, open_timeout=5))
    assert json.loads(ws.recv(timeout=5))["type"] == "publish_ok"
    return ws


def closed(ws: ClientConnection) -> tuple[int, str]:
    """The close code and reason the relay ends ``ws`` with, within 2 s."""
    with pytest.raises(ConnectionClosed) as caught:
        ws.recv(timeout=2)
    assert caught.value.rcvd is not None
    return caught.value.rcvd.code, caught.value.rcvd.reason


def test_stopping_the_stream_cuts_the_publisher_off_and_its_token_no_longer_admits(
    people: StationPersonas,
    online: Station,
    relay: RelayProcess,
    django_capture_on_commit_callbacks: CaptureOnCommit,
    sockets: contextlib.ExitStack,
) -> None:
    stream = streams.start_station_stream(actor=people.surgeon, station=online, invitees=[])
    command = pushed_start(online)
    station = publish(sockets, command)
    side = DjangoShellSide()
    side.stream_status(ref(online), StreamStatus(stream_id=stream.uid, state="publishing"))
    with django_capture_on_commit_callbacks(execute=True):
        streams.stop_station_stream(actor=people.surgeon, stream=stream)
    assert closed(station) == (4403, "publishing revoked")
    # the token the bridge pushed a moment ago (valid for a minute) is refused now
    with connect(f"{command.publish_url}?token={command.token}", open_timeout=5) as again:
        assert closed(again) == (4403, "publishing revoked")
    # cut off before the StopStream reached it, the station says failed: the stop took effect
    said = "the relay closed the stream: received 4403 (private use) publishing revoked"
    side.stream_status(ref(online), StreamStatus(stream_id=stream.uid, state="failed", error=said))
    stream.refresh_from_db()
    assert (stream.state, stream.error) == ("stopped", "")
    audit = AuditEvent.objects.filter(action="station.stream_status").latest("pk")
    assert audit.detail["state"] == "stopped" and audit.detail["reported"] == said
    # started again: the fresh token admits
    streams.start_station_stream(actor=people.surgeon, station=online, invitees=[])
    publish(sockets, pushed_start(online))
    assert "publishing revoked in station-" in relay.log()


def test_ending_the_live_session_revokes_the_stations_publishing(
    people: StationPersonas,
    online: Station,
    controls: list[dict[str, Any]],
    django_capture_on_commit_callbacks: CaptureOnCommit,
) -> None:
    stream = streams.start_station_stream(actor=people.surgeon, station=online, invitees=[])
    session = LiveSession.objects.get(pk=stream.live_session_id)
    with django_capture_on_commit_callbacks(execute=True):
        live_services.end_live_session(actor=people.surgeon, session=session)
    revoke = {"kind": "revoke_publish", "room": f"station-{online.pk}", "stream": "view"}
    assert controls == [revoke]


def test_a_station_gone_offline_has_its_publishing_revoked_and_a_rolled_back_stop_not(
    people: StationPersonas,
    online: Station,
    controls: list[dict[str, Any]],
    django_capture_on_commit_callbacks: CaptureOnCommit,
) -> None:
    stream = streams.start_station_stream(actor=people.surgeon, station=online, invitees=[])
    # a stop that is refused changes nothing and revokes nothing
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(services.StationError):
        streams.stop_station_stream(actor=people.colleague, stream=stream)
    assert controls == []
    with django_capture_on_commit_callbacks(execute=True):
        DjangoShellSide().station_offline(ref(online))
    stream.refresh_from_db()
    assert stream.state == StationStream.State.FAILED
    assert controls == [{"kind": "revoke_publish", "room": stream.room, "stream": "view"}]


def test_revoking_a_station_ends_its_stream_and_revokes_its_publishing_at_once(
    people: StationPersonas,
    online: Station,
    controls: list[dict[str, Any]],
    django_capture_on_commit_callbacks: CaptureOnCommit,
) -> None:
    stream = streams.start_station_stream(actor=people.surgeon, station=online, invitees=[])
    with django_capture_on_commit_callbacks(execute=True):
        services.revoke_station(actor=people.administrator, station=online, reason="被盗")
    stream.refresh_from_db()
    assert stream.state == StationStream.State.FAILED
    assert controls == [{"kind": "revoke_publish", "room": stream.room, "stream": "view"}]
