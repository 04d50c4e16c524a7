"""Reads of the network used by access policies, pages and other apps."""

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from clinical_shell.network.models import Department, Institution, Membership, Person, Role


def person_of(user: User | AnonymousUser) -> Person | None:
    if not user.is_authenticated:
        return None
    try:
        return Person.objects.get(user_id=user.pk)
    except Person.DoesNotExist:
        return None


def active_memberships(person_id: int) -> QuerySet[Membership]:
    return Membership.objects.filter(person_id=person_id, active=True).select_related("institution")


def institution_ids_with_roles(user_id: int, roles: frozenset[Role]) -> list[int]:
    """Institutions where the user holds one of `roles` (by Django user id: one query)."""
    return list(
        Membership.objects.filter(person__user_id=user_id, active=True, role__in=list(roles))
        .values_list("institution_id", flat=True)
        .distinct()
    )


def roles_of(user_id: int) -> set[str]:
    return set(
        Membership.objects.filter(person__user_id=user_id, active=True).values_list(
            "role", flat=True
        )
    )


def institutions() -> QuerySet[Institution]:
    return Institution.objects.select_related("parent").order_by("level", "code")


# the departments whose head answers for orthopedic care: 骨科, and 全科 at township centres
CLINICAL_DEPARTMENTS = ("ORTHO", "GENERAL")


def headed_departments(user_id: int, *, codes: tuple[str, ...] = CLINICAL_DEPARTMENTS) -> list[int]:
    """Institutions where the user heads one of the departments `codes` and still works there."""
    headed = Department.objects.filter(head__user_id=user_id, code__in=codes).values_list(
        "institution_id", flat=True
    )
    working = Membership.objects.filter(
        person__user_id=user_id, active=True, institution_id__in=headed
    ).values_list("institution_id", flat=True)
    return sorted(set(working))


def department_heads(
    institution_ids: list[int], *, codes: tuple[str, ...] = CLINICAL_DEPARTMENTS
) -> set[User]:
    """The named heads (科主任) of those departments at those institutions, active users with an
    active membership there: a head who left is not told."""
    found: set[User] = set()
    departments = Department.objects.filter(
        institution_id__in=institution_ids, code__in=codes, head__isnull=False
    ).select_related("head__user")
    for department in departments:
        head = department.head
        assert head is not None
        still_there = Membership.objects.filter(
            person_id=head.pk, institution_id=department.institution_id, active=True
        ).exists()
        if head.user.is_active and still_there:
            found.add(head.user)
    return found


def home_institution_name() -> str | None:
    """The prefecture center's name: the institution that runs the platform (None before the
    region is loaded)."""
    return (
        Institution.objects.filter(level=Institution.Level.CENTER)
        .order_by("code")
        .values_list("name", flat=True)
        .first()
    )
