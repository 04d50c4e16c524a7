"""`{{ event.action|action_label }}`: an audit action code in words, in the page's language."""

from django import template

from clinical_shell.audit.labels import action_label as label_of

register = template.Library()


@register.filter
def action_label(code: str) -> str:
    """The label of `code`; a code without one is shown as it is."""
    return label_of(code)
