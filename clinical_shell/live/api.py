"""`/api/v1/live`: the relay token an invited viewer's page connects with."""

from django.http import HttpRequest
from ninja import Router

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import ProblemOut
from clinical_shell.live import services
from clinical_shell.live.access import access_live_session
from clinical_shell.live.schemas import ViewerTokenOut

router = Router(tags=["live / 手术直播"])


@router.post(
    "/sessions/{session_id}/token",
    response={
        200: ViewerTokenOut,
        401: ProblemOut,
        403: ProblemOut,
        404: ProblemOut,
        409: ProblemOut,
    },
    summary="Relay token for an invited viewer / 观看令牌",
    url_name="live_viewer_token",
)
def viewer_token(request: HttpRequest, session_id: int) -> services.ViewerPass:
    session = access_live_session(request.user, session_id)
    return services.join_live_session(actor=signed_in_user(request), session=session)
