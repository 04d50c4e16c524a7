"""Recordings of live sessions: the relay's finished MP4s in the session's own folder attached
to it after an ffprobe check (a hostile file is not; another session's never), listed with a
player and the session's drawings for replay, for the creator and invitees only, served with
byte ranges and every read audited."""

import logging
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings
from shell_personas import Personas

from clinical_shell.audit.models import AuditEvent
from clinical_shell.live import services
from clinical_shell.live.models import LiveRecording, LiveSession
from streaming.recorder import finalize_recording, recording_name

pytestmark = pytest.mark.django_db

ClientFor = Callable[[User], Client]
# what the relay's encoder writes (streaming.sources), small and short
_FRAGMENTED = ["-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4"]


@pytest.fixture
def room_folder(settings: Settings, tmp_path: Path) -> Path:
    settings.OSTEON_LIVE_RECORDINGS_DIR = tmp_path / "live-recordings"
    return tmp_path / "live-recordings" / "or-3"


def record(
    folder: Path,
    stream: str,
    *,
    audio: bool = True,
    video: bool = True,
    media_start_s: float = 0.0,
) -> Path:
    """A 2 s recording as the relay leaves it: fragmented MP4 (.part), then remuxed."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / recording_name(stream, timezone.now(), media_start_s)
    part = final.with_name(final.name + ".part")
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
    codecs = []
    if video:
        argv += ["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=15"]
        codecs += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        argv += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
        codecs += ["-c:a", "aac"]
    argv += ["-t", "2", *codecs, *_FRAGMENTED, str(part)]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    finalize_recording(part, final)
    return final


@pytest.fixture
def recorded(
    personas: Personas, make_session: Callable[..., LiveSession], room_folder: Path
) -> tuple[LiveSession, LiveRecording, Path]:
    """A session whose field camera was recorded, the recording attached by the creator."""
    session = make_session()
    path = record(room_folder / str(session.pk), "field")
    (recording,) = services.attach_recordings(actor=personas.county_surgeon, session=session)
    return session, recording, path


def test_the_creator_attaches_the_finished_recordings_of_the_sessions_streams(
    personas: Personas,
    signed_in_client: ClientFor,
    make_session: Callable[..., LiveSession],
    room_folder: Path,
) -> None:
    session = make_session()
    folder = room_folder / str(session.pk)
    path = record(folder, "field", media_start_s=12.5)
    # still being written, and a stream of the room the session does not show: left alone
    (folder / (path.name + ".part")).write_bytes(path.read_bytes())
    record(folder, "ceiling")
    # a file of the room outside any session's folder (or in another's): not this session's
    record(room_folder, "field")
    record(room_folder / str(session.pk + 1000), "field")
    creator = signed_in_client(personas.county_surgeon)
    response = creator.post(f"/live/{session.pk}/recordings/attach/")
    assert response.status_code == 302
    (recording,) = LiveRecording.objects.all()
    assert (recording.session, recording.stream) == (session, "field")
    assert recording.path == f"or-3/{session.pk}/{path.name}"
    assert recording.media_start_s == 12.5
    assert abs(recording.duration_s - 2.0) < 0.3
    assert recording.size_bytes == path.stat().st_size
    assert AuditEvent.objects.filter(
        action="live.recordings_attach",
        actor_user_id=personas.county_surgeon.pk,
        target_id=str(session.pk),
        detail__paths=[recording.path],
    ).exists()
    # attached once only; an invitee cannot attach
    assert services.attach_recordings(actor=personas.county_surgeon, session=session) == []
    expert = signed_in_client(personas.center_surgeon)
    assert expert.post(f"/live/{session.pk}/recordings/attach/").status_code == 403
    # the invitee sees it with a player
    html = expert.get(f"/live/{session.pk}/recordings/").content.decode()
    assert f'<video controls preload="metadata" src="/live/recordings/{recording.pk}.mp4">' in html
    assert "术野摄像" in html


def test_it_does_not_attach_a_file_that_is_not_an_h264_aac_mp4(
    personas: Personas,
    make_session: Callable[..., LiveSession],
    room_folder: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = make_session()
    now = timezone.now()
    room_folder = room_folder / str(session.pk)
    # garbage with the right name, an MP4 with no picture, a link to a good file elsewhere
    room_folder.mkdir(parents=True)
    garbage = room_folder / recording_name("field", now)
    garbage.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"x" * 4000)
    sound_only = record(room_folder, "endoscope", video=False)
    link = room_folder / recording_name("field", now + timedelta(seconds=1))
    good_elsewhere = record(room_folder.parent / "elsewhere", "field")
    link.symlink_to(good_elsewhere)
    # a good file named with digits that are no date
    no_date = room_folder / "field-20261399T999999.000Z-m0.mp4"
    no_date.write_bytes(good_elsewhere.read_bytes())
    with caplog.at_level(logging.WARNING, logger="clinical_shell.live"):
        attached = services.attach_recordings(actor=personas.county_surgeon, session=session)
    assert attached == []
    assert not LiveRecording.objects.exists()
    logged = caplog.text
    folder = f"or-3/{session.pk}"
    assert f"{folder}/{garbage.name}: not attached" in logged
    assert f"{folder}/{sound_only.name}: not attached: streams [('audio', 'aac')]" in logged
    assert f"{folder}/{link.name}: not a regular file" in logged
    assert f"{folder}/{no_date.name}: not attached: no time in its name" in logged
    assert not AuditEvent.objects.filter(action="live.recordings_attach").exists()


def test_an_uninvited_user_gets_403_for_the_recording_and_the_refusal_is_audited(
    personas: Personas,
    signed_in_client: ClientFor,
    recorded: tuple[LiveSession, LiveRecording, Path],
) -> None:
    session, recording, _ = recorded
    outsider = signed_in_client(personas.outsider)
    assert outsider.get(f"/live/recordings/{recording.pk}.mp4").status_code == 403
    assert outsider.get(f"/live/{session.pk}/recordings/").status_code == 403
    assert (
        AuditEvent.objects.filter(
            action="live.recordings",
            outcome="failure",
            actor_user_id=personas.outsider.pk,
            detail__why="not_invited",
        ).count()
        == 2
    )
    assert not AuditEvent.objects.filter(action="live.recording_read").exists()
    # the invitee watches it, also once the session has ended
    LiveSession.objects.filter(pk=session.pk).update(status=LiveSession.Status.ENDED)
    expert = signed_in_client(personas.center_surgeon)
    assert expert.get(f"/live/recordings/{recording.pk}.mp4").status_code == 200


def test_a_range_request_gets_206_with_those_bytes_and_the_read_is_audited(
    personas: Personas,
    signed_in_client: ClientFor,
    recorded: tuple[LiveSession, LiveRecording, Path],
) -> None:
    _, recording, path = recorded
    data = path.read_bytes()
    expert = signed_in_client(personas.center_surgeon)
    response = expert.get(f"/live/recordings/{recording.pk}.mp4", HTTP_RANGE="bytes=100-1123")
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == data[100:1124]  # type: ignore[attr-defined]
    assert response["Content-Range"] == f"bytes 100-1123/{len(data)}"
    assert response["Content-Type"] == "video/mp4"
    assert response["Cache-Control"] == "private, no-store"
    whole = expert.get(f"/live/recordings/{recording.pk}.mp4")
    assert whole.status_code == 200
    assert b"".join(whole.streaming_content) == data  # type: ignore[attr-defined]
    reads = AuditEvent.objects.filter(
        action="live.recording_read", actor_user_id=personas.center_surgeon.pk
    )
    assert [e.detail["range"] for e in reads.order_by("id")] == ["bytes=100-1123", ""]
