"""Who may see or manage which station, session and result; every decision on a row audited.

Rules:
- stations are seen by anyone holding a role at the station's institution, managed (enrolment
  codes, revocation) by its administrators;
- a session or a result is seen by its own user, by the administrators of the station's
  institution, and by credentialing committee members (they review scores); a colleague at the
  same hospital does not see another surgeon's scores;
- a session is started from the shell by an administrator of the station's institution (for any
  surgeon or resident), or by a surgeon or resident there for themselves.
"""

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q
from django.utils.translation import gettext as _

from clinical_shell.audit import services as audit
from clinical_shell.errors import NotFoundError, PermissionDeniedError
from clinical_shell.imaging.access import access_case
from clinical_shell.network.models import Membership, Role
from clinical_shell.network.selectors import institution_ids_with_roles, roles_of
from clinical_shell.stations import selectors
from clinical_shell.stations.models import SessionResult, Station, StationSession

ALL_ROLES = frozenset(Role)
TRAINEE_ROLES = frozenset({Role.SURGEON, Role.RESIDENT})


def member_institution_ids(user: User | AnonymousUser) -> list[int]:
    """Institutions whose stations the user may see (any active role there)."""
    if not user.is_authenticated:
        return []
    return institution_ids_with_roles(int(user.pk), ALL_ROLES)


def admin_institution_ids(user: User | AnonymousUser) -> list[int]:
    """Institutions whose stations the user manages (administrator role there)."""
    if not user.is_authenticated:
        return []
    return institution_ids_with_roles(int(user.pk), frozenset({Role.ADMINISTRATOR}))


def is_committee_member(user: User | AnonymousUser) -> bool:
    return user.is_authenticated and Role.COMMITTEE_MEMBER in roles_of(int(user.pk))


def is_trainee(user: User) -> bool:
    """Whether sessions may be run for this user (a surgeon or resident somewhere)."""
    return Membership.objects.filter(
        person__user_id=user.pk, active=True, role__in=list(TRAINEE_ROLES)
    ).exists()


def visible_sessions(user: User | AnonymousUser) -> Q:
    """A filter on StationSession (or SessionResult: same field names) for what `user` sees."""
    if not user.is_authenticated:
        return Q(pk__in=[])
    if is_committee_member(user):
        return Q()
    return Q(user_id=user.pk) | Q(station__institution_id__in=admin_institution_ids(user))


def _refuse(
    user: User | AnonymousUser, action: str, target: object, why: str, message: str
) -> None:
    audit.record(
        actor=user if user.is_authenticated else None,
        action=action,
        success=False,
        target=target,
        detail={"why": why},
    )
    raise PermissionDeniedError(why, message)


def access_station(user: User | AnonymousUser, station_id: int, *, manage: bool = False) -> Station:
    """The station if `user` may see it (manage=True: revoke, see its codes); audited."""
    station = (
        Station.objects.select_related("institution", "signed_in_user__person", "current_session")
        .filter(pk=station_id)
        .first()
    )
    if station is None:
        raise NotFoundError(
            "station_not_found", _("未找到编号为 %(id)s 的工作站") % {"id": station_id}
        )
    action = "station.manage" if manage else "station.read"
    allowed_ids = admin_institution_ids(user) if manage else member_institution_ids(user)
    if station.institution_id not in allowed_ids:
        if manage:
            _refuse(
                user,
                action,
                station,
                "not_station_admin",
                _("只有该机构的系统管理员可以管理工作站"),
            )
        _refuse(
            user,
            action,
            station,
            "not_at_station_institution",
            _("您在该工作站所属机构没有任何角色"),
        )
    audit.record(actor=user, action=action, target=station)
    return station


def access_session(user: User | AnonymousUser, session_id: int) -> StationSession:
    session = (
        StationSession.objects.select_related(
            "station__institution", "user__person", "started_by__person"
        )
        .filter(pk=session_id)
        .first()
    )
    if session is None:
        raise NotFoundError(
            "session_not_found", _("未找到编号为 %(id)s 的训练") % {"id": session_id}
        )
    if not StationSession.objects.filter(visible_sessions(user), pk=session.pk).exists():
        _refuse(
            user,
            "station_session.read",
            session,
            "session_forbidden",
            _("只有本人、工作站机构管理员和资格审核委员可以查看该训练"),
        )
    audit.record(actor=user, action="station_session.read", target=session)
    return session


def access_result(user: User | AnonymousUser, result_id: int) -> SessionResult:
    result = (
        SessionResult.objects.select_related("station__institution", "user__person", "session")
        .filter(pk=result_id)
        .first()
    )
    if result is None:
        raise NotFoundError("result_not_found", _("未找到编号为 %(id)s 的成绩") % {"id": result_id})
    if not SessionResult.objects.filter(visible_sessions(user), pk=result.pk).exists():
        _refuse(
            user,
            "session_result.read",
            result,
            "result_forbidden",
            _("只有本人、工作站机构管理员和资格审核委员可以查看该成绩"),
        )
    audit.record(actor=user, action="session_result.read", target=result)
    return result


def check_may_start_session(actor: User, station: Station, trainee: User) -> None:
    """Raise (audited) unless `actor` may run a session at `station` for `trainee`."""
    if station.institution_id in admin_institution_ids(actor):
        if not is_trainee(trainee):
            _refuse(
                actor,
                "station_session.start",
                station,
                "not_a_trainee",
                _("只能为外科医生或住院医师安排训练"),
            )
        return
    own_roles = institution_ids_with_roles(int(actor.pk), TRAINEE_ROLES)
    if trainee.pk == actor.pk and station.institution_id in own_roles:
        return
    _refuse(
        actor,
        "station_session.start",
        station,
        "may_not_start_session",
        _("只有工作站所属机构的管理员，或该机构的外科医生、住院医师为自己，可以发起训练"),
    )


def require_admin_at(user: User | AnonymousUser, institution_id: int) -> None:
    """Raise (audited) unless `user` administers the institution (enrolment codes)."""
    if institution_id not in admin_institution_ids(user):
        _refuse(
            user,
            "station.enrolment_code",
            None,
            "not_station_admin",
            _("只有该机构的系统管理员可以注册工作站"),
        )


def check_case_for_session(user: User, case_content_hash: str) -> None:
    """A case built from a patient's CT is that patient's record: starting a session on it
    needs access to the patient (imaging's rule, audited there). Demo cases need nothing."""
    case = selectors.patient_case_for_hash(case_content_hash)
    if case is not None:
        access_case(user, case.pk)
