"""Replay videos: a recorded session becomes an H.264 MP4 (checked with ffprobe: stream, duration,
index in front, seekable) in a heavy background job, with its metrics timeline; it is served
with HTTP range requests to those who may see the result, and to nobody else."""

import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from station_helpers import EngineSession, EnrolledStation, StationPersonas, signed_result

from clinical_shell.audit.models import AuditEvent
from clinical_shell.jobs.models import Job
from clinical_shell.jobs.running import run_job
from clinical_shell.stations import case_archives, services
from clinical_shell.stations.models import ReplayVideo, SessionResult
from clinical_shell.stations.replay_video import RENDER_REPLAY_VIDEO
from clinical_shell.stations.tasks import VERIFY_RESULT

pytestmark = pytest.mark.django_db

FPS = 5
SIZE = (320, 200)


@pytest.fixture(scope="session")
def novice_session(engine_session: EngineSession, tmp_path_factory: Any) -> EngineSession:
    """The scripted novice on the same case: a breach, a plunge and a nerve touch to show."""
    from sim_core.case.bundle import load_bundle
    from sim_core.model import model_from_bundle
    from sim_core.replay import play, write_recording
    from sim_core.trajectories import scripted_rows

    model = model_from_bundle(load_bundle(engine_session.case_dir), "pedicle_pilot_hole")
    rows = scripted_rows(model, "novice")
    _state, result = play(model, rows)
    path = tmp_path_factory.mktemp("replay-video") / "novice.npz"
    write_recording(
        path,
        model=model,
        rows=rows,
        result=result,
        case_path=engine_session.case_dir,
        device_name="scripted:novice",
    )
    return EngineSession(
        engine_session.case_dir, engine_session.content_hash, path.read_bytes(), result.as_dict()
    )


@pytest.fixture
def result(
    enrolled: EnrolledStation,
    people: StationPersonas,
    novice_session: EngineSession,
    settings: Any,
    tmp_path: Path,
) -> SessionResult:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OSTEON_REPLAY_VIDEO_FPS = FPS
    settings.OSTEON_REPLAY_VIDEO_SIZE = SIZE
    case_hash = case_archives.archive_for_bundle(novice_session.case_dir).archive_hash
    session = services.start_session_from_shell(
        actor=people.administrator,
        station=enrolled.station,
        case_content_hash=novice_session.content_hash,
        scenario="pedicle_pilot_hole",
        user=people.surgeon,
    )
    signed = signed_result(
        enrolled,
        username=people.surgeon.get_username(),
        session_id=session.uid,
        case_hash=case_hash,
        recording=novice_session.recording,
        engine_result=novice_session.result,
    )
    accepted = services.accept_result(
        station=enrolled.station, message_id=uuid.uuid4().hex, result=signed
    )
    # the verification replay first: heavy jobs run in line
    run_job(Job.objects.get(kind=VERIFY_RESULT).pk)
    accepted.result.refresh_from_db()
    return accepted.result


def _probe(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height,pix_fmt,nb_frames:format=duration,format_name",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    probed: dict[str, Any] = json.loads(done.stdout)
    return probed


def test_a_recording_becomes_a_seekable_h264_mp4_with_its_timeline(
    result: SessionResult,
    people: StationPersonas,
    signed_in_client: Callable[[User], Client],
    tmp_path: Path,
) -> None:
    committee = signed_in_client(people.committee_member)
    assert committee.get(f"/stations/results/{result.pk}/replay.mp4").status_code == 404
    page = committee.get(f"/stations/results/{result.pk}/replay/")
    assert page.status_code == 200 and 'id="replay-render"' in page.content.decode()
    assert committee.post(f"/stations/results/{result.pk}/replay/render/").status_code == 302
    # asking again while it is queued queues nothing more
    committee.post(f"/stations/results/{result.pk}/replay/render/")
    job = Job.objects.get(kind=RENDER_REPLAY_VIDEO)
    assert job.heavy
    run_job(job.pk)  # what the worker's wake-up does
    job.refresh_from_db()
    assert job.status == "done", job.error
    video = ReplayVideo.objects.get(result=result)
    assert video.state == ReplayVideo.State.READY

    # the file: H.264 in MP4, the session's length, the index in front (+faststart)
    path = Path(video.path)
    mp4 = tmp_path / "media" / path
    probed = _probe(mp4)
    stream = probed["streams"][0]
    assert stream["codec_name"] == "h264" and stream["pix_fmt"] == "yuv420p"
    assert (stream["width"], stream["height"]) == SIZE
    sim_s = len(json.loads(json.dumps(video.timeline["force_n"]))) / FPS
    assert abs(float(probed["format"]["duration"]) - sim_s) < 2.0 / FPS
    assert abs(video.duration_s - 11.808) < 2.0 / FPS  # the novice's 11 808 ticks at 1 kHz
    head = mp4.read_bytes()
    assert 0 <= head.find(b"moov") < head.find(b"mdat")
    # seekable: a frame decodes from the middle
    middle = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", "6", "-i", str(mp4), "-frames:v", "1", "-f", "null", "-"],
        capture_output=True,
        check=False,
    )
    assert middle.returncode == 0, middle.stderr

    # the timeline: the novice's breach, plunge and nerve touch, each once with its time
    kinds = [e["kind"] for e in video.timeline["events"]]
    assert {"breach", "plunge", "nerve"} <= set(kinds)
    assert all(0 <= e["t_s"] <= video.duration_s for e in video.timeline["events"])
    assert len(video.timeline["force_n"]) == video.frames
    assert video.speed_x_real_time > 0
    shown = committee.get(f"/stations/results/{result.pk}/replay/").content.decode()
    assert 'id="replay-video"' in shown and 'class="link seek ev-plunge"' in shown
    assert AuditEvent.objects.filter(action="replay_video.ready").exists()
    _check_ranges(result, people, signed_in_client, mp4.read_bytes())


def _check_ranges(
    result: SessionResult,
    people: StationPersonas,
    signed_in_client: Callable[[User], Client],
    whole: bytes,
) -> None:
    # the trainee seeks: whole file, a byte range, the last bytes, a range beyond the end
    trainee = signed_in_client(people.surgeon)
    url = f"/stations/results/{result.pk}/replay.mp4"
    full = trainee.get(url)
    assert full.status_code == 200 and full["Accept-Ranges"] == "bytes"
    assert b"".join(full.streaming_content) == whole  # type: ignore[attr-defined]
    part = trainee.get(url, HTTP_RANGE="bytes=100-1099")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-1099/{len(whole)}"
    assert b"".join(part.streaming_content) == whole[100:1100]  # type: ignore[attr-defined]
    tail = trainee.get(url, HTTP_RANGE="bytes=-500")
    assert b"".join(tail.streaming_content) == whole[-500:]  # type: ignore[attr-defined]
    assert trainee.get(url, HTTP_RANGE=f"bytes={len(whole)}-").status_code == 416

    # a colleague at the same hospital and an outsider see neither the page nor the file
    for other in (people.colleague, people.outsider):
        client = signed_in_client(other)
        assert client.get(url).status_code == 403
        assert client.get(f"/stations/results/{result.pk}/replay/").status_code == 403
        assert client.post(f"/stations/results/{result.pk}/replay/render/").status_code == 403
    assert AuditEvent.objects.filter(
        action="session_result.read", outcome=AuditEvent.Outcome.FAILURE
    ).exists()


def test_a_video_whose_case_is_gone_fails_with_why_and_can_be_asked_again(
    result: SessionResult, people: StationPersonas, signed_in_client: Callable[[User], Client]
) -> None:
    trainee = signed_in_client(people.surgeon)
    SessionResult.objects.filter(pk=result.pk).update(case_hash="sha256:" + "00" * 32)
    trainee.post(f"/stations/results/{result.pk}/replay/render/")
    run_job(Job.objects.get(kind=RENDER_REPLAY_VIDEO).pk)
    video = ReplayVideo.objects.get(result=result)
    assert video.state == ReplayVideo.State.FAILED
    assert "病例" in video.error
    page = trainee.get(f"/stations/results/{result.pk}/replay/").content.decode()
    assert 'id="replay-error"' in page
    trainee.post(f"/stations/results/{result.pk}/replay/render/")
    assert Job.objects.filter(kind=RENDER_REPLAY_VIDEO).count() == 2
    video.refresh_from_db()
    assert video.state == ReplayVideo.State.QUEUED
