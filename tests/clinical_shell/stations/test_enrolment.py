"""Enrolment: an administrator's one-time, expiring code (stored hashed) enrols one station with
its CURVE and signing keys; a used, expired or unknown code is refused and audited."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from shell_personas import Network
from station_helpers import EnrolledStation, StationPersonas, new_keys

from clinical_shell.audit.models import AuditEvent
from clinical_shell.stations import selectors, services
from clinical_shell.stations.models import EnrolmentCode, Station


def _enrol(code: str) -> Station:
    keys = new_keys()
    return services.enroll_station(
        code=code,
        curve_public_key=keys.curve_public,
        signing_public_key=keys.verify_hex,
        hostname="sim-pc-02",
    )


def test_a_code_enrols_one_station_once_and_is_kept_only_as_a_hash(
    people: StationPersonas, shell_network: Network
) -> None:
    issued = services.create_enrolment_code(
        actor=people.administrator, institution=shell_network.center, room="技能中心 1 室"
    )
    row = EnrolmentCode.objects.get(pk=issued.row_id)
    assert issued.code not in row.code_sha256 and len(row.code_sha256) == 64
    station = _enrol(issued.code)
    assert (station.institution_id, station.room) == (shell_network.center.pk, "技能中心 1 室")
    assert selectors.station_for_key(station.curve_public_key) == station
    row.refresh_from_db()
    assert row.used_by_station == station and row.used_at is not None
    with pytest.raises(services.StationError, match="已使用") as refused:
        _enrol(issued.code)
    assert refused.value.code == "enrolment_refused"
    assert Station.objects.count() == 1
    failure = AuditEvent.objects.filter(action="station.enroll", outcome="failure").get()
    assert failure.detail["why"] == "code_used"


def test_an_expired_or_unknown_code_is_refused(
    people: StationPersonas, shell_network: Network
) -> None:
    issued = services.create_enrolment_code(
        actor=people.administrator, institution=shell_network.center, room="R1"
    )
    EnrolmentCode.objects.filter(pk=issued.row_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(services.StationError, match="过期"):
        _enrol(issued.code)
    with pytest.raises(services.StationError, match="无效"):
        _enrol("AAAA-BBBB-CCCC-DDDD")
    assert not Station.objects.exists()
    whys = set(
        AuditEvent.objects.filter(action="station.enroll", outcome="failure").values_list(
            "detail__why", flat=True
        )
    )
    assert whys == {"code_expired", "unknown_code"}


def test_bad_keys_do_not_use_up_the_code(people: StationPersonas, shell_network: Network) -> None:
    issued = services.create_enrolment_code(
        actor=people.administrator, institution=shell_network.center, room="R1"
    )
    with pytest.raises(services.StationError, match="密钥无效"):
        services.enroll_station(
            code=issued.code, curve_public_key="x" * 40, signing_public_key="00", hostname="h"
        )
    assert _enrol(issued.code).pk is not None


def test_only_an_administrator_of_the_institution_creates_codes_through_the_api(
    people: StationPersonas,
    shell_network: Network,
    signed_in_client: Any,
    settings: Any,
    tmp_path: Any,
) -> None:
    settings.OSTEON_BRIDGE_KEY_DIR = tmp_path / "keys"
    body = json.dumps({"institution_id": shell_network.center.pk, "room": "R2", "ttl_minutes": 5})
    for name in ("surgeon", "colleague", "outsider", "committee_member"):
        client: Client = signed_in_client(people.all()[name])
        refused = client.post(
            "/api/v1/stations/enrolment-codes", body, content_type="application/json"
        )
        assert refused.status_code == 403, name
    assert not EnrolmentCode.objects.exists()
    admin: Client = signed_in_client(people.administrator)
    created = admin.post("/api/v1/stations/enrolment-codes", body, content_type="application/json")
    assert created.status_code == 201, created.content
    out = created.json()
    assert len(out["shell_key"]) == 40 and out["bridge"] == settings.OSTEON_BRIDGE_URL
    assert _enrol(out["code"]).room == "R2"
    listed = admin.get("/api/v1/stations/enrolment-codes").json()
    assert listed["count"] == 1 and "code" not in listed["items"][0]
    assert listed["items"][0]["used_by_station_id"] is not None
    # an administrator of another institution does not see the center's codes
    outsider = signed_in_client(people.outsider).get("/api/v1/stations/enrolment-codes").json()
    assert outsider["count"] == 0
    assert (
        AuditEvent.objects.filter(action="station.enrolment_code", outcome="success").count() == 1
    )
    assert (
        AuditEvent.objects.filter(action="station.enrolment_code", outcome="failure").count() == 4
    )


def test_the_enrolment_page_shows_the_code_once(
    people: StationPersonas,
    shell_network: Network,
    signed_in_client: Any,
    settings: Any,
    tmp_path: Any,
) -> None:
    settings.OSTEON_BRIDGE_KEY_DIR = tmp_path / "keys"
    admin: Client = signed_in_client(people.administrator)
    page = admin.post(
        "/stations/enrolment-codes/",
        {"institution": shell_network.center.pk, "room": "R3", "ttl_minutes": "30"},
    )
    assert page.status_code == 200
    html = page.content.decode()
    code = html.split('id="enrolment-code">')[1].split("<")[0]
    assert len(code) == 19
    again = admin.get("/stations/enrolment-codes/").content.decode()
    assert code not in again and "R3" in again
    surgeon = signed_in_client(people.surgeon)
    refused = surgeon.post(
        "/stations/enrolment-codes/", {"institution": shell_network.center.pk, "room": "X"}
    )
    assert refused.status_code == 403
    assert EnrolmentCode.objects.count() == 1


def test_the_cli_prints_a_code_the_station_can_enrol_with(
    people: StationPersonas, shell_network: Network, osteon_cli: Any, settings: Any, tmp_path: Any
) -> None:
    settings.OSTEON_BRIDGE_KEY_DIR = tmp_path / "keys"
    ran = osteon_cli(
        "shell", "enrolment-code", "--institution", "CX-CENTER", "--room", "演示室", "--json"
    )
    assert ran.exit_code == 0, ran.stderr
    printed = json.loads(ran.stdout)
    assert set(printed) == {"code", "expires_at", "shell_key", "bridge"}
    assert _enrol(printed["code"]).room == "演示室"
    ran = osteon_cli("shell", "enrolment-code", "--institution", "NOPE", "--room", "x")
    assert ran.exit_code != 0 and "NOPE" in ran.stdout + ran.stderr


def test_an_enrolled_station_is_found_by_its_key(enrolled: EnrolledStation) -> None:
    assert selectors.station_for_key(enrolled.keys.curve_public) == enrolled.station
    assert selectors.station_for_key(new_keys().curve_public) is None
