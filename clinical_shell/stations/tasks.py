"""Background jobs of the stations app: verification of a session result by replay, and the
minute's sweep that ends the sessions of lost stations.

A replay re-runs a whole session through the engine (seconds of CPU for a real case), so it is
a heavy job: it waits its turn under the heavy-job limit and survives a worker restart (the jobs
app's recovery runs it again; a verdict already recorded stands).
"""

from django.contrib.auth.models import AnonymousUser, User
from django.utils.translation import gettext as _
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from clinical_shell.jobs.models import Job
from clinical_shell.jobs.registry import job_task
from clinical_shell.jobs.running import JobContext
from clinical_shell.stations import replay_video, services, streams
from clinical_shell.stations.access import visible_sessions
from clinical_shell.stations.models import SessionResult

VERIFY_RESULT = "stations.verify_result"
# the replay-video job kind is declared in replay_video (imported here so workers know it)
RENDER_REPLAY_VIDEO = replay_video.RENDER_REPLAY_VIDEO


def _may_view(user: User | AnonymousUser, job: Job) -> bool:
    """Whoever may see the result may watch its verification."""
    result_id = job.payload.get("result_id")
    return SessionResult.objects.filter(visible_sessions(user), pk=result_id).exists()


@job_task(VERIFY_RESULT, heavy=True, can_view=_may_view)
def verify_result(context: JobContext) -> None:
    """Replay the result's recording; mark it verified or rejected (with why)."""
    context.progress(_("重放录制，核对最终状态"), 0.1)
    services.verify_result_by_replay(result_id=int(context.payload["result_id"]))


@db_periodic_task(crontab(minute="*"))  # type: ignore[untyped-decorator]  # huey is untyped
def abort_lost_sessions() -> None:
    """Every minute, with nobody watching: end the sessions of stations lost for longer than the
    grace period (see services.abort_lost_sessions); fail the streams of stations gone offline
    while the bridge itself was down (streams.fail_streams_of_offline_stations)."""
    services.abort_lost_sessions()
    streams.fail_streams_of_offline_stations()
