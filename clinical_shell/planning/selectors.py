"""Planning's reads for the API and other apps (the caller checked access)."""

from django.db.models import QuerySet

from clinical_shell.planning.models import Plan


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
