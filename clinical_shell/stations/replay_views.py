"""The replay page of a session result: its video (made on request by a background job) and the
metrics timeline beside it; the MP4 itself, served with HTTP range requests (a video element
seeks by asking for byte ranges); the video's state as JSON for the page's script."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.http import require_http_methods

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import NotFoundError
from clinical_shell.ranged_files import ranged_file_response
from clinical_shell.stations import replay_video
from clinical_shell.stations.access import access_result
from clinical_shell.stations.models import ReplayVideo
from sim_core.scenarios import ScenarioError, load_scenario

# what the timeline names, in the page's language
_EVENT_LABELS = {
    "breach": gettext_noop("穿出骨皮质"),
    "plunge": gettext_noop("突破过深"),
    "nerve": gettext_noop("触及神经/血管"),
    "protected": gettext_noop("触及保护区"),
    "force": gettext_noop("力超过上限"),
}


def _scenario_title(name: str) -> str:
    try:
        return load_scenario(name).title
    except ScenarioError:
        return name


@login_required
@require_http_methods(["GET"])
def result_replay(request: HttpRequest, result_id: int) -> HttpResponse:
    result = access_result(request.user, result_id)
    video = replay_video.replay_video_of(result)
    fraction, step = replay_video.job_progress(video) if video is not None else (0.0, "")
    labels = {kind: _(text) for kind, text in _EVENT_LABELS.items()}
    events = []
    if video is not None and video.state == ReplayVideo.State.READY:
        events = [
            {**event, "label": labels.get(event["kind"], event["kind"])}
            for event in video.timeline.get("events", [])
        ]
    return render(
        request,
        "stations/result_replay.html",
        {
            "result": result,
            "video": video,
            "events": events,
            "fraction_pct": round(fraction * 100),
            "step": _(step) if step else "",
            "scenario_title": _scenario_title(result.scenario),
        },
    )


@login_required
@require_http_methods(["POST"])
def result_replay_render(request: HttpRequest, result_id: int) -> HttpResponse:
    result = access_result(request.user, result_id)
    replay_video.request_replay_video(actor=signed_in_user(request), result=result)
    return redirect("stations:result_replay", result_id=result.pk)


@login_required
@require_http_methods(["GET"])
def result_replay_state(request: HttpRequest, result_id: int) -> JsonResponse:
    result = access_result(request.user, result_id)
    video = replay_video.replay_video_of(result)
    if video is None:
        return JsonResponse({"state": "none"})
    fraction, step = replay_video.job_progress(video)
    return JsonResponse(
        {
            "state": video.state,
            "state_label": video.get_state_display(),
            "progress": fraction,
            "step": _(step) if step else "",
            "error": video.error,
        }
    )


@login_required
@require_http_methods(["GET"])
def result_replay_timeline(request: HttpRequest, result_id: int) -> JsonResponse:
    video = _ready_video(request, result_id)
    return JsonResponse(video.timeline)


@login_required
@require_http_methods(["GET", "HEAD"])
def result_replay_mp4(request: HttpRequest, result_id: int) -> HttpResponseBase:
    """The MP4, whole (200) or the byte range asked for (206); 416 for a range beyond it."""
    video = _ready_video(request, result_id)
    path = replay_video.video_file(video)
    if not path.is_file():
        raise NotFoundError("replay_video_missing", _("回放视频文件不存在，请重新生成"))
    return ranged_file_response(request, path)


def _ready_video(request: HttpRequest, result_id: int) -> ReplayVideo:
    result = access_result(request.user, result_id)
    video = replay_video.replay_video_of(result)
    if video is None or video.state != ReplayVideo.State.READY:
        raise NotFoundError("replay_video_not_ready", _("回放视频尚未生成"))
    return video
