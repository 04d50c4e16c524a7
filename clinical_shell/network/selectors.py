"""Reads of the network used by access policies, pages and other apps."""

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from clinical_shell.network.models import Institution, Membership, Person, Role


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
