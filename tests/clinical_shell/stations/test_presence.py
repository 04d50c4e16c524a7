"""Presence: a heartbeat makes a station online (busy while it runs a session), silence makes it
offline; every change is published live on "stations" and "station.<id>"; revocation cuts the
station off (its key is no longer found) and is audited."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone
from shell_personas import Network
from station_helpers import EnrolledStation, StationPersonas, tiny_case

from clinical_shell.accounts.models import SignInFailure
from clinical_shell.audit.models import AuditEvent
from clinical_shell.realtime.events import group_name
from clinical_shell.stations import selectors, services
from clinical_shell.stations.bridge_side import DjangoShellSide
from clinical_shell.stations.models import Station


class Listener:
    """A channel subscribed to live topics, as a browser's websocket would be."""

    def __init__(self, *topics: str) -> None:
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        for topic in topics:
            async_to_sync(self.layer.group_add)(group_name(topic), self.channel)

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        got = []

        async def drain() -> None:
            import asyncio

            while True:
                try:
                    message = await asyncio.wait_for(self.layer.receive(self.channel), 0.05)
                except TimeoutError:
                    return
                got.append((message["topic"], message["event"]))

        async_to_sync(drain)()
        return got


@pytest.fixture
def listener(enrolled: EnrolledStation) -> Iterator[Listener]:
    yield Listener("stations", f"station.{enrolled.station.pk}")


def _presences(listener: Listener) -> list[tuple[str, str]]:
    return [(topic, event["presence"]) for topic, event in listener.events()]


def test_heartbeats_and_silence_move_a_station_online_busy_offline(
    enrolled: EnrolledStation, people: StationPersonas, listener: Listener, tmp_path: Path
) -> None:
    station_id = enrolled.station.pk
    topic = f"station.{station_id}"
    assert selectors.presence_of(enrolled.station) == "offline"
    assert services.record_contact(station_id=station_id, busy=False) == "online"
    assert _presences(listener) == [("stations", "online"), (topic, "online")]
    # a second heartbeat changes nothing: nothing published
    services.record_contact(station_id=station_id, busy=False)
    assert listener.events() == []
    # the station runs a session started from the shell
    session = services.start_session_from_shell(
        actor=people.administrator,
        station=enrolled.station,
        case_content_hash=tiny_case(tmp_path),
        scenario="pedicle_pilot_hole",
        user=people.surgeon,
    )
    services.record_contact(
        station_id=station_id,
        busy=True,
        session_uid=session.uid,
        username=people.surgeon.get_username(),
    )
    station = Station.objects.get(pk=station_id)
    assert selectors.presence_of(station) == "busy"
    assert station.current_session == session and station.signed_in_user == people.surgeon
    session.refresh_from_db()
    assert session.state == "running"
    events = listener.events()
    assert [e["presence"] for _, e in events] == ["busy", "busy"]
    assert events[0][1]["current_session"]["id"] == session.pk
    # silence: offline computed after OSTEON_STATION_OFFLINE_AFTER_S, and published by the bridge
    Station.objects.filter(pk=station_id).update(
        last_contact_at=timezone.now() - timedelta(seconds=3.5)
    )
    assert selectors.presence_of(Station.objects.get(pk=station_id)) == "offline"
    services.mark_offline(station_id=station_id)
    assert _presences(listener) == [("stations", "offline"), (topic, "offline")]
    services.mark_offline(station_id=station_id)
    assert listener.events() == []


def test_the_bridge_side_reports_presence_through_the_services(
    enrolled: EnrolledStation, listener: Listener
) -> None:
    from bridge.messages import Heartbeat

    side = DjangoShellSide()
    ref = side.station_for_key(enrolled.keys.curve_public)
    assert ref is not None and ref.station_id == str(enrolled.station.pk)
    side.heartbeat(ref, Heartbeat(state="idle"))
    assert Station.objects.get(pk=enrolled.station.pk).presence == "online"
    side.station_offline(ref)
    assert Station.objects.get(pk=enrolled.station.pk).presence == "offline"
    assert [p for _, p in _presences(listener)] == ["online", "online", "offline", "offline"]


def test_revocation_cuts_the_station_off_and_is_audited(
    enrolled: EnrolledStation,
    people: StationPersonas,
    listener: Listener,
    django_capture_on_commit_callbacks: Any,
) -> None:
    side = DjangoShellSide()
    assert side.station_for_key(enrolled.keys.curve_public) is not None
    services.record_contact(station_id=enrolled.station.pk, busy=False)
    listener.events()
    with django_capture_on_commit_callbacks(execute=True):
        services.revoke_station(
            actor=people.administrator, station=enrolled.station, reason="主机被盗 / stolen"
        )
    assert side.station_for_key(enrolled.keys.curve_public) is None
    station = Station.objects.get(pk=enrolled.station.pk)
    assert station.status == "revoked" and station.revoked_by == people.administrator
    assert selectors.presence_of(station) == "offline"
    assert _presences(listener) == [
        ("stations", "offline"),
        (f"station.{station.pk}", "offline"),
    ]
    # heartbeats from a revoked station change nothing
    assert services.record_contact(station_id=station.pk, busy=False) == "offline"
    event = AuditEvent.objects.get(action="station.revoke")
    assert event.actor_user_id == people.administrator.pk and "stolen" in event.reason
    with pytest.raises(services.StationError, match="已被吊销"):
        services.revoke_station(actor=people.administrator, station=station, reason="again")


def test_a_one_time_sign_in_code_works_once_and_expires(
    enrolled: EnrolledStation, people: StationPersonas
) -> None:
    from clinical_shell.stations.models import StationSignInCode

    issued = services.issue_sign_in_code(actor=people.surgeon)
    assert len(issued.code) == 9 and issued.code[4] == "-"
    row = StationSignInCode.objects.get(pk=issued.row_id)
    assert issued.code.replace("-", "") not in row.code_sha256
    username = people.surgeon.get_username()
    # someone else's name with this code: refused
    with pytest.raises(services.StationError):
        services.sign_in_at_station(
            station=enrolled.station,
            username=people.colleague.get_username(),
            secret=issued.code,
            method="one_time_code",
        )
    sign_in = services.sign_in_at_station(
        station=enrolled.station, username=username, secret=issued.code, method="one_time_code"
    )
    assert sign_in.user == people.surgeon
    assert Station.objects.get(pk=enrolled.station.pk).signed_in_user == people.surgeon
    with pytest.raises(services.StationError, match=r"已使用|已过期|无效"):
        services.sign_in_at_station(
            station=enrolled.station, username=username, secret=issued.code, method="one_time_code"
        )
    late = services.issue_sign_in_code(actor=people.surgeon)
    StationSignInCode.objects.filter(pk=late.row_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(services.StationError):
        services.sign_in_at_station(
            station=enrolled.station, username=username, secret=late.code, method="one_time_code"
        )
    whys = list(
        AuditEvent.objects.filter(action="station.sign_in", outcome="failure")
        .order_by("id")
        .values_list("detail__why", flat=True)
    )
    assert whys == ["unknown_code", "code_used", "code_expired"]


def test_a_password_sign_in_uses_the_shells_rule(
    enrolled: EnrolledStation, people: StationPersonas, shell_network: Network
) -> None:
    username = people.surgeon.get_username()
    with pytest.raises(services.StationError) as refused:
        services.sign_in_at_station(
            station=enrolled.station, username=username, secret="wrong", method="password"
        )
    assert refused.value.code == "sign_in_refused"
    ok = services.sign_in_at_station(
        station=enrolled.station, username=username, secret="Osteon-test-2026!", method="password"
    )
    assert ok.method == "password"
    # refused passwords go to the sign-in failure stream (retention), not the audit chain
    assert SignInFailure.objects.filter(username=username, channel="station").count() == 1
    assert AuditEvent.objects.filter(action="station.sign_in", outcome="success").count() == 1


def test_a_busy_station_takes_no_second_session_until_it_is_idle_again(
    enrolled: EnrolledStation, people: StationPersonas, tmp_path: Path
) -> None:
    case = tiny_case(tmp_path)

    def start() -> Any:
        return services.start_session_from_shell(
            actor=people.administrator,
            station=Station.objects.get(pk=enrolled.station.pk),
            case_content_hash=case,
            scenario="pedicle_pilot_hole",
            user=people.surgeon,
        )

    first = start()
    with pytest.raises(services.StationError, match="正在训练"):
        start()  # queued for the station
    services.confirm_session_started(station_id=enrolled.station.pk, session_uid=first.uid)
    services.record_contact(station_id=enrolled.station.pk, busy=True, session_uid=first.uid)
    with pytest.raises(services.StationError, match="正在训练"):
        start()  # the station runs it
    # the station restarted without a result for it: idle again, it takes the next session
    services.record_contact(station_id=enrolled.station.pk, busy=False)
    assert start().state == "queued"


def test_live_station_events_carry_the_contact_time_in_the_shells_zone(
    enrolled: EnrolledStation,
) -> None:
    # the list page renders times in TIME_ZONE; the live update must show the same clock
    from datetime import UTC, datetime

    from clinical_shell.stations.live import station_event

    station = enrolled.station
    station.last_contact_at = datetime(2026, 12, 4, 16, 19, 55, tzinfo=UTC)
    event = station_event(station)
    assert event["last_contact_local"] == "2026-12-05 00:19:55"  # Asia/Shanghai, UTC+8
