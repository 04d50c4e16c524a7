"""How a station's streamed view ends besides its stop button: ending its live session stops
it over the bridge; a station gone offline (the bridge says so, or silence past the presence
timeout) fails it, audited; and the stop button ends the stream only, saying so."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from station_helpers import EnrolledStation, StationPersonas, enrol

from bridge.messages import StopStream, StreamStatus
from bridge.shell_side import StationRef
from clinical_shell.audit.models import AuditEvent
from clinical_shell.live import services as live_services
from clinical_shell.live.models import LiveSession
from clinical_shell.stations import services, streams
from clinical_shell.stations.bridge_side import DjangoShellSide, station_ref
from clinical_shell.stations.models import Station, StationStream

SECRET = "s" * 48


@pytest.fixture(autouse=True)
def relay_settings(settings: Any) -> None:
    settings.OSTEON_STREAM_RELAY_SECRET = SECRET
    settings.OSTEON_STREAM_RELAY_URL = "ws://127.0.0.1:8765"
    settings.OSTEON_STATION_OFFLINE_AFTER_S = 600.0


@pytest.fixture
def online(enrolled: EnrolledStation, people: StationPersonas) -> Station:
    services.record_contact(
        station_id=enrolled.station.pk, busy=False, username=people.surgeon.get_username()
    )
    return Station.objects.get(pk=enrolled.station.pk)


def ref(station: Station) -> StationRef:
    return station_ref(Station.objects.select_related("institution").get(pk=station.pk))


def publishing(people: StationPersonas, station: Station) -> StationStream:
    stream = streams.start_station_stream(actor=people.surgeon, station=station, invitees=[])
    DjangoShellSide().stream_status(
        ref(station), StreamStatus(stream_id=stream.uid, state="publishing")
    )
    stream.refresh_from_db()
    assert stream.state == "publishing"
    return stream


@pytest.mark.django_db
def test_ending_the_live_session_stops_the_stations_stream_over_the_bridge(
    people: StationPersonas, online: Station
) -> None:
    stream = publishing(people, online)
    session = LiveSession.objects.get(pk=stream.live_session_id)
    live_services.end_live_session(actor=people.surgeon, session=session)
    stream.refresh_from_db()
    assert stream.state == "stopping"
    side = DjangoShellSide()
    assert side.pending_commands(ref(online)) == [StopStream(stream_id=stream.uid)]
    audit = AuditEvent.objects.get(action="station.stream_stop", actor_user_id=people.surgeon.pk)
    assert audit.detail["why"] == "live_session_ended"
    # the station answers: the stream ends, nothing more is pushed
    side.stream_status(ref(online), StreamStatus(stream_id=stream.uid, state="stopped"))
    stream.refresh_from_db()
    assert stream.state == "stopped" and side.pending_commands(ref(online)) == []


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.django_db
def test_stopping_the_stream_leaves_the_live_session_on_and_the_page_says_so(
    language: str, people: StationPersonas, online: Station
) -> None:
    stream = publishing(people, online)
    client = Client(headers={"accept-language": language})
    client.force_login(people.surgeon)
    response = client.post(f"/stations/{online.pk}/stream/stop/", {"stream": stream.uid})
    assert response.status_code == 302
    session = LiveSession.objects.get(pk=stream.live_session_id)
    assert session.status == LiveSession.Status.LIVE
    page = client.get(f"/stations/{online.pk}/").content.decode()
    note = (
        "停止直播画面不会结束实时会话"
        if language == "zh-hans"
        else "Stopping the view does not end the live session"
    )
    assert note in page
    assert not AuditEvent.objects.filter(action="live.end").exists()


@pytest.mark.django_db
def test_a_station_the_bridge_marks_offline_fails_its_stream(
    people: StationPersonas, online: Station
) -> None:
    stream = publishing(people, online)
    DjangoShellSide().station_offline(ref(online))
    stream.refresh_from_db()
    assert (stream.state, stream.error) == ("failed", "the station went offline")
    audit = AuditEvent.objects.filter(action="station.stream_status").latest("pk")
    assert audit.detail["state"] == "failed"
    assert audit.detail["error"] == "the station went offline"
    # a station that comes back may stream again
    services.record_contact(station_id=online.pk, busy=False, username="")
    assert streams.start_station_stream(
        actor=people.administrator, station=online, invitees=[]
    ).state == ("requested")


@pytest.mark.django_db
def test_a_silent_station_fails_its_stream_on_the_minute_job_and_others_keep_theirs(
    people: StationPersonas, online: Station, settings: Any
) -> None:
    settings.OSTEON_STATION_OFFLINE_AFTER_S = 10.0
    silent = publishing(people, online)
    other = enrol(people.administrator, online.institution, room="另一间").station
    services.record_contact(station_id=other.pk, busy=False, username="")
    kept = streams.start_station_stream(actor=people.administrator, station=other, invitees=[])
    Station.objects.filter(pk=online.pk).update(
        last_contact_at=timezone.now() - timedelta(seconds=30)
    )
    from clinical_shell.stations.tasks import abort_lost_sessions

    abort_lost_sessions.call_local()
    silent.refresh_from_db()
    kept.refresh_from_db()
    assert (silent.state, silent.error) == ("failed", "the station went offline")
    assert kept.state == "requested"
    assert (
        AuditEvent.objects.filter(action="station.stream_status", detail__state="failed").count()
        == 1
    )
