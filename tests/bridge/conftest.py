"""Bridge fixtures: a running endpoint over a SQLite LocalShellSide, and an enrolled station
(helpers in bridge_helpers.py)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_helpers import Bridge, enrol_station, start_endpoint, stop_endpoint

from bridge.station import StationIdentity


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Bridge]:
    b = start_endpoint(tmp_path)
    b.side.add_user("surgeon", "pw-surgeon", "外科医生")
    yield b
    stop_endpoint(b)


@pytest.fixture
def station(bridge: Bridge, tmp_path: Path) -> StationIdentity:
    return enrol_station(bridge, tmp_path / "station")
