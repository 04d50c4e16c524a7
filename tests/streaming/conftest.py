"""Streaming fixtures: a relay process started and stopped by the test (see streaming_helpers)."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from streaming_helpers import TEST_FPS, RelayProcess, start_relay, stop_relay

StartRelay = Callable[..., RelayProcess]


def camera_rooms(*rooms: str) -> dict[str, Any]:
    """Each room with one stand-in camera ``cam`` (ffmpeg test source) at 360p."""
    source = {"kind": "test", "fps": TEST_FPS}
    return {room: {"cam": {"source": source, "qualities": ["360p"]}} for room in rooms}


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
