"""`/api/v1/stations`: stations, enrolment codes, revocation, sessions and results by role."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status

from bridge.keys import shell_public_key
from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.audit import services as audit
from clinical_shell.errors import NotFoundError, ProblemOut
from clinical_shell.network.models import Institution
from clinical_shell.stations import selectors, services
from clinical_shell.stations.access import (
    access_result,
    access_session,
    access_station,
    admin_institution_ids,
    check_case_for_session,
    check_may_start_session,
    member_institution_ids,
    require_admin_at,
    visible_sessions,
)
from clinical_shell.stations.models import EnrolmentCode, SessionResult, Station, StationSession
from clinical_shell.stations.schemas import (
    EnrolmentCodeIn,
    EnrolmentCodeOut,
    IssuedEnrolmentCodeOut,
    ResultOut,
    ResultParams,
    RevokeIn,
    SessionIn,
    SessionOut,
    SessionParams,
    StationOut,
)

router = Router(tags=["stations / 模拟工作站"])

ERRORS: dict[int, type[Schema]] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
}


@router.get("", response={200: list[StationOut], **ERRORS}, summary="Stations / 工作站")
@paginate(PageNumberPagination)
def list_stations(request: HttpRequest) -> QuerySet[Station]:
    """Stations at the institutions where you hold a role, with their presence."""
    audit.record(actor=signed_in_user(request), action="station.list", detail={"via": "api"})
    return selectors.stations_at(member_institution_ids(request.user))


@router.get(
    "/{int:station_id}", response={200: StationOut, **ERRORS}, summary="Station / 工作站详情"
)
def get_station(request: HttpRequest, station_id: int) -> Station:
    return access_station(request.user, station_id)


@router.post(
    "/{int:station_id}/revoke",
    response={200: StationOut, **ERRORS},
    summary="Revoke a station / 吊销工作站",
)
def revoke(request: HttpRequest, station_id: int, payload: RevokeIn) -> Station:
    """The bridge refuses the station's next message and connection (within a second)."""
    station = access_station(request.user, station_id, manage=True)
    services.revoke_station(actor=signed_in_user(request), station=station, reason=payload.reason)
    return access_station(request.user, station_id)


@router.post(
    "/enrolment-codes",
    response={201: IssuedEnrolmentCodeOut, **ERRORS},
    summary="Create a one-time enrolment code / 生成工作站注册码",
)
def create_enrolment_code(
    request: HttpRequest, payload: EnrolmentCodeIn
) -> Status[dict[str, object]]:
    """The code is in this response only; the shell keeps its hash. Give it to the station
    with `shell_key` and `bridge`: `osteon station enroll --shell BRIDGE --code CODE`."""
    require_admin_at(request.user, payload.institution_id)
    institution = Institution.objects.get(pk=payload.institution_id)
    issued = services.create_enrolment_code(
        actor=signed_in_user(request),
        institution=institution,
        room=payload.room,
        ttl=timedelta(minutes=payload.ttl_minutes),
    )
    return Status(
        201,
        {
            "id": issued.row_id,
            "code": issued.code,
            "expires_at": issued.expires_at,
            "shell_key": shell_public_key(settings.OSTEON_BRIDGE_KEY_DIR),
            "bridge": settings.OSTEON_BRIDGE_URL,
        },
    )


@router.get(
    "/enrolment-codes",
    response={200: list[EnrolmentCodeOut], **ERRORS},
    summary="Enrolment codes / 注册码",
)
@paginate(PageNumberPagination)
def list_enrolment_codes(request: HttpRequest) -> QuerySet[EnrolmentCode]:
    """Codes of the institutions you administer (the codes themselves are never shown again)."""
    audit.record(actor=signed_in_user(request), action="station.enrolment_code_list")
    return selectors.enrolment_codes_at(admin_institution_ids(request.user))


@router.post(
    "/sessions",
    response={201: SessionOut, **ERRORS},
    summary="Run scenario S on case C at station X for user U / 发起训练",
)
def start_session(request: HttpRequest, payload: SessionIn) -> Status[StationSession]:
    actor = signed_in_user(request)
    station = access_station(request.user, payload.station_id)
    trainee = get_user_model().objects.filter(username=payload.username, is_active=True).first()
    if trainee is None:
        raise NotFoundError("user_not_found", _("未找到用户 %(name)s") % {"name": payload.username})
    check_may_start_session(actor, station, trainee)
    check_case_for_session(actor, payload.case_hash)
    session = services.start_session_from_shell(
        actor=actor,
        station=station,
        case_content_hash=payload.case_hash,
        scenario=payload.scenario,
        user=trainee,
        device=payload.device,
    )
    return Status(201, selectors.session_rows(StationSession.objects.filter(pk=session.pk)).get())


@router.get("/sessions", response={200: list[SessionOut], **ERRORS}, summary="Sessions / 训练记录")
@paginate(PageNumberPagination)
def list_sessions(request: HttpRequest, params: Query[SessionParams]) -> QuerySet[StationSession]:
    """Your own sessions; the sessions on stations you administer; all, for committee members."""
    audit.record(actor=signed_in_user(request), action="station_session.list")
    sessions = StationSession.objects.filter(visible_sessions(request.user))
    if params.station_id is not None:
        sessions = sessions.filter(station_id=params.station_id)
    if params.username:
        sessions = sessions.filter(user__username=params.username)
    return selectors.session_rows(sessions)


@router.get(
    "/sessions/{int:session_id}",
    response={200: SessionOut, **ERRORS},
    summary="Session / 训练详情",
)
def get_session(request: HttpRequest, session_id: int) -> StationSession:
    session = access_session(request.user, session_id)
    return selectors.session_rows(StationSession.objects.filter(pk=session.pk)).get()


@router.get(
    "/results",
    response={200: list[ResultOut], **ERRORS},
    summary="Results with their verification / 成绩与验证状态",
)
@paginate(PageNumberPagination)
def list_results(request: HttpRequest, params: Query[ResultParams]) -> QuerySet[SessionResult]:
    """Only `verification == "verified"` counts; pending ones wait for the replay, rejected
    ones say why in `rejection_reason`."""
    audit.record(actor=signed_in_user(request), action="session_result.list")
    results = SessionResult.objects.filter(visible_sessions(request.user))
    if params.username:
        results = results.filter(user__username=params.username)
    if params.scenario:
        results = results.filter(scenario=params.scenario)
    if params.verification:
        results = results.filter(verification=params.verification)
    return selectors.result_rows(results)


@router.get(
    "/results/{int:result_id}",
    response={200: ResultOut, **ERRORS},
    summary="Result / 成绩",
)
def get_result(request: HttpRequest, result_id: int) -> SessionResult:
    return access_result(request.user, result_id)
