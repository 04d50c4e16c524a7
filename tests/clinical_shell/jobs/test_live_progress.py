"""The case-build page moves live: progress from the worker process reaches the browser over
the websocket (shell under uvicorn and worker sharing Redis for the queue and the channel layer).
"""

import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from playwright.sync_api import sync_playwright
from shell_personas import PERSONA_PASSWORD, Personas
from shell_server import start_shell_server

from clinical_shell.jobs.models import Job
from clinical_shell.jobs.worker import database_url, start_worker

REPO = Path(__file__).resolve().parents[3]
# a Redis database of its own (other tests use others), and a queue name of this run's own
REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.mark.django_db(transaction=True)
def test_the_build_page_shows_progress_pushed_from_the_worker(
    stores: Path,
    slow_phantom: list[Path],
    upload: Callable[[list[Path]], object],
    personas: Personas,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Playwright's sync API keeps an event loop in this thread; the ORM calls here are plain sync
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    series = upload(slow_phantom)
    shared = {
        "OSTEON_DATABASE_URL": database_url(),
        "OSTEON_REDIS_URL": REDIS_URL,
        "OSTEON_HUEY_NAME": f"jobs-live-{uuid.uuid4().hex[:8]}",
        "OSTEON_DICOM_ROOT": str(Path(settings.OSTEON_DICOM_ROOT).resolve()),
        "OSTEON_CASE_ROOT": str(Path(settings.OSTEON_CASE_ROOT).resolve()),
    }
    server = start_shell_server(
        env={**shared, "OSTEON_STATIC_ROOT": str(REPO / "var" / "test-static-jobs")},
        log=tmp_path / "server.log",
    )
    with open(tmp_path / "worker.log", "wb") as log:
        worker = start_worker(workers=2, output=log, env=shared)
    frames: list[dict[str, Any]] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox"]
            )
            page = browser.new_page()
            page.on(
                "websocket",
                lambda ws: ws.on(
                    "framereceived",
                    lambda frame: (
                        frames.append(json.loads(frame)) if isinstance(frame, str) else None
                    ),
                ),
            )
            page.goto(f"{server.url}/accounts/sign-in/")
            page.fill("#id_username", personas.county_surgeon.username)
            page.fill("#id_password", PERSONA_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            page.goto(f"{server.url}/imaging/series/{series.pk}/build-case/")  # type: ignore[attr-defined]
            page.click("#confirm-build")
            page.wait_for_url("**/imaging/case-builds/*/")
            job = Job.objects.get()
            deadline = time.monotonic() + 120
            while not Job.objects.get(pk=job.pk).is_finished and time.monotonic() < deadline:
                time.sleep(0.2)
            assert Job.objects.get(pk=job.pk).status == "done", (
                tmp_path / "worker.log"
            ).read_text()
            # the page reloads once done and shows the case
            page.wait_for_selector('[data-role="result"]:not([hidden])', timeout=30_000)
            browser.close()
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        server.stop()
    events = [f["event"] for f in frames if f.get("topic") == f"job.{job.pk}"]
    assert {"subscribed": f"job.{job.pk}"} in frames
    running = [e for e in events if e["status"] == "running"]
    assert running, frames[:10]
    progress = [e["progress"] for e in running]
    assert any(0 < p < 1 for p in progress), progress
    assert any(e["step"] == "骨分割" for e in running)
