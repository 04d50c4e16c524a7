"""The heavy-job limit: five case builds queued, at most N run at once, the rest wait in line."""

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test import Client
from job_helpers import build_status, wait_until, worker_log
from shell_personas import Personas

from clinical_shell.imaging.models import SimulationCase
from clinical_shell.jobs.models import Job

LIMIT = 2


@pytest.mark.django_db(transaction=True)
def test_five_builds_run_at_most_the_limit_at_once_in_line_order(
    settings: object,
    stores: Path,
    small_phantoms: list[list[Path]],
    upload: Callable[[list[Path]], object],
    worker: Callable[..., object],
    personas: Personas,
    signed_in_client: Callable[[User], Client],
    tmp_path: Path,
) -> None:
    settings.OSTEON_HEAVY_JOBS_MAX = LIMIT  # type: ignore[attr-defined]  # (passed to the worker)
    client = signed_in_client(personas.county_surgeon)
    builds = []
    for files in small_phantoms:
        series = upload(files)
        created = client.post(
            f"/api/v1/imaging/series/{series.pk}/case-builds",  # type: ignore[attr-defined]
            data={"spacing_mm": 1.0},
            content_type="application/json",
        )
        assert created.status_code == 202, created.content
        builds.append(int(created.json()["id"]))
    # no worker yet: all five wait, each with its place in line, on the API and the page
    assert [build_status(client, b)["queue_position"] for b in builds] == [1, 2, 3, 4, 5]
    page = client.get(f"/imaging/case-builds/{builds[4]}/").content.decode()
    assert '<strong data-role="position">5</strong>' in page
    assert f"同时最多运行 {LIMIT} 个大型任务" in page

    # a worker with more threads than the limit: the limit, not the threads, holds them back
    worker(workers=4)
    most_running = 0

    def all_ended() -> bool:
        nonlocal most_running
        running = Job.objects.filter(heavy=True, status="running").count()
        most_running = max(most_running, running)
        return not Job.objects.filter(status__in=["queued", "running"]).exists()

    # once two run, those still waiting show places 1, 2, ... in the order they were queued
    # (read in one snapshot: the worker moves the line meanwhile)
    wait_until("the first two run", lambda: Job.objects.filter(status="running").count() == 2)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        states = [build_status(client, b) for b in builds]
    queued = [s["queue_position"] for s in states if s["status"] == "queued"]
    assert queued == list(range(1, len(queued) + 1))
    assert [s["status"] for s in states].count("running") == LIMIT
    wait_until("all five builds end", all_ended, every_s=0.05)
    jobs = list(Job.objects.filter(kind="case_build").order_by("id"))
    assert [j.status for j in jobs] == ["done"] * 5, worker_log(tmp_path)
    assert [j.attempts for j in jobs] == [1] * 5
    assert SimulationCase.objects.count() == 5
    assert most_running == LIMIT  # sampled: the limit was reached, never passed
    # from the rows themselves: when any run started, fewer than LIMIT others were running
    for job in jobs:
        assert job.started_at is not None and job.finished_at is not None
        overlapping = [
            other
            for other in jobs
            if other.pk != job.pk
            and other.started_at is not None
            and other.finished_at is not None
            and other.started_at <= job.started_at < other.finished_at
        ]
        assert len(overlapping) < LIMIT, (job.pk, [o.pk for o in overlapping])
    # first in line, first started (the first LIMIT together, in either order)
    by_start = [j.pk for j in sorted(jobs, key=lambda j: j.started_at)]  # type: ignore[arg-type,return-value]
    assert set(by_start[:LIMIT]) == {j.pk for j in jobs[:LIMIT]}
    assert by_start[LIMIT:] == [j.pk for j in jobs[LIMIT:]]
