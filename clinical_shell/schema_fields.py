"""API input fields derived from the model's own declarations, so the two cannot drift apart.

`model_field(Patient, "address")` is a pydantic Field with the column's max_length and, for a
field with choices, a pattern of exactly those values: input the database would refuse (or, on
PostgreSQL, fail on) is a 422 problem before a service runs.
"""

import re
from typing import Any

from django.db import models
from ninja import Field


def model_field(model: type[models.Model], name: str, default: Any = ..., **extra: Any) -> Any:
    """A Field for `model.name`'s string column: its max_length, its choices as a pattern."""
    column = model._meta.get_field(name)
    limits: dict[str, Any] = {}
    max_length = getattr(column, "max_length", None)
    if max_length is not None:
        limits["max_length"] = max_length
    choices = getattr(column, "choices", None)
    if choices:
        values = [str(value) for value, _label in choices]
        if getattr(column, "blank", False):
            values.append("")
        limits["pattern"] = "^(" + "|".join(re.escape(v) for v in values) + ")$"
    if not getattr(column, "blank", False) and default is ... and "min_length" not in extra:
        limits["min_length"] = 1
    limits.update(extra)
    return Field(default, **limits)
