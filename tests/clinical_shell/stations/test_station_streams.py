"""Streaming a station's own view from the shell: who may start and stop it (every persona,
refusals audited), the live session it opens, the commands the bridge pushes (a publish token
for exactly this station's room and stream, which a station accepts), and the station's
answers, checked as hostile input (another station's stream changes nothing)."""

import uuid
from typing import Any

import pytest
from django.test import Client
from station_helpers import EnrolledStation, StationPersonas, enrol

from bridge.messages import StartStream, StopStream, StreamStatus, check_stream
from bridge.shell_side import StationRef
from clinical_shell.audit.models import AuditEvent
from clinical_shell.live.models import LiveSession
from clinical_shell.stations import services, streams
from clinical_shell.stations.bridge_side import DjangoShellSide, station_ref
from clinical_shell.stations.models import Station, StationStream
from streaming.tokens import TokenError, verify_publish_token

SECRET = "s" * 48
PEOPLE = ["surgeon", "colleague", "outsider", "committee_member", "administrator"]


@pytest.fixture(autouse=True)
def relay_settings(settings: Any) -> None:
    settings.OSTEON_STREAM_RELAY_SECRET = SECRET
    settings.OSTEON_STREAM_RELAY_URL = "ws://127.0.0.1:8765"
    # a shared 2-core machine may take seconds between the heartbeat and the click
    settings.OSTEON_STATION_OFFLINE_AFTER_S = 600.0


@pytest.fixture
def online(enrolled: EnrolledStation, people: StationPersonas) -> Station:
    """The center station heartbeating, with the surgeon signed in at it."""
    services.record_contact(
        station_id=enrolled.station.pk, busy=False, username=people.surgeon.get_username()
    )
    return Station.objects.get(pk=enrolled.station.pk)


def start_page(client: Client, user: Any, station: Station, invitees: str = "") -> Any:
    client.force_login(user)
    return client.post(f"/stations/{station.pk}/stream/start/", {"invitees": invitees})


def ref(station: Station) -> StationRef:
    return station_ref(Station.objects.select_related("institution").get(pk=station.pk))


@pytest.mark.parametrize("who", PEOPLE)
@pytest.mark.django_db
def test_only_the_person_at_the_station_or_its_admin_may_stream_it(
    who: str, people: StationPersonas, online: Station
) -> None:
    user = people.all()[who]
    response = start_page(Client(), user, online, invitees=people.colleague.get_username())
    allowed = who in ("surgeon", "administrator")
    if allowed:
        stream = StationStream.objects.get(station=online)
        assert response.status_code == 302
        assert response["Location"] == f"/live/{stream.live_session_id}/"
        assert stream.live_session_id is not None
        session = LiveSession.objects.get(pk=stream.live_session_id)
        assert (session.room, session.streams) == (f"station-{online.pk}", ["view"])
        assert list(session.invitees.all()) == [people.colleague]
        assert (stream.state, stream.stream, stream.quality) == ("requested", "view", "360p")
        assert AuditEvent.objects.filter(
            action="station.stream_start", actor_user_id=user.pk, outcome="success"
        ).exists()
    else:
        # the outsider does not even see the station; the others see it but may not stream
        assert response.status_code == 403
        assert not StationStream.objects.exists()
        action = "station.read" if who == "outsider" else "station.stream_start"
        assert AuditEvent.objects.filter(
            action=action, actor_user_id=user.pk, outcome="failure"
        ).exists()


@pytest.mark.django_db
def test_an_offline_station_or_a_second_stream_is_refused(
    people: StationPersonas, enrolled: EnrolledStation, online: Station
) -> None:
    client = Client()
    other = enrol(people.administrator, online.institution, room="另一间").station
    response = start_page(client, people.administrator, other)
    assert response.status_code == 409
    assert "工作站离线，无法直播画面" in response.content.decode()
    assert start_page(client, people.administrator, online).status_code == 302
    again = start_page(client, people.administrator, online)
    assert again.status_code == 409 and "该工作站的画面已在直播" in again.content.decode()
    assert StationStream.objects.count() == 1


@pytest.mark.django_db
def test_unknown_invitees_are_named_and_nothing_starts(
    people: StationPersonas, online: Station
) -> None:
    response = start_page(Client(), people.administrator, online, invitees="nobody.here, x")
    assert response.status_code == 422
    assert "nobody.here, x" in response.content.decode()
    assert not StationStream.objects.exists() and not LiveSession.objects.exists()


@pytest.mark.django_db
def test_the_bridge_pushes_a_publish_token_for_exactly_this_stations_stream(
    people: StationPersonas, online: Station
) -> None:
    stream = streams.start_station_stream(actor=people.administrator, station=online, invitees=[])
    side = DjangoShellSide()
    (command,) = side.pending_commands(ref(online))
    assert isinstance(command, StartStream)
    assert command.stream_id == stream.uid
    assert command.publish_url == (
        f"ws://127.0.0.1:8765/publish/rooms/station-{online.pk}/streams/view/360p"
    )
    # a station accepts the command as it is
    assert check_stream(command) == ""
    grant = verify_publish_token(
        secret=SECRET.encode(), token=command.token, room=f"station-{online.pk}", stream="view"
    )
    assert grant.station_id == str(online.pk)
    with pytest.raises(TokenError, match="another room"):
        verify_publish_token(
            secret=SECRET.encode(), token=command.token, room="station-999", stream="view"
        )
    # the station answers: publishing; the command is no longer pushed
    side.stream_status(ref(online), StreamStatus(stream_id=stream.uid, state="publishing"))
    stream.refresh_from_db()
    assert stream.state == "publishing"
    assert side.pending_commands(ref(online)) == []
    # the stop: a StopStream until the station says stopped
    streams.stop_station_stream(actor=people.surgeon, stream=stream)
    assert side.pending_commands(ref(online)) == [StopStream(stream_id=stream.uid)]
    side.stream_status(ref(online), StreamStatus(stream_id=stream.uid, state="stopped"))
    stream.refresh_from_db()
    assert stream.state == "stopped" and side.pending_commands(ref(online)) == []
    actions = list(
        AuditEvent.objects.filter(action__startswith="station.stream").values_list(
            "action", flat=True
        )
    )
    assert actions.count("station.stream_status") == 2 and "station.stream_stop" in actions


@pytest.mark.django_db
def test_a_status_for_another_stations_stream_changes_nothing_and_is_audited(
    people: StationPersonas, online: Station
) -> None:
    stream = streams.start_station_stream(actor=people.administrator, station=online, invitees=[])
    other = enrol(people.administrator, online.institution, room="另一间").station
    side = DjangoShellSide()
    side.stream_status(ref(other), StreamStatus(stream_id=stream.uid, state="stopped"))
    side.stream_status(ref(online), StreamStatus(stream_id=uuid.uuid4().hex, state="failed"))
    stream.refresh_from_db()
    assert stream.state == "requested"
    refused = AuditEvent.objects.filter(action="station.stream_status", outcome="failure")
    assert refused.count() == 2
    # the station's own failure is kept with its words
    side.stream_status(
        ref(online),
        StreamStatus(stream_id=stream.uid, state="failed", error="the relay refused: 4404"),
    )
    stream.refresh_from_db()
    assert (stream.state, stream.error) == ("failed", "the relay refused: 4404")
    # a late "publishing" after the failure does not bring it back
    side.stream_status(ref(online), StreamStatus(stream_id=stream.uid, state="publishing"))
    stream.refresh_from_db()
    assert stream.state == "failed"


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.django_db
def test_the_station_page_shows_the_stream_and_its_stop_button(
    language: str, people: StationPersonas, online: Station
) -> None:
    client = Client(headers={"accept-language": language})
    client.force_login(people.surgeon)
    page = client.get(f"/stations/{online.pk}/").content.decode()
    start = "开始直播工作站画面" if language == "zh-hans" else "Start streaming the station's view"
    assert start in page
    stream = streams.start_station_stream(actor=people.surgeon, station=online, invitees=[])
    page = client.get(f"/stations/{online.pk}/").content.decode()
    stop = "停止直播画面" if language == "zh-hans" else "Stop streaming the view"
    assert stop in page and f"/live/{stream.live_session_id}/" in page
    response = client.post(f"/stations/{online.pk}/stream/stop/", {"stream": stream.uid})
    assert response.status_code == 302
    stream.refresh_from_db()
    assert stream.state == "stopping"
    # a stream id that is not this station's: 404, nothing changes
    response = client.post(f"/stations/{online.pk}/stream/stop/", {"stream": "f" * 32})
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_demo_streams_the_local_station_once_as_its_administrator(
    people: StationPersonas, online: Station
) -> None:
    from clinical_shell.stations.stream_demo import stream_station

    stream = stream_station(online.pk, wait_online_s=1.0)
    assert stream.started_by == people.administrator and stream.state == "requested"
    assert stream.live_session is not None
    invited = set(stream.live_session.invitees.all())
    assert {people.surgeon, people.colleague} <= invited
    # run again (make run restarted): the stream already asked for is kept, not doubled
    assert stream_station(online.pk, wait_online_s=1.0) == stream
    assert StationStream.objects.count() == 1
