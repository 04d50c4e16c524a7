"""`/api/v1/credentialing`: catalog, requirements, eligibility, applications, votes, the
chair's decision, privileges and the privilege check."""

from datetime import date

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Router, Schema
from ninja.pagination import PageNumberPagination, paginate
from ninja.responses import Status

from clinical_shell.accounts.selectors import signed_in_user
from clinical_shell.audit import services as audit
from clinical_shell.credentialing import access, selectors, services
from clinical_shell.credentialing.eligibility import Eligibility, check_eligibility
from clinical_shell.credentialing.models import (
    Application,
    Privilege,
    Requirement,
    SurgicalGrade,
    Technique,
)
from clinical_shell.credentialing.schemas import (
    ApplicationIn,
    ApplicationOut,
    CheckOut,
    DecideIn,
    EligibilityOut,
    GradeOut,
    PrivilegeOut,
    RequirementIn,
    RequirementOut,
    StatusChangeIn,
    TechniqueIn,
    TechniqueOut,
    VoteIn,
)
from clinical_shell.errors import DomainError, NotFoundError, PermissionDeniedError, ProblemOut
from clinical_shell.network.models import Institution
from clinical_shell.network.selectors import person_of
from clinical_shell.training.models import Module

router = Router(tags=["credentialing / 资格认证"])

ERRORS: dict[int, type[Schema]] = {
    401: ProblemOut,
    403: ProblemOut,
    404: ProblemOut,
    409: ProblemOut,
    422: ProblemOut,
}


def _requirement(requirement_id: int) -> Requirement:
    found = selectors.requirements().filter(pk=requirement_id).first()
    if found is None:
        raise NotFoundError("not_found", _("未找到该授权要求"))
    return found


def _institution(institution_id: int) -> Institution:
    found = Institution.objects.filter(pk=institution_id).first()
    if found is None:
        raise NotFoundError("not_found", _("未找到该机构"))
    return found


@router.get("/techniques", response={200: list[TechniqueOut], **ERRORS}, summary="Catalog")
def list_techniques(request: HttpRequest) -> QuerySet[Technique]:
    """Restricted techniques (2022 national list as data; provincial additions)."""
    return selectors.techniques()


@router.put(
    "/techniques/{code}", response={200: TechniqueOut, **ERRORS}, summary="Edit the catalog"
)
def put_technique(request: HttpRequest, code: str, payload: TechniqueIn) -> Technique:
    """Create or update a catalog item (administrators)."""
    user = signed_in_user(request)
    if not access.admin_institution_ids(user):
        raise PermissionDeniedError("not_admin", _("只有管理员可以编辑目录"))
    if payload.code != code:
        raise DomainError("code_mismatch", _("路径与内容中的代码不一致"), status=422)
    return services.save_technique(actor=user, **payload.dict())


@router.get("/grades", response={200: list[GradeOut], **ERRORS}, summary="Surgical grades")
def list_grades(request: HttpRequest) -> QuerySet[SurgicalGrade]:
    return selectors.grades()


@router.get("/requirements", response={200: list[RequirementOut], **ERRORS})
def list_requirements(request: HttpRequest) -> QuerySet[Requirement]:
    return selectors.requirements()


@router.put("/requirements", response={200: RequirementOut, **ERRORS}, summary="Edit a rule")
def put_requirement(request: HttpRequest, payload: RequirementIn) -> Requirement:
    """Set the requirement of a technique or a grade (administrators): replaces its rules."""
    user = signed_in_user(request)
    if not access.admin_institution_ids(user):
        raise PermissionDeniedError("not_admin", _("只有管理员可以编辑授权要求"))
    technique = None
    if payload.technique is not None:
        technique = Technique.objects.filter(code=payload.technique).first()
        if technique is None:
            raise DomainError(
                "unknown_technique",
                _("未知技术：%(code)s") % {"code": payload.technique},
                status=422,
            )
    rules = []
    for rule in payload.modules:
        module = Module.objects.filter(code=rule.module_code).first()
        if module is None:
            raise DomainError("unknown_module", _("未找到该模块"), status=422)
        rules.append((module, rule.passes, rule.min_score, rule.within_days))
    requirement = services.save_requirement(
        actor=user,
        technique=technique,
        grade=payload.grade,
        min_years_practice=payload.min_years_practice,
        min_hospital_grade=payload.min_hospital_grade,
        committee_approval=payload.committee_approval,
        validity_days=payload.validity_days,
        modules=rules,
        source=payload.source,
    )
    return selectors.requirements().get(pk=requirement.pk)


@router.get(
    "/requirements/{requirement_id}/eligibility",
    response={200: EligibilityOut, **ERRORS},
    summary="Am I eligible? (what is missing)",
)
def eligibility(request: HttpRequest, requirement_id: int, institution_id: int) -> Eligibility:
    """The automatic check for the signed-in surgeon (verified scores only)."""
    user = signed_in_user(request)
    return check_eligibility(user, _requirement(requirement_id), _institution(institution_id))


@router.post("/applications", response={201: ApplicationOut, **ERRORS}, summary="Apply")
def apply(request: HttpRequest, payload: ApplicationIn) -> Status[Application]:
    """Refused with 422 `not_eligible` (and what is missing) unless every rule is met."""
    application = services.submit_application(
        actor=signed_in_user(request),
        requirement=_requirement(payload.requirement_id),
        institution=_institution(payload.institution_id),
        statement=payload.statement,
    )
    return Status(201, application)


@router.get("/applications", response={200: list[ApplicationOut], **ERRORS})
@paginate(PageNumberPagination)
def list_applications(request: HttpRequest) -> QuerySet[Application]:
    """Your applications, and those your committee reviews."""
    user = signed_in_user(request)
    ids = access.committee_institution_ids(user)
    return (
        Application.objects.filter(Q(applicant_id=user.pk) | Q(institution_id__in=ids))
        .select_related("applicant", "decision__chair", "privilege")
        .prefetch_related("votes__member")
        .order_by("-submitted_at", "-id")
    )


@router.get("/applications/{application_id}", response={200: ApplicationOut, **ERRORS})
def get_application(request: HttpRequest, application_id: int) -> Application:
    """The application, its automatic check, votes, signed decision (applicant, committee,
    administrators of the institution)."""
    user = signed_in_user(request)
    application = access.access_application(user, application_id)
    audit.record(
        actor=user,
        action="credentialing.application_view",
        target=application,
        detail={"via": "api"},
    )
    return application


@router.post(
    "/applications/{application_id}/votes", response={201: ApplicationOut, **ERRORS}, summary="Vote"
)
def vote(request: HttpRequest, application_id: int, payload: VoteIn) -> Status[Application]:
    user = signed_in_user(request)
    application = access.access_application(user, application_id)
    services.cast_vote(
        actor=user, application=application, approve=payload.approve, comment=payload.comment
    )
    return Status(201, access.access_application(user, application_id))


@router.post(
    "/applications/{application_id}/decision",
    response={201: ApplicationOut, **ERRORS},
    summary="The chair's signed decision",
)
def decide(request: HttpRequest, application_id: int, payload: DecideIn) -> Status[Application]:
    user = signed_in_user(request)
    application = access.access_application(user, application_id)
    services.decide_application(actor=user, application=application, note=payload.note)
    return Status(201, access.access_application(user, application_id))


@router.get("/privileges", response={200: list[PrivilegeOut], **ERRORS})
@paginate(PageNumberPagination)
def list_privileges(request: HttpRequest) -> QuerySet[Privilege]:
    """Your privileges, and those of the institutions you manage."""
    user = signed_in_user(request)
    managed = sorted(
        set(access.admin_institution_ids(user)) | set(access.chaired_institution_ids(user))
    )
    return (
        Privilege.objects.filter(Q(surgeon_id=user.pk) | Q(institution_id__in=managed))
        .select_related("surgeon", "technique")
        .order_by("-valid_from", "-id")
    )


@router.post("/privileges/{privilege_id}/status", response={200: PrivilegeOut, **ERRORS})
def change_status(request: HttpRequest, privilege_id: int, payload: StatusChangeIn) -> Privilege:
    """Suspend, reinstate or revoke, with a reason (the chair or an administrator)."""
    user = signed_in_user(request)
    privilege = access.access_privilege(user, privilege_id)
    change = {
        "suspend": services.suspend_privilege,
        "reinstate": services.reinstate_privilege,
        "revoke": services.revoke_privilege,
    }[payload.action]
    return change(actor=user, privilege=privilege, reason=payload.reason)


@router.get("/check", response={200: CheckOut, **ERRORS}, summary="Privilege check")
def check(
    request: HttpRequest,
    surgeon: str,
    institution_id: int,
    on: date,
    technique: str | None = None,
    grade: int | None = None,
) -> services.PrivilegeCheck:
    """Whether `surgeon` (username) may perform an operation of this technique and grade at the
    institution on that date (what scheduling asks). Members of that institution only."""
    user = signed_in_user(request)
    institution = _institution(institution_id)
    if person_of(user) is None or not (
        institution.pk in access.clinician_institution_ids(user)
        or access.may_review(user, institution.pk)
        or institution.pk in access.admin_institution_ids(user)
    ):
        raise PermissionDeniedError("forbidden", _("无权查询该机构的授权"))
    found = get_user_model().objects.filter(username=surgeon).first()
    if found is None:
        raise NotFoundError("not_found", _("未找到该用户"))
    return services.check_privilege(
        found, technique=technique, grade=grade, institution=institution, on=on
    )
