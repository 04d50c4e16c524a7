"""Who may administer what.

- The audit log: administrators and quality managers of the prefecture center (the center's
  quality office sees the whole network, as in quality.selectors); nobody else.
- Accounts: an administrator at the center manages every account. An administrator of any other
  institution manages only accounts whose every membership (active or not) is at an institution
  they administer, and grants roles only there: a county administrator cannot reset the
  password of a center surgeon who also visits the county hospital.
- Departments: the same institutions as accounts.
"""

from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from clinical_shell.errors import PermissionDeniedError
from clinical_shell.network.models import Institution, Membership, Role

AUDIT_ROLES = (Role.ADMINISTRATOR, Role.QUALITY_MANAGER)


def can_read_audit(user: User) -> bool:
    return Membership.objects.filter(
        person__user_id=user.pk,
        role__in=AUDIT_ROLES,
        active=True,
        institution__level=Institution.Level.CENTER,
    ).exists()


def require_audit_reader(user: User) -> None:
    if not can_read_audit(user):
        raise PermissionDeniedError(
            "not_audit_reader",
            _("只有州级中心的系统管理员和质控管理员可以查看审计日志"),
        )


def administered_institution_ids(user: User) -> list[int] | None:
    """None: every institution (an administrator at the center); else those the user administers
    (empty: not an administrator)."""
    rows = list(
        Membership.objects.filter(
            person__user_id=user.pk, role=Role.ADMINISTRATOR, active=True
        ).values_list("institution_id", "institution__level")
    )
    if any(level == Institution.Level.CENTER for _id, level in rows):
        return None
    return sorted({institution_id for institution_id, _level in rows})


def require_administrator(user: User) -> list[int] | None:
    scope = administered_institution_ids(user)
    if scope == []:
        raise PermissionDeniedError(
            "not_administrator", _("只有系统管理员可以管理账户、机构和科室")
        )
    return scope


def require_center_administrator(user: User) -> None:
    """Raise unless `user` administers the whole network (adds institutions, moves them)."""
    if require_administrator(user) is not None:
        raise PermissionDeniedError(
            "not_center_administrator", _("只有州级中心的管理员可以新建机构")
        )


def require_manages_user(actor: User, user: User) -> None:
    """Raise unless `actor` may change `user`'s account."""
    scope = require_administrator(actor)
    if scope is None:
        return
    theirs = set(
        Membership.objects.filter(person__user_id=user.pk).values_list("institution_id", flat=True)
    )
    if not theirs or not theirs <= set(scope):
        raise PermissionDeniedError(
            "outside_institution",
            _("该账户属于你不管理的机构：只有州级中心的管理员可以修改它"),
        )


def require_manages_institution(actor: User, institution_id: int) -> None:
    scope = require_administrator(actor)
    if scope is not None and institution_id not in scope:
        raise PermissionDeniedError(
            "outside_institution", _("你不是该机构的管理员，不能修改它的人员或科室")
        )


def is_admin_area_user(user: User) -> bool:
    """Whether the header links to /administration/: administrators, the center quality office."""
    return Membership.objects.filter(person__user_id=user.pk, active=True).filter(
        role=Role.ADMINISTRATOR
    ).exists() or can_read_audit(user)
