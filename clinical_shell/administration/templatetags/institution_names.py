"""`{{ institution|local_name }}`: the institution's name in the page's language."""

from django import template
from django.utils.translation import get_language

from clinical_shell.network.models import Institution

register = template.Library()


@register.filter
def local_name(institution: Institution | None) -> str:
    """The English name on English pages when one is set; the Chinese name otherwise."""
    if institution is None:
        return ""
    if (get_language() or "").startswith("en") and institution.name_en:
        return institution.name_en
    return institution.name
