"""`{{ patient|age_today }}`: the patient's age in whole years today, for the identity strip."""

from django import template
from django.utils import timezone

from clinical_shell.records.models import Patient
from clinical_shell.records.selectors import age_in_years

register = template.Library()


@register.filter
def age_today(patient: Patient) -> int:
    """Whole years on today's local date (the same count as the search list's age column)."""
    return age_in_years(patient.birth_date, timezone.localdate())
