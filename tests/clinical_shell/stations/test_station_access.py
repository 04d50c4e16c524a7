"""Who sees and does what: every persona against every rule of stations, sessions and results,
through the API and the pages; refusals audited; list endpoints at a fixed query count."""

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from shell_personas import Network
from station_helpers import (
    FAKE_RESULT,
    EnrolledStation,
    StationPersonas,
    enrol,
    signed_result,
    tiny_case,
)

from clinical_shell.audit.models import AuditEvent
from clinical_shell.stations import services
from clinical_shell.stations.models import SessionResult, Station, StationSession

PEOPLE = ["surgeon", "colleague", "outsider", "committee_member", "administrator"]


@pytest.fixture
def case(enrolled: EnrolledStation, tmp_path: Path) -> str:
    return tiny_case(tmp_path)


@pytest.fixture
def finished(
    enrolled: EnrolledStation, people: StationPersonas, case: str
) -> tuple[StationSession, SessionResult]:
    """The surgeon's session on the center station, ended with a (pending) result."""
    session = services.start_session_from_shell(
        actor=people.administrator,
        station=enrolled.station,
        case_content_hash=case,
        scenario="pedicle_pilot_hole",
        user=people.surgeon,
    )
    result = signed_result(
        enrolled,
        username=people.surgeon.get_username(),
        session_id=session.uid,
        case_hash=session.case_hash,
        recording=b"recording bytes",
        engine_result=FAKE_RESULT,
    )
    accepted = services.accept_result(
        station=enrolled.station, message_id=uuid.uuid4().hex, result=result
    )
    return session, accepted.result


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("surgeon", True),
        ("colleague", True),
        ("outsider", False),
        ("committee_member", True),
        ("administrator", True),
    ],
)
def test_stations_are_seen_at_their_institution(
    enrolled: EnrolledStation,
    people: StationPersonas,
    signed_in_client: Any,
    who: str,
    sees: bool,
) -> None:
    client: Client = signed_in_client(people.all()[who])
    listed = client.get("/api/v1/stations").json()
    assert listed["count"] == (1 if sees else 0)
    detail = client.get(f"/api/v1/stations/{enrolled.station.pk}")
    assert detail.status_code == (200 if sees else 403)
    page = client.get(f"/stations/{enrolled.station.pk}/")
    assert page.status_code == (200 if sees else 403)
    if sees:
        assert detail.json()["presence"] == "offline"
        assert "sim-pc-01" in client.get("/stations/").content.decode()
    else:
        assert AuditEvent.objects.filter(
            action="station.read", outcome="failure", actor_user_id=people.all()[who].pk
        ).exists()


@pytest.mark.parametrize("who", PEOPLE)
def test_only_an_administrator_of_the_institution_revokes(
    enrolled: EnrolledStation, people: StationPersonas, signed_in_client: Any, who: str
) -> None:
    client: Client = signed_in_client(people.all()[who])
    url = f"/api/v1/stations/{enrolled.station.pk}/revoke"
    response = client.post(url, json.dumps({"reason": "测试"}), content_type="application/json")
    station = Station.objects.get(pk=enrolled.station.pk)
    if who == "administrator":
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "revoked" and station.is_revoked
    else:
        assert response.status_code == 403
        assert not station.is_revoked
        assert AuditEvent.objects.filter(action="station.manage", outcome="failure").exists()
    # the page form: the same rule
    page = client.get(f"/stations/{enrolled.station.pk}/revoke/")
    assert page.status_code == (200 if who == "administrator" else 403)


def test_the_revoke_page_asks_for_a_reason_then_revokes(
    enrolled: EnrolledStation, people: StationPersonas, signed_in_client: Any
) -> None:
    client: Client = signed_in_client(people.administrator)
    url = f"/stations/{enrolled.station.pk}/revoke/"
    assert client.post(url, {"reason": "  "}).status_code == 422
    assert not Station.objects.get(pk=enrolled.station.pk).is_revoked
    done = client.post(url, {"reason": "硬盘更换"})
    assert done.status_code == 302
    assert Station.objects.get(pk=enrolled.station.pk).revoke_reason == "硬盘更换"


@pytest.mark.parametrize(
    ("who", "for_whom", "allowed"),
    [
        ("surgeon", "surgeon", True),
        ("surgeon", "colleague", False),
        ("colleague", "surgeon", False),
        ("outsider", "outsider", False),
        ("committee_member", "committee_member", False),
        ("administrator", "surgeon", True),
        ("administrator", "committee_member", False),
    ],
)
def test_who_may_start_a_session_for_whom(
    enrolled: EnrolledStation,
    people: StationPersonas,
    signed_in_client: Any,
    case: str,
    who: str,
    for_whom: str,
    allowed: bool,
) -> None:
    client: Client = signed_in_client(people.all()[who])
    body = {
        "station_id": enrolled.station.pk,
        "case_hash": case,
        "scenario": "pedicle_pilot_hole",
        "username": people.all()[for_whom].get_username(),
    }
    response = client.post(
        "/api/v1/stations/sessions", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == (201 if allowed else 403), response.content
    assert StationSession.objects.count() == (1 if allowed else 0)
    if allowed:
        out = response.json()
        assert out["state"] == "queued" and out["origin"] == "shell"
        assert out["username"] == body["username"]
        event = AuditEvent.objects.get(action="station_session.start", outcome="success")
        assert event.actor_user_id == people.all()[who].pk


def test_a_second_session_waits_for_the_first_and_unknown_inputs_are_refused(
    enrolled: EnrolledStation, people: StationPersonas, signed_in_client: Any, case: str
) -> None:
    client: Client = signed_in_client(people.surgeon)
    body = {
        "station_id": enrolled.station.pk,
        "case_hash": case,
        "scenario": "pedicle_pilot_hole",
        "username": people.surgeon.get_username(),
    }

    def post(**changes: Any) -> Any:
        return client.post(
            "/api/v1/stations/sessions",
            json.dumps({**body, **changes}),
            content_type="application/json",
        )

    assert post(scenario="no_such").status_code == 422
    assert post(case_hash="sha256:" + "0" * 64).status_code == 404
    assert post().status_code == 201
    busy = post()
    assert busy.status_code == 409 and busy.json()["code"] == "station_busy"


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("surgeon", True),
        ("colleague", False),
        ("outsider", False),
        ("committee_member", True),
        ("administrator", True),
    ],
)
def test_sessions_and_results_are_seen_by_the_trainee_committee_and_administrators(
    finished: tuple[StationSession, SessionResult],
    people: StationPersonas,
    signed_in_client: Any,
    who: str,
    sees: bool,
) -> None:
    session, result = finished
    client: Client = signed_in_client(people.all()[who])
    assert client.get("/api/v1/stations/sessions").json()["count"] == (1 if sees else 0)
    assert client.get("/api/v1/stations/results").json()["count"] == (1 if sees else 0)
    detail = client.get(f"/api/v1/stations/sessions/{session.pk}")
    assert detail.status_code == (200 if sees else 403)
    assert client.get(f"/api/v1/stations/results/{result.pk}").status_code == (200 if sees else 403)
    page = client.get(f"/stations/sessions/{session.pk}/")
    assert page.status_code == (200 if sees else 403)
    if sees:
        out = detail.json()
        assert out["result"]["verification"] == "pending"
        assert out["result"]["metrics"] == {"time_s": 42.0, "breach_mm": 0.0}
        assert "待验证" in page.content.decode()
    else:
        assert AuditEvent.objects.filter(
            action="station_session.read", outcome="failure", actor_user_id=people.all()[who].pk
        ).exists()


@pytest.mark.parametrize("sessions", [3, 25])
def test_the_session_list_query_count_does_not_grow_with_rows(
    enrolled: EnrolledStation,
    people: StationPersonas,
    shell_network: Network,
    signed_in_client: Any,
    django_assert_num_queries: Any,
    case: str,
    sessions: int,
) -> None:
    for i in range(sessions):
        station = enrol(people.administrator, shell_network.center, room=f"R{i}").station
        services.start_session_from_shell(
            actor=people.administrator,
            station=station,
            case_content_hash=case,
            scenario="pedicle_pilot_hole",
            user=people.surgeon,
        )
    client: Client = signed_in_client(people.committee_member)
    client.get("/api/v1/stations/sessions")
    # session, user, audit (savepoint, [chain lock], last hash, insert, release), roles, count,
    # page: the same for 3 rows and for 25 (no session save: the idle-timeout middleware writes
    # the last-seen time at most once a minute)
    expected = 9 + (1 if connection.vendor == "postgresql" else 0)
    with django_assert_num_queries(expected):
        response = client.get("/api/v1/stations/sessions")
    assert response.json()["count"] == sessions
    with django_assert_num_queries(expected):
        stations = client.get("/api/v1/stations")
    assert stations.json()["count"] == sessions + 1


def test_every_page_renders_for_an_administrator(
    finished: tuple[StationSession, SessionResult],
    people: StationPersonas,
    signed_in_client: Any,
) -> None:
    session, _ = finished
    client: Client = signed_in_client(people.administrator)
    for url in [
        "/stations/",
        f"/stations/{session.station_id}/",
        "/stations/enrolment-codes/",
        "/stations/sessions/",
        "/stations/sessions/new/",
        f"/stations/sessions/{session.pk}/",
        "/stations/sign-in-code/",
    ]:
        assert client.get(url).status_code == 200, url


def test_the_sign_in_code_page_shows_a_code_that_signs_in_once(
    enrolled: EnrolledStation, people: StationPersonas, signed_in_client: Any
) -> None:
    client: Client = signed_in_client(people.surgeon)
    html = client.post("/stations/sign-in-code/").content.decode()
    code = html.split('id="sign-in-code">')[1].split("<")[0]
    sign_in = services.sign_in_at_station(
        station=enrolled.station,
        username=people.surgeon.get_username(),
        secret=code,
        method="one_time_code",
    )
    assert sign_in.user == people.surgeon
