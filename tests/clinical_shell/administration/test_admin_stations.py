"""Stations in administration: the list of the administered institutions' stations with their
presence, an enrolment code shown once, revocation after a confirmation; a county administrator
neither sees, enrols for nor revokes another county's stations. The work is the stations app's
services (tests/clinical_shell/stations/ test them in depth)."""

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
import zmq
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from shell_personas import Network, Personas, make_persona

from clinical_shell.audit.models import AuditEvent
from clinical_shell.network.models import Institution, Role
from clinical_shell.stations import services as stations
from clinical_shell.stations.models import EnrolmentCode, Station

STATIONS = "/administration/stations/"


@pytest.fixture(autouse=True)
def bridge_keys(settings: Any, tmp_path: Path) -> None:
    settings.OSTEON_BRIDGE_KEY_DIR = tmp_path / "bridge-keys"


@pytest.fixture
def county_admin(personas: Personas, shell_network: Network) -> User:
    user: User = make_persona(
        "he.sbadmin", "何管理", "none", (shell_network.shuangbai, Role.ADMINISTRATOR)
    )
    return user


def _enrol(admin: User, institution: Institution, hostname: str) -> Station:
    public, _secret = zmq.curve_keypair()
    issued = stations.create_enrolment_code(actor=admin, institution=institution, room="技能室")
    return stations.enroll_station(
        code=issued.code,
        curve_public_key=public.decode(),
        signing_public_key=nacl.signing.SigningKey.generate().verify_key.encode().hex(),
        hostname=hostname,
    )


@pytest.fixture
def two_stations(personas: Personas, shell_network: Network) -> tuple[Station, Station]:
    shuangbai = _enrol(personas.admin, shell_network.shuangbai, "sb-sim-01")
    yongren = _enrol(personas.admin, shell_network.yongren, "yr-sim-01")
    # 双柏's station spoke a moment ago; 永仁's never did
    stations.record_contact(station_id=shuangbai.pk, busy=False)
    return shuangbai, yongren


def test_the_list_shows_the_administered_institutions_stations_with_presence(
    personas: Personas,
    county_admin: User,
    two_stations: tuple[Station, Station],
    signed_in_client: Callable[[User], Client],
) -> None:
    shuangbai, _yongren = two_stations
    center_page = signed_in_client(personas.admin).get(STATIONS).content.decode()
    assert "sb-sim-01" in center_page and "yr-sim-01" in center_page
    county_page = signed_in_client(county_admin).get(STATIONS).content.decode()
    assert "sb-sim-01" in county_page and "yr-sim-01" not in county_page
    row = re.search(rf'data-station-id="{shuangbai.pk}">(.*?)</tr>', county_page, re.S)
    assert row is not None and "在线" in row.group(1) and "从未" not in row.group(1)


def test_an_enrolment_code_is_shown_once_with_its_expiry_and_enrols_a_station(
    personas: Personas, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    client = signed_in_client(personas.admin)
    response = client.post(
        STATIONS,
        {"institution": shell_network.yongren.pk, "room": "骨科示教室", "ttl_minutes": "240"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    found = re.search(r'id="enrolment-code"[^>]*>([A-Z0-9-]+)<', html)
    assert found, "the code is shown"
    code = found.group(1)
    row = EnrolmentCode.objects.get()
    assert row.institution_id == shell_network.yongren.pk and row.room == "骨科示教室"
    assert code not in row.code_sha256  # only its hash is kept
    expected = timezone.localtime(timezone.now() + timedelta(minutes=240))
    assert abs((row.expires_at - timezone.now()) - timedelta(minutes=240)) < timedelta(minutes=1)
    assert expected.strftime("%Y-%m-%d") in html[html.index('id="enrolment-code-expiry"') :]
    # shown once: the page afterwards lists the code without it
    assert code not in client.get(STATIONS).content.decode()
    # the station uses it
    public, _secret = zmq.curve_keypair()
    station = stations.enroll_station(
        code=code,
        curve_public_key=public.decode(),
        signing_public_key=nacl.signing.SigningKey.generate().verify_key.encode().hex(),
        hostname="yr-sim-02",
    )
    assert station.institution_id == shell_network.yongren.pk


def test_a_missing_room_is_refused_with_the_reason(
    personas: Personas, shell_network: Network, signed_in_client: Callable[[User], Client]
) -> None:
    response = signed_in_client(personas.admin).post(
        STATIONS, {"institution": shell_network.yongren.pk, "room": " ", "ttl_minutes": "60"}
    )
    assert response.status_code == 422 and "请填写房间" in response.content.decode()
    assert not EnrolmentCode.objects.exists()


def test_revocation_asks_first_then_cuts_the_station_off(
    personas: Personas,
    two_stations: tuple[Station, Station],
    signed_in_client: Callable[[User], Client],
) -> None:
    _shuangbai, yongren = two_stations
    client = signed_in_client(personas.admin)
    url = f"/administration/stations/{yongren.pk}/revoke/"
    confirmation = client.get(url)
    assert confirmation.status_code == 200 and "确认吊销" in confirmation.content.decode()
    yongren.refresh_from_db()
    assert not yongren.is_revoked
    # a reason is required
    assert client.post(url, {"reason": ""}).status_code == 422
    yongren.refresh_from_db()
    assert not yongren.is_revoked
    response = client.post(url, {"reason": "主机报废"})
    assert response.status_code == 302
    yongren.refresh_from_db()
    assert yongren.is_revoked and yongren.revoked_by_id == personas.admin.pk
    assert AuditEvent.objects.filter(
        action="station.revoke", target_id=str(yongren.pk), reason="主机报废"
    ).exists()
    assert stations.selectors.station_for_key(yongren.curve_public_key) is None


def test_a_county_administrator_cannot_enrol_for_or_revoke_another_countys_station(
    county_admin: User,
    shell_network: Network,
    two_stations: tuple[Station, Station],
    signed_in_client: Callable[[User], Client],
) -> None:
    _shuangbai, yongren = two_stations
    client = signed_in_client(county_admin)
    for response in (
        client.get(f"/administration/stations/{yongren.pk}/revoke/"),
        client.post(f"/administration/stations/{yongren.pk}/revoke/", {"reason": "试试"}),
        client.post(
            STATIONS, {"institution": shell_network.yongren.pk, "room": "x", "ttl_minutes": "60"}
        ),
    ):
        assert response.status_code == 403
        assert "你不是该机构的管理员" in response.content.decode()
    yongren.refresh_from_db()
    assert not yongren.is_revoked
    assert not EnrolmentCode.objects.filter(
        institution=shell_network.yongren, created_by=county_admin
    ).exists()


def test_the_list_asks_the_database_as_often_for_four_stations_as_for_two(
    personas: Personas,
    shell_network: Network,
    two_stations: tuple[Station, Station],
    signed_in_client: Callable[[User], Client],
) -> None:
    client = signed_in_client(personas.admin)
    client.get(STATIONS)  # the session and the header's cached flags settle on the first page

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(STATIONS).status_code == 200
        return len(captured)

    two = queries()
    _enrol(personas.admin, shell_network.center, "cx-sim-01")
    _enrol(personas.admin, shell_network.tuodian, "td-sim-01")
    assert queries() == two
