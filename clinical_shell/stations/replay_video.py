"""Replay videos of session results: asked for on the replay page, made by a heavy background job
(`streaming.replay_video`: the recording re-run through the engine, drawn offscreen by the
Panda3D session view, encoded by ffmpeg to H.264 MP4), stored under MEDIA_ROOT.

Preconditions of the writes: the caller opened the result through `access.access_result`.
The job kind is registered when this module is imported (`stations.tasks` imports it).
"""

from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from clinical_shell.audit import services as audit
from clinical_shell.jobs import services as jobs
from clinical_shell.jobs.models import Job
from clinical_shell.jobs.registry import job_task
from clinical_shell.jobs.running import JobContext, JobFailedError
from clinical_shell.stations import selectors
from clinical_shell.stations.access import visible_sessions
from clinical_shell.stations.models import ReplayVideo, SessionResult

RENDER_REPLAY_VIDEO = "stations.replay_video"
VIDEO_DIR = "replay-videos"
STEP_RENDER = gettext_noop("重放录制并绘制视频")
STEP_STORE = gettext_noop("保存视频")


def video_file(video: ReplayVideo) -> Path:
    return Path(settings.MEDIA_ROOT) / video.path


@transaction.atomic
def request_replay_video(*, actor: User, result: SessionResult) -> ReplayVideo:
    """The result's video: queued now unless it is ready or already being made (then as is);
    a failed one is queued again."""
    video, created = ReplayVideo.objects.select_for_update().get_or_create(
        result=result, defaults={"requested_by": actor}
    )
    if not created and video.state != ReplayVideo.State.FAILED:
        return video
    job = jobs.enqueue(
        actor=actor,
        kind=RENDER_REPLAY_VIDEO,
        subject=f"stations.sessionresult:{result.pk}",
        payload={"video_id": video.pk, "result_id": result.pk},
    )
    video.state = ReplayVideo.State.QUEUED
    video.job_id = job.pk
    video.error = ""
    video.requested_by = actor
    video.save(update_fields=["state", "job_id", "error", "requested_by"])
    audit.record(
        actor=actor,
        action="replay_video.request",
        target=video,
        detail={"result": result.pk, "job": job.pk, "again": not created},
    )
    return video


def replay_video_of(result: SessionResult) -> ReplayVideo | None:
    return ReplayVideo.objects.filter(result_id=result.pk).first()


def job_progress(video: ReplayVideo) -> tuple[float, str]:
    """(fraction, step msgid) of the job making the video (1.0 once ready)."""
    if video.state == ReplayVideo.State.READY:
        return 1.0, ""
    if video.job_id is None:
        return 0.0, ""
    job = Job.objects.filter(pk=video.job_id).values_list("progress", "step").first()
    return (float(job[0]), str(job[1])) if job is not None else (0.0, "")


def _may_view(user: User | AnonymousUser, job: Job) -> bool:
    """Whoever may see the result may watch its video being made."""
    result_id = int(job.payload.get("result_id") or 0)
    return SessionResult.objects.filter(visible_sessions(user), pk=result_id).exists()


def _on_end(job: Job) -> None:
    # the job failed or was cancelled: the page says so and offers to try again
    ReplayVideo.objects.filter(pk=job.payload.get("video_id")).update(
        state=ReplayVideo.State.FAILED,
        error=(job.error or _("已取消"))[:500],
        finished_at=timezone.now(),
    )


@job_task(
    RENDER_REPLAY_VIDEO,
    heavy=True,
    can_view=_may_view,
    on_end=_on_end,
    steps=(STEP_RENDER, STEP_STORE),
)
def render_replay_video_job(context: JobContext) -> None:
    """Replay, draw and encode the result's recording; store the MP4 and its timeline."""
    from streaming.replay_video import ReplayVideoError, render_replay_video

    video = ReplayVideo.objects.select_related("result").get(pk=context.payload["video_id"])
    result = video.result
    archive = selectors.archive_by_hash(result.case_hash)
    case_dir = Path(archive.bundle_path) if archive is not None else None
    if case_dir is None or not (case_dir / "case.json").is_file():
        raise JobFailedError(_("找不到该录制所用的病例，无法生成回放视频"))
    ReplayVideo.objects.filter(pk=video.pk).update(state=ReplayVideo.State.RENDERING)
    relative = f"{VIDEO_DIR}/result-{result.pk}-{result.recording_sha256[:16]}.mp4"
    out = Path(settings.MEDIA_ROOT) / relative
    context.progress(STEP_RENDER, 0.02)
    # OSTEON_REPLAY_VIDEO_FPS / _SIZE: tests and small machines ask for fewer, smaller frames
    fps = int(settings.OSTEON_REPLAY_VIDEO_FPS)
    size = tuple(settings.OSTEON_REPLAY_VIDEO_SIZE)
    try:
        made = render_replay_video(
            Path(result.recording_path),
            case_dir,
            out,
            fps=fps,
            size=(int(size[0]), int(size[1])),
            progress=lambda fraction: context.progress(STEP_RENDER, 0.02 + 0.95 * fraction),
        )
    except ReplayVideoError as exc:
        # the message names no server path (the recording's is cut off where it appears)
        raise JobFailedError(str(exc).replace(result.recording_path, "")[:500]) from exc
    context.progress(STEP_STORE, 0.98)
    with transaction.atomic():
        ReplayVideo.objects.filter(pk=video.pk).update(
            state=ReplayVideo.State.READY,
            path=relative,
            size_bytes=out.stat().st_size,
            frames=made.frames,
            fps=made.fps,
            width=made.width,
            height=made.height,
            duration_s=made.duration_s,
            render_wall_s=round(made.render_wall_s, 3),
            speed_x_real_time=round(made.speed_x_real_time, 4),
            timeline=made.timeline(),
            error="",
            finished_at=timezone.now(),
        )
        audit.record(
            actor=None,
            action="replay_video.ready",
            target=video,
            detail={
                "result": result.pk,
                "frames": made.frames,
                "render_wall_s": round(made.render_wall_s, 3),
                "speed_x_real_time": round(made.speed_x_real_time, 4),
            },
        )
        context.complete()
