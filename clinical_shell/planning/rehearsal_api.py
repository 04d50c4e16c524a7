"""`/api/v1/planning/.../rehearsals`: rehearse an approved plan's element at a station and read
its deviation report, the API twin of the plan page's rehearsal part (`rehearsal_views`).
Mounted beside `planning.api` under the same prefix (clinical_shell/api.py)."""

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import ProblemOut
from clinical_shell.planning import rehearsals, selectors
from clinical_shell.planning.access import access_plan
from clinical_shell.planning.models import Rehearsal
from clinical_shell.stations.access import access_station

router = Router(tags=["planning / 手术规划"])

ERRORS: dict[int, type[Schema]] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
}


class RehearseIn(Schema):
    element_id: int
    station_id: int


class RehearsalOut(Schema):
    id: int
    plan_id: int
    plan_version: int
    element_id: int
    session_id: int
    station_id: int
    scenario: str
    plan_digest: str
    started_by: str
    created_at: datetime
    # the session's state until its result arrives, then the result's verification
    status: str
    score: float | None
    # planning.deviation.deviation_report once the result is verified; {} until then
    report: dict[str, Any]
    reported_at: datetime | None

    @staticmethod
    def resolve_station_id(obj: Rehearsal) -> int:
        return obj.session.station_id

    @staticmethod
    def resolve_scenario(obj: Rehearsal) -> str:
        return obj.session.scenario

    @staticmethod
    def resolve_started_by(obj: Rehearsal) -> str:
        return obj.started_by.get_username()

    @staticmethod
    def resolve_status(obj: Rehearsal) -> str:
        result = getattr(obj.session, "result", None)
        return result.verification if result is not None else obj.session.state

    @staticmethod
    def resolve_score(obj: Rehearsal) -> float | None:
        result = getattr(obj.session, "result", None)
        return result.score if result is not None else None


@router.post(
    "/plans/{plan_id}/rehearsals",
    response={201: RehearsalOut, **ERRORS},
    summary="Rehearse a plan element at a station / 在工作站演练规划要素",
)
def rehearse(request: HttpRequest, plan_id: int, payload: RehearseIn) -> Status[Rehearsal]:
    """Sends the approved plan with the chosen element to the station for the signed-in user
    (the station must be of one of their institutions). Refused, nothing stored: a draft plan
    (409 `plan_not_approved`), an element not in the plan (404), a kind no station rehearses
    (422 `element_not_rehearsable`), a station the user may not use (403/404)."""
    plan = access_plan(request.user, plan_id, reason="api plan rehearse")
    station = access_station(request.user, payload.station_id)
    rehearsal = rehearsals.start_rehearsal(
        actor=signed_in_user(request),
        plan=plan,
        element_id=payload.element_id,
        station=station,
    )
    return Status(201, rehearsal)


@router.get(
    "/plans/{plan_id}/rehearsals",
    response={200: list[RehearsalOut], **ERRORS},
    summary="A plan's rehearsals and their deviation reports / 规划的演练与偏差报告",
)
@paginate(PageNumberPagination)
def list_rehearsals(request: HttpRequest, plan_id: int) -> list[Rehearsal]:
    """Newest first; the read goes through the patient's door (audited)."""
    plan = access_plan(request.user, plan_id, reason="api plan rehearsals")
    return selectors.rehearsals_of_plan(plan.pk)
