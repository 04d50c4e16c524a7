"""A stopped bridge endpoint gives its thread's database connection back. On PostgreSQL the
shell lends connections from a pool of OSTEON_DB_POOL_MAX (8) per process; an endpoint that kept
its connection after stopping held a slot for good, and the ninth endpoint a process started
(a test file with many stations, a bridge restarted in-process) could not enrol anyone: "the
shell failed". On SQLite there is no pool and this passes either way; CI runs it on PostgreSQL.
"""

import sys
import threading
from pathlib import Path

import pytest
from shell_personas import Network

from bridge.endpoint import Endpoint
from bridge.keys import new_curve_keys
from bridge.station import enroll
from clinical_shell.stations import services as stations
from clinical_shell.stations.bridge_side import DjangoShellSide
from clinical_shell.stations.models import Station

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bridge"))
from bridge_helpers import free_port_block

# one more endpoint, one after another, than the pool has connections (the test holds one)
ENDPOINTS = 9

pytestmark = pytest.mark.django_db(transaction=True)


def test_endpoints_started_one_after_another_each_enrol_a_station(
    shell_network: Network, tmp_path: Path
) -> None:
    for n in range(ENDPOINTS):
        keys = new_curve_keys()
        port = free_port_block()
        endpoint = Endpoint(DjangoShellSide(), keys, port=port)
        thread = threading.Thread(target=endpoint.serve_forever, daemon=True)
        thread.start()
        try:
            assert endpoint.wait_ready()
            issued = stations.create_enrolment_code(
                actor=None, institution=shell_network.shuangbai, room=f"室 {n}"
            )
            # the endpoint's thread reads and writes the database to enrol it
            enroll(
                tmp_path / f"station-{n}",
                shell_url=f"tcp://127.0.0.1:{port}",
                code=issued.code,
                shell_key=keys.public,
                timeout_s=30.0,
            )
        finally:
            endpoint.stop()
            thread.join(timeout=10)
        assert not thread.is_alive()
    assert Station.objects.count() == ENDPOINTS


class _Recording(DjangoShellSide):
    def __init__(self) -> None:
        super().__init__()
        self.stopped_on: list[str] = []

    def endpoint_stopped(self) -> None:
        self.stopped_on.append(threading.current_thread().name)
        super().endpoint_stopped()


def test_the_shell_side_is_told_on_the_endpoints_own_thread_when_it_stops() -> None:
    shell = _Recording()
    endpoint = Endpoint(shell, new_curve_keys(), port=free_port_block())
    thread = threading.Thread(target=endpoint.serve_forever, name="endpoint-loop", daemon=True)
    thread.start()
    assert endpoint.wait_ready()
    endpoint.stop()
    thread.join(timeout=10)
    assert shell.stopped_on == ["endpoint-loop"]
