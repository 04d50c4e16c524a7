"""The live topic of a job ("job.<id>"): who may subscribe, and what a running job publishes."""

from collections.abc import Callable
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone
from shell_personas import Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.imaging import services
from clinical_shell.jobs.models import Job
from clinical_shell.jobs.running import JobCancelledError, report_progress
from clinical_shell.jobs.services import cancel_job
from clinical_shell.realtime.events import group_name, predicate_for


def test_only_those_who_may_see_the_patient_may_watch_a_build(
    stores: Path,
    small_phantoms: list[list[Path]],
    upload: Callable[[list[Path]], object],
    personas: Personas,
) -> None:
    build = services.request_case_build(
        actor=personas.county_surgeon,
        series=upload(small_phantoms[0]),  # type: ignore[arg-type]
        spacing_mm=1.0,
    )
    topic = f"job.{build.job_id}"
    rule = predicate_for(topic)
    assert rule is not None
    assert rule(personas.county_surgeon, topic)
    assert rule(personas.radiologist, topic)  # reads the record, may not change it
    assert not rule(personas.outsider, topic)
    assert AuditEvent.objects.filter(
        actor_user_id=personas.outsider.pk, action="patient.read", outcome="failure"
    ).exists()
    assert not rule(personas.county_surgeon, "job.999999")
    assert not rule(personas.county_surgeon, "job.x")


def test_a_running_job_publishes_its_progress_and_stops_when_cancelled(
    stores: Path,
    small_phantoms: list[list[Path]],
    upload: Callable[[list[Path]], object],
    personas: Personas,
) -> None:
    build = services.request_case_build(
        actor=personas.county_surgeon,
        series=upload(small_phantoms[0]),  # type: ignore[arg-type]
        spacing_mm=1.0,
    )
    Job.objects.filter(pk=build.job_id).update(
        status="running", attempts=1, started_at=timezone.now()
    )
    # a browser's websocket is a channel in the topic's group (the in-memory layer, for real)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group_name(f"job.{build.job_id}"), channel)

    report_progress(int(build.job_id), "骨分割 / segmenting bone", 0.5, attempt=1)  # type: ignore[arg-type]
    message = async_to_sync(layer.receive)(channel)
    event = message["event"]
    assert message["topic"] == f"job.{build.job_id}"
    assert event["status"] == "running" and event["progress"] == 0.5
    assert event["step"] == "骨分割 / segmenting bone" and event["queue_position"] is None
    row = Job.objects.get(pk=build.job_id)
    assert row.progress == 0.5 and row.heartbeat_at is not None

    # cancelled while running: the next report stops the task, and the row is not written
    cancel_job(actor=personas.county_surgeon, job=row)
    with pytest.raises(JobCancelledError):
        report_progress(int(build.job_id), "表面网格 / meshing", 0.7, attempt=1)  # type: ignore[arg-type]
    assert Job.objects.get(pk=build.job_id).progress == 0.5
