"""A session whose station dies ends honestly: past the grace period
(OSTEON_STATION_SESSION_GRACE_S, lowered here) without contact, the minute's sweep marks it
aborted with the reason `station_lost`, audited and published live; a station back within the
grace keeps its session; a result that arrives after the abort is stored, verified and marked
late."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from huey.contrib.djhuey import HUEY
from station_helpers import EngineSession, EnrolledStation, StationPersonas, signed_result
from test_presence import Listener

from clinical_shell.audit.models import AuditEvent
from clinical_shell.stations import case_archives, selectors, services, tasks
from clinical_shell.stations.models import Station, StationSession

GRACE_S = 30


@pytest.fixture
def running(
    enrolled: EnrolledStation,
    people: StationPersonas,
    engine_session: EngineSession,
    settings: Any,
) -> StationSession:
    """The surgeon's shell-started session, running on the station (confirmed, heartbeating)."""
    settings.OSTEON_STATION_SESSION_GRACE_S = GRACE_S
    case_archives.archive_for_bundle(engine_session.case_dir)  # the shell knows the case
    session = services.start_session_from_shell(
        actor=people.administrator,
        station=enrolled.station,
        case_content_hash=engine_session.content_hash,
        scenario="pedicle_pilot_hole",
        user=people.surgeon,
    )
    services.confirm_session_started(station_id=enrolled.station.pk, session_uid=session.uid)
    services.record_contact(
        station_id=enrolled.station.pk,
        busy=True,
        session_uid=session.uid,
        username=people.surgeon.get_username(),
    )
    return StationSession.objects.get(pk=session.pk)


def _silent_for(station: Station, seconds: float) -> None:
    Station.objects.filter(pk=station.pk).update(
        last_contact_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_the_sweep_is_a_periodic_task_of_the_worker() -> None:
    assert tasks.abort_lost_sessions.task_class in HUEY._registry._periodic_tasks
    # every minute
    assert tasks.abort_lost_sessions.task_class().validate_datetime(timezone.now())


def test_a_session_whose_station_is_lost_past_the_grace_is_aborted_audited_and_published(
    enrolled: EnrolledStation,
    running: StationSession,
    django_capture_on_commit_callbacks: Any,
) -> None:
    assert running.state == "running"
    listener = Listener(f"session.{running.pk}", f"station.{enrolled.station.pk}")
    _silent_for(enrolled.station, GRACE_S + 1)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.abort_lost_sessions.call_local()
    session = StationSession.objects.get(pk=running.pk)
    assert session.state == "aborted" and session.ended_at is not None
    assert session.abort_code == "station_lost"
    assert session.abort_params["grace_s"] == GRACE_S
    assert "30" in session.abort_reason and "interrupted" in session.abort_reason
    station = Station.objects.get(pk=enrolled.station.pk)
    assert station.current_session is None
    event = AuditEvent.objects.get(action="station_session.aborted")
    assert event.outcome == "failure" and event.detail["code"] == "station_lost"
    assert event.target_id == str(session.pk)
    published = listener.events()
    assert (f"session.{session.pk}", "aborted") in [
        (topic, e.get("state")) for topic, e in published if e["kind"] == "session"
    ]
    assert [e["abort_code"] for _, e in published if e["kind"] == "session"] == ["station_lost"]
    assert any(topic == f"station.{station.pk}" for topic, _ in published)
    # a second sweep finds nothing more to do
    assert services.abort_lost_sessions() == []
    assert AuditEvent.objects.filter(action="station_session.aborted").count() == 1


def test_a_station_back_within_the_grace_keeps_its_session(
    enrolled: EnrolledStation, people: StationPersonas, running: StationSession
) -> None:
    _silent_for(enrolled.station, GRACE_S - 5)
    assert services.abort_lost_sessions() == []
    # silent past the grace, then a heartbeat just before the sweep: it is back, nothing ends
    _silent_for(enrolled.station, GRACE_S + 60)
    services.record_contact(
        station_id=enrolled.station.pk,
        busy=True,
        session_uid=running.uid,
        username=people.surgeon.get_username(),
    )
    assert services.abort_lost_sessions() == []
    assert StationSession.objects.get(pk=running.pk).state == "running"


def test_a_result_arriving_after_the_abort_is_stored_verified_and_marked_late(
    enrolled: EnrolledStation,
    people: StationPersonas,
    engine_session: EngineSession,
    running: StationSession,
    signed_in_client: Any,
) -> None:
    _silent_for(enrolled.station, GRACE_S + 1)
    assert services.abort_lost_sessions() == [running.pk]
    # the station comes back an hour later and its outbox resends the result
    result = signed_result(
        enrolled,
        username=people.surgeon.get_username(),
        session_id=running.uid,
        case_hash=case_archives.archive_for_bundle(engine_session.case_dir).archive_hash,
        recording=engine_session.recording,
        engine_result=engine_session.result,
    )
    message_id = uuid.uuid4().hex
    accepted = services.accept_result(
        station=enrolled.station, message_id=message_id, result=result
    )
    assert not accepted.duplicate and accepted.result.arrived_late
    assert AuditEvent.objects.get(action="session_result.accept").detail["arrived_late"] is True
    session = StationSession.objects.get(pk=running.pk)
    # the result ended it; why it had been declared interrupted stays on record
    assert session.state == "finished" and session.abort_code == "station_lost"
    verified = services.verify_result_by_replay(result_id=accepted.result.pk)
    assert verified.verification == "verified", verified.rejection_reason
    assert list(selectors.verified_scores(people.surgeon)) == [verified]
    # a resend of the same message is still a duplicate, acknowledged, nothing new
    again = services.accept_result(station=enrolled.station, message_id=message_id, result=result)
    assert again.duplicate and again.result.pk == verified.pk

    client: Client = signed_in_client(people.surgeon)
    chinese = client.get(f"/stations/sessions/{session.pk}/").content.decode()
    assert 'id="late-result"' in chinese and "工作站失联超过 30 秒" in chinese
    english = client.get(
        f"/stations/sessions/{session.pk}/", HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert "declared interrupted" in english and "工作站失联" not in english
    api = client.get(f"/api/v1/stations/sessions/{session.pk}", HTTP_ACCEPT_LANGUAGE="en").json()
    assert api["abort_code"] == "station_lost" and api["result"]["arrived_late"] is True
    assert "out of contact for more than 30 s" in api["abort_reason_text"]


def test_an_aborted_session_shows_why_in_the_readers_language(
    enrolled: EnrolledStation,
    people: StationPersonas,
    running: StationSession,
    signed_in_client: Any,
) -> None:
    _silent_for(enrolled.station, GRACE_S + 1)
    services.abort_lost_sessions()
    client: Client = signed_in_client(people.surgeon)
    url = f"/stations/sessions/{running.pk}/"
    chinese = client.get(url).content.decode()
    assert "工作站失联超过 30 秒，训练被判定中断" in chinese and "out of contact" not in chinese
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "out of contact for more than 30 s" in english and "工作站失联" not in english
    listed = client.get("/stations/sessions/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "out of contact for more than 30 s" in listed
