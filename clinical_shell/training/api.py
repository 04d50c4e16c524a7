"""`/api/v1/training`: modules, assignments, a trainee's progress, starting a module session."""

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Router, Schema
from ninja.responses import Status

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.errors import DomainError, NotFoundError, PermissionDeniedError, ProblemOut
from clinical_shell.network.models import Role
from clinical_shell.network.selectors import institution_ids_with_roles
from clinical_shell.stations.access import access_station
from clinical_shell.training import selectors, services
from clinical_shell.training.models import Assignment, Module, TrainingGroup
from clinical_shell.training.schemas import (
    AssignmentIn,
    AssignmentOut,
    ModuleIn,
    ModuleOut,
    ProgressOut,
    SessionStartedOut,
    StartIn,
)

router = Router(tags=["training / 培训"])

ERRORS: dict[int, type[Schema]] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
}


def _module(module_id: int) -> Module:
    found = selectors.modules().filter(pk=module_id).first()
    if found is None:
        raise NotFoundError("not_found", _("未找到该模块"))
    return found


@router.get("/modules", response={200: list[ModuleOut], **ERRORS})
def list_modules(request: HttpRequest) -> QuerySet[Module]:
    return selectors.modules()


@router.post("/modules", response={201: ModuleOut, **ERRORS}, summary="Create a module")
def create_module(request: HttpRequest, payload: ModuleIn) -> Status[Module]:
    """Administrators define modules (a scenario on a case, thresholds, prerequisites)."""
    user = signed_in_user(request)
    if not institution_ids_with_roles(int(user.pk), frozenset({Role.ADMINISTRATOR})):
        raise PermissionDeniedError("not_admin", _("只有管理员可以创建培训模块"))
    prerequisites = list(Module.objects.filter(code__in=payload.prerequisites))
    if len(prerequisites) != len(set(payload.prerequisites)):
        raise DomainError("unknown_prerequisite", _("前置模块不存在"), status=422)
    module = services.create_module(
        actor=user,
        code=payload.code,
        title=payload.title,
        scenario=payload.scenario,
        case_kind=payload.case_kind,
        case_content_hash=payload.case_content_hash,
        pass_score=payload.pass_score,
        attempts_allowed=payload.attempts_allowed,
        prerequisites=prerequisites,
    )
    return Status(201, module)


@router.post("/assignments", response={201: AssignmentOut, **ERRORS}, summary="Assign")
def assign(request: HttpRequest, payload: AssignmentIn) -> Status[Assignment]:
    """An instructor assigns a module to a trainee of their group, due by a date."""
    user = signed_in_user(request)
    trainee = get_user_model().objects.filter(username=payload.trainee, is_active=True).first()
    if trainee is None:
        raise NotFoundError("not_found", _("未找到该用户"))
    group = None
    if payload.group_id is not None:
        group = TrainingGroup.objects.filter(pk=payload.group_id).first()
        if group is None:
            raise NotFoundError("not_found", _("未找到该培训组"))
    assignment = services.assign_module(
        actor=user,
        module=_module(payload.module_id),
        trainee=trainee,
        due_on=payload.due_on,
        group=group,
    )
    return Status(201, assignment)


@router.get("/progress", response={200: list[ProgressOut], **ERRORS}, summary="My progress")
def progress(request: HttpRequest) -> list[dict[str, object]]:
    """Your assigned modules: attempts, pass, best verified score, learning curve."""
    user = signed_in_user(request)
    return [
        {
            "module_id": p.module.pk,
            "module_code": p.module.code,
            "status": p.status,
            "attempts": p.attempts,
            "passed": p.passed,
            "best_score": p.best_score,
            "due_on": p.assignment.due_on if p.assignment is not None else None,
            "curve": p.curve,
        }
        for p in selectors.progress_of(user)
    ]


@router.post(
    "/modules/{module_id}/sessions",
    response={201: SessionStartedOut, **ERRORS},
    summary="Start a module session on a station",
)
def start(request: HttpRequest, module_id: int, payload: StartIn) -> Status[dict[str, object]]:
    user = signed_in_user(request)
    station = access_station(request.user, payload.station_id)
    session = services.start_module_session(actor=user, module=_module(module_id), station=station)
    return Status(201, {"session_id": session.pk, "state": session.state})
