"""Streaming fixtures: a relay process started and stopped by the test (see streaming_helpers)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streaming_helpers import RelayProcess, StartRelay, camera_rooms, start_relay, stop_relay


@pytest.fixture
def relay_factory(tmp_path: Path) -> Iterator[StartRelay]:
    """Start relays with a given config; every one is stopped (SIGTERM) after the test."""
    started: list[RelayProcess] = []

    def start(rooms: dict[str, Any] | None = None, **options: Any) -> RelayProcess:
        folder = tmp_path / f"relay-{len(started)}"
        folder.mkdir()
        relay = start_relay(folder, rooms or camera_rooms("or-3"), **options)
        started.append(relay)
        return relay

    yield start
    for relay in started:
        stop_relay(relay)


@pytest.fixture
def relay(relay_factory: StartRelay) -> RelayProcess:
    return relay_factory(restart_initial_s=0.2)
