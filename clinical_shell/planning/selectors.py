"""Planning's reads for the API and other apps (the caller checked access)."""

from django.db.models import QuerySet

from clinical_shell.planning.models import Plan, Rehearsal


def plans_of_patient(patient_id: int) -> QuerySet[Plan]:
    """The patient's plans, newest first, without their elements."""
    return (
        Plan.objects.filter(patient_id=patient_id)
        .select_related("case", "created_by__person", "approved_by__person")
        .order_by("-created_at", "-id")
    )


def plan_with_elements(plan_id: int) -> Plan:
    """One plan with its elements (in the order they were added), its patient and case."""
    return (
        Plan.objects.select_related(
            "patient__registered_at", "case__series", "created_by__person", "approved_by__person"
        )
        .prefetch_related("elements")
        .get(pk=plan_id)
    )


def rehearsals_of_plan(plan_id: int) -> list[Rehearsal]:
    """The plan's rehearsals, newest first, with their element, session, station, result and
    who started them."""
    return list(
        Rehearsal.objects.filter(plan_id=plan_id)
        .select_related(
            "element",
            "started_by__person",
            "session__station",
            "session__result",
        )
        .order_by("-created_at", "-id")
    )
