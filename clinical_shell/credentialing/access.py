"""Who may see and act on applications and privileges.

- An application is seen by its applicant, by the committee (members and chair) of its
  institution and by that institution's administrators.
- Members and the chair vote; the applicant and the applicant's direct supervisor never do.
- Privileges are suspended, reinstated or revoked by the committee chair or an administrator of
  the privilege's institution.
- The catalog and the rules are edited by administrators.
"""

from django.contrib.auth.models import AnonymousUser, User
from django.utils.translation import gettext as _

from clinical_shell.credentialing.models import Application, Committee, PracticeRecord, Privilege
from clinical_shell.errors import NotFoundError, PermissionDeniedError
from clinical_shell.network.models import Role
from clinical_shell.network.selectors import institution_ids_with_roles

COMMITTEE = frozenset({Role.COMMITTEE_MEMBER})
ADMIN = frozenset({Role.ADMINISTRATOR})
CLINICIANS = frozenset({Role.SURGEON, Role.RESIDENT})


def committee_institution_ids(user: User | AnonymousUser) -> list[int]:
    """Institutions on whose committee the user sits (as a member or as its chair)."""
    if not user.is_authenticated:
        return []
    ids = set(institution_ids_with_roles(int(user.pk), COMMITTEE))
    ids.update(Committee.objects.filter(chair_id=user.pk).values_list("institution_id", flat=True))
    return sorted(ids)


def chaired_institution_ids(user: User | AnonymousUser) -> list[int]:
    if not user.is_authenticated:
        return []
    return list(Committee.objects.filter(chair_id=user.pk).values_list("institution_id", flat=True))


def admin_institution_ids(user: User | AnonymousUser) -> list[int]:
    if not user.is_authenticated:
        return []
    return institution_ids_with_roles(int(user.pk), ADMIN)


def clinician_institution_ids(user: User | AnonymousUser) -> list[int]:
    if not user.is_authenticated:
        return []
    return institution_ids_with_roles(int(user.pk), CLINICIANS)


def supervisor_of(user_id: int) -> int | None:
    return (
        PracticeRecord.objects.filter(user_id=user_id)
        .values_list("supervisor_id", flat=True)
        .first()
    )


def may_review(user: User | AnonymousUser, institution_id: int) -> bool:
    return institution_id in committee_institution_ids(user)


def may_manage(user: User | AnonymousUser, institution_id: int) -> bool:
    """Suspend, reinstate and revoke privileges, edit rules: the chair or an administrator."""
    if not user.is_authenticated:
        return False
    if institution_id in admin_institution_ids(user):
        return True
    return Committee.objects.filter(institution_id=institution_id, chair_id=user.pk).exists()


def access_application(user: User | AnonymousUser, application_id: int) -> Application:
    application = (
        Application.objects.select_related(
            "applicant__person", "institution", "requirement__technique"
        )
        .filter(pk=application_id)
        .first()
    )
    if application is None:
        raise NotFoundError("not_found", _("未找到该申请"))
    if user.is_authenticated and (
        application.applicant_id == user.pk
        or may_review(user, application.institution_id)
        or application.institution_id in admin_institution_ids(user)
    ):
        return application
    raise PermissionDeniedError("forbidden", _("无权查看该申请"))


def access_privilege(user: User | AnonymousUser, privilege_id: int) -> Privilege:
    privilege = (
        Privilege.objects.select_related("surgeon__person", "institution", "technique")
        .filter(pk=privilege_id)
        .first()
    )
    if privilege is None:
        raise NotFoundError("not_found", _("未找到该授权"))
    if user.is_authenticated and (
        privilege.surgeon_id == user.pk
        or may_review(user, privilege.institution_id)
        or privilege.institution_id in admin_institution_ids(user)
    ):
        return privilege
    raise PermissionDeniedError("forbidden", _("无权查看该授权"))
