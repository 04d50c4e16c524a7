"""Waiting on background jobs from a test: polling with a deadline, the worker's log."""

import time
from collections.abc import Callable
from pathlib import Path

from django.test import Client

WAIT_S = 90.0


def worker_log(tmp_path: Path) -> str:
    return (tmp_path / "worker.log").read_text(errors="replace")[-4000:]


def wait_until(
    what: str, check: Callable[[], bool], *, timeout_s: float = WAIT_S, every_s: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every_s)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def build_status(client: Client, build_id: int) -> dict[str, object]:
    response = client.get(f"/api/v1/imaging/case-builds/{build_id}")
    assert response.status_code == 200, response.content
    body: dict[str, object] = response.json()
    return body
